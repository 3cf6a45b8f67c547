package storage_test

import (
	"testing"

	"github.com/ckpt-dev/ckpt/storage"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"s3://AKIA:secret@bucket/p", "s3://AKIA:xxxxx@bucket/p"},
		{"s3://user:pa:ss@host", "s3://user:xxxxx@host"},
		{"s3://user:p@ss@host/x", "s3://user:xxxxx@host/x"},
		{"s3://user:pa/ss@host?region=x", "s3://user:xxxxx@host?region=x"},
		{"https://ghp_token123@github.com/x", "https://xxxxx@github.com/x"},
		{"s3://bucket/path@v2", "s3://bucket/path@v2"},
		{"azblob://c/p?sv=2020-02-10&sig=abc%2Fdef&se=2025", "azblob://c/p?sv=2020-02-10&sig=REDACTED&se=2025"},
		{"s3://b?X-Amz-Signature=abc&X-Amz-Credential=AKIA%2F2020&region=us-east-1", "s3://b?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED&region=us-east-1"},
		{"s3://b?x-amz-security-token=t0k&endpoint=http://127.0.0.1:9000", "s3://b?x-amz-security-token=REDACTED&endpoint=http://127.0.0.1:9000"},
		{"gs://b?private_key_path=/secret/key.pem&anonymous=false", "gs://b?private_key_path=REDACTED&anonymous=false"},
		{"s3://b?PASSWORD=x&Token=y&sas=z&api_key=k", "s3://b?PASSWORD=REDACTED&Token=REDACTED&sas=REDACTED&api_key=REDACTED"},
		{"s3://AKIA:secret@bucket?token=t", "s3://AKIA:xxxxx@bucket?token=REDACTED"},
		{`Put "http://127.0.0.1:10000/acct/c/k?se=x&sig=abc": dial tcp: refused`, `Put "http://127.0.0.1:10000/acct/c/k?se=x&sig=REDACTED": dial tcp: refused`},
		{"DefaultEndpointsProtocol=http;AccountName=dev;AccountKey=Eby8vdM==;BlobEndpoint=http://x", "DefaultEndpointsProtocol=http;AccountName=dev;AccountKey=REDACTED;BlobEndpoint=http://x"},
		{"two urls: s3://a:b@c and gs://d:e@f/g", "two urls: s3://a:xxxxx@c and gs://d:xxxxx@f/g"},
		{"no url here", "no url here"},
		{"/local/path/to/store", "/local/path/to/store"},
		{"mem://name/prefix", "mem://name/prefix"},
		{"s3://bucket/prefix?region=us-east-1&use_path_style=true", "s3://bucket/prefix?region=us-east-1&use_path_style=true"},
		{"s3://b?list-type=2&max-keys=1&continuation-token=abc", "s3://b?list-type=2&max-keys=1&continuation-token=abc"},
		{"", ""},
	} {
		got := storage.Redact(tc.in)
		if got != tc.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
		if again := storage.Redact(got); again != got {
			t.Errorf("Redact is not idempotent on %q: %q", got, again)
		}
	}
}
