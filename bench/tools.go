package main

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// round is the state of one round: its directory holds the live store
// ("store") and every tool's local destination; S3 destinations live under
// Prefix in the bucket.
type round struct {
	N      int
	Dir    string
	Prefix string // S3 key prefix of this round
}

// Store is the live store's directory; tools run in r.Dir and name it by
// its relative name, so restic records the same path every time.
func (r *round) Store() string { return filepath.Join(r.Dir, "store") }

func (r *round) path(name string) string { return filepath.Join(r.Dir, name) }

// S3 is the MinIO (or other S3) endpoint the S3 rows use.
type S3 struct {
	URL      string // CKPT_TEST_S3_URL: s3://bucket?endpoint=…
	Bucket   string
	Endpoint string // http://127.0.0.1:PORT
	Query    string
}

// parseS3 reads CKPT_TEST_S3_URL; nil when unset.
func parseS3(raw string) (*S3, error) {
	if raw == "" {
		return nil, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	return &S3{URL: raw, Bucket: u.Host, Endpoint: u.Query().Get("endpoint"), Query: u.RawQuery}, nil
}

// ckpt is the ckpt location of prefix p in the bucket.
func (s *S3) ckpt(p string) string { return "s3://" + s.Bucket + "/" + p + "?" + s.Query }

// restic is the restic repository URL of prefix p.
func (s *S3) restic(p string) string {
	return "s3:" + strings.TrimSuffix(s.Endpoint, "/") + "/" + s.Bucket + "/" + p
}

// rclone is the rclone path of prefix p on the remote "minio" that
// rcloneEnv configures.
func (s *S3) rclone(p string) string { return "minio:" + s.Bucket + "/" + p }

// rcloneEnv configures rclone's remote "minio" through the environment.
func (s *S3) rcloneEnv() []string {
	region := "us-east-1"
	if u, err := url.Parse(s.URL); err == nil && u.Query().Get("region") != "" {
		region = u.Query().Get("region")
	}
	return []string{
		"RCLONE_CONFIG_MINIO_TYPE=s3",
		"RCLONE_CONFIG_MINIO_PROVIDER=Minio",
		"RCLONE_CONFIG_MINIO_ENDPOINT=" + s.Endpoint,
		"RCLONE_CONFIG_MINIO_REGION=" + region,
		"RCLONE_CONFIG_MINIO_ACCESS_KEY_ID=" + os.Getenv("AWS_ACCESS_KEY_ID"),
		"RCLONE_CONFIG_MINIO_SECRET_ACCESS_KEY=" + os.Getenv("AWS_SECRET_ACCESS_KEY"),
	}
}

// Tool is one way of taking, restoring or cleaning up copies of the store.
// Every command runs in the round's directory. Nil functions are skipped.
type Tool struct {
	Name string
	// Dest is where the tool writes its copies.
	Dest func(r *round) Dest
	// Setup runs untimed before the round's first backup (restic init).
	Setup func(ctx context.Context, r *round) error
	// Prep runs untimed before each timed backup (cp -r: remove the last copy).
	Prep func(r *round) error
	// Backup is the timed backup command.
	Backup func(r *round) []string
}

// RestoreTool restores the round's last copy into target.
type RestoreTool struct {
	Name string
	// Setup runs untimed once per round before the restores.
	Setup func(ctx context.Context, r *round) error
	// Argv is the timed restore command; Restored names the directory that
	// then holds the store.
	Argv     func(r *round, target string) []string
	Restored func(target string) string
}

// GCTool deletes all but the newest checkpoints (snapshots) of a copy of
// the gc chain.
type GCTool struct {
	Name string
	// Copy prepares, untimed, the round's copy of the pristine chain.
	Copy func(ctx context.Context, r *round) error
	Dest func(r *round) Dest
	Argv func(r *round) []string
	// Count counts the checkpoints (snapshots) in a listing of Dest.
	Count func(l Listing) int
}

// countCkpt counts committed ckpt checkpoints (chk-<N>/_metadata).
func countCkpt(l Listing) int {
	n := 0
	for k := range l {
		if m, _ := filepath.Match("chk-*/_metadata", k); m {
			n++
		}
	}
	return n
}

// countRestic counts restic snapshots.
func countRestic(l Listing) int {
	n := 0
	for k := range l {
		if strings.HasPrefix(k, "snapshots/") {
			n++
		}
	}
	return n
}
