package flinkjob_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-dev/ckpt/flinkjob"
	"github.com/ckpt-dev/ckpt/storage"
)

func TestResolve(t *testing.T) {
	s3 := flinkjob.Store{Scheme: storage.SchemeS3, Name: "bucket"}
	gs := flinkjob.Store{Scheme: storage.SchemeGCS, Name: "bucket"}
	az := flinkjob.Store{Scheme: storage.SchemeAzure, Name: "container"}
	file := flinkjob.Store{Scheme: storage.SchemeFile}
	dir := "ck/job/chk-3"
	cases := []struct {
		s        flinkjob.Store
		path     string
		relative bool
		key      string
		err      error
	}{
		// Relative handles: inside the _metadata's directory only.
		{s3, "a1b2-uuid", true, "ck/job/chk-3/a1b2-uuid", nil},
		{s3, "sub/x", true, "ck/job/chk-3/sub/x", nil},
		{s3, "../shared/x", true, "", flinkjob.ErrBadPath},
		{s3, "a/../../x", true, "", flinkjob.ErrBadPath},
		{s3, "./x", true, "", flinkjob.ErrBadPath},
		{s3, "a//x", true, "", flinkjob.ErrBadPath},
		{s3, "/abs", true, "", flinkjob.ErrBadPath},
		{s3, "s3://bucket/x", true, "", flinkjob.ErrBadPath},
		{s3, "", true, "", flinkjob.ErrBadPath},
		{s3, "a\\b", true, "", flinkjob.ErrBadPath},
		// S3 in all of Flink's spellings, same bucket only.
		{s3, "s3://bucket/ck/job/shared/x", false, "ck/job/shared/x", nil},
		{s3, "s3a://bucket/ck/job/shared/x", false, "ck/job/shared/x", nil},
		{s3, "s3p://bucket/ck/job/shared/x", false, "ck/job/shared/x", nil},
		{s3, "S3://bucket/x", false, "x", nil},
		{s3, "s3://other/ck/job/shared/x", false, "", flinkjob.ErrOutsideBucket},
		{s3, "gs://bucket/x", false, "", flinkjob.ErrOutsideBucket},
		{s3, "hdfs://namenode:8020/ck/x", false, "", flinkjob.ErrOutsideBucket},
		{s3, "file:/tmp/x", false, "", flinkjob.ErrOutsideBucket},
		{s3, "s3://bucket/ck/../../etc/passwd", false, "", flinkjob.ErrBadPath},
		{s3, "s3://bucket/ck//x", false, "", flinkjob.ErrBadPath},
		{s3, "s3://bucket", false, "", flinkjob.ErrBadPath},
		{s3, "s3://bucket/x?versionId=1", false, "", flinkjob.ErrBadPath},
		{s3, "relative-name", false, "", flinkjob.ErrBadPath},
		// Entropy injection: just another key of the bucket.
		{s3, "s3://bucket/7f3a/ck/job/shared/x", false, "7f3a/ck/job/shared/x", nil},
		// Percent signs are not decoded (Flink writes paths unescaped).
		{s3, "s3://bucket/a%20b", false, "a%20b", nil},
		{gs, "gs://bucket/x/y", false, "x/y", nil},
		{gs, "gs://other/x/y", false, "", flinkjob.ErrOutsideBucket},
		// Azure: the container is the part before "@".
		{az, "abfss://container@account.dfs.core.windows.net/ck/x", false, "ck/x", nil},
		{az, "wasbs://container@account.blob.core.windows.net/ck/x", false, "ck/x", nil},
		{az, "abfs://other@account.dfs.core.windows.net/ck/x", false, "", flinkjob.ErrOutsideBucket},
		{az, "abfs://account.dfs.core.windows.net/ck/x", false, "", flinkjob.ErrOutsideBucket},
		// Local files in every spelling.
		{file, "file:/var/ck/x", false, "var/ck/x", nil},
		{file, "file:///var/ck/x", false, "var/ck/x", nil},
		{file, "file://localhost/var/ck/x", false, "var/ck/x", nil},
		{file, "/var/ck/x", false, "var/ck/x", nil},
		{file, "file://otherhost/var/ck/x", false, "", flinkjob.ErrOutsideBucket},
		{file, "file:/var/ck/../../../x", false, "", flinkjob.ErrBadPath},
		{file, "s3://bucket/x", false, "", flinkjob.ErrOutsideBucket},
	}
	for _, c := range cases {
		key, err := c.s.Resolve(dir, c.path, c.relative)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("%s %q (relative %v): got %q, %v; want %v", c.s.Scheme, c.path, c.relative, key, err, c.err)
			}
			continue
		}
		if c.s.Scheme == storage.SchemeFile {
			// Symbolic links of existing directories are resolved.
			real, _ := filepath.EvalSymlinks("/var")
			c.key = strings.TrimPrefix(filepath.ToSlash(real), "/") + strings.TrimPrefix(c.key, "var")
		}
		if err != nil || key != c.key {
			t.Errorf("%s %q (relative %v): got %q, %v; want %q", c.s.Scheme, c.path, c.relative, key, err, c.key)
		}
	}
}

func TestResolveFollowsDirectorySymlinks(t *testing.T) {
	tmp := t.TempDir()
	real := filepath.Join(tmp, "real")
	if err := os.MkdirAll(filepath.Join(real, "shared"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(tmp, "link")); err != nil {
		t.Fatal(err)
	}
	s := flinkjob.Store{Scheme: storage.SchemeFile}
	key, err := s.Resolve("", "file:"+filepath.Join(tmp, "link", "shared", "x"), false)
	realTmp, _ := filepath.EvalSymlinks(tmp)
	if want := strings.TrimPrefix(filepath.Join(realTmp, "real", "shared", "x"), "/"); err != nil || key != want {
		t.Fatalf("got %q, %v; want %q", key, err, want)
	}
}

func TestURIAndStoreOf(t *testing.T) {
	for url, want := range map[string]string{
		"s3://bkt/pre?region=us-east-1&endpoint=http://x": "s3://bkt/k",
		"gs://bkt":         "gs://bkt/k",
		"mem://name/pre":   "mem://name/k",
		"/tmp/somewhere/x": "file:/k",
	} {
		loc, err := storage.Open(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		s := flinkjob.StoreOf(loc)
		got, err := s.URI("k", "s3://old/x")
		if err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", url, got, err, want)
		}
		if key, err := s.Resolve("", got, false); err != nil || key != "k" {
			t.Errorf("%s: %q does not resolve back: %q %v", url, got, key, err)
		}
		loc.Close()
	}
	s := flinkjob.Store{Scheme: storage.SchemeS3, Name: "b"}
	if got, _ := s.URI("k", "s3a://old/x"); got != "s3a://b/k" {
		t.Errorf("the S3 scheme of the original path is kept: %q", got)
	}
}

func TestCheckpointDirNames(t *testing.T) {
	for name, want := range map[string]int64{"chk-1": 1, "chk-0": 0, "chk-9223372036854775807": 1<<63 - 1} {
		if id, ok := flinkjob.ParseCheckpointDirName(name); !ok || id != want {
			t.Errorf("%s: %d %v", name, id, ok)
		}
	}
	for _, name := range []string{"chk-", "chk-01", "chk--1", "chk-+1", "chk-1a", "chk-9223372036854775808", "savepoint-1", "1"} {
		if _, ok := flinkjob.ParseCheckpointDirName(name); ok {
			t.Errorf("%s accepted", name)
		}
	}
	job, id, ok := flinkjob.JobOf("ck/job/chk-12")
	if !ok || job.Prefix != "ck/job" || id != 12 || job.MetadataKey(3) != "ck/job/chk-3/_metadata" || job.SharedDirKey() != "ck/job/shared/" {
		t.Errorf("JobOf: %v %d %v", job, id, ok)
	}
}
