// Package testutil holds helpers shared by ckpt's tests: verifying a
// checkpoint object by object and materialising one into a directory,
// independently of the packages under test.
package testutil

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"gocloud.dev/blob"

	"github.com/ckpt-dev/ckpt/metadata"
)

// VerifyCheckpoint reads checkpoint id of job and checks that every file it
// references exists with the recorded size and SHA-256.
func VerifyCheckpoint(ctx context.Context, b *blob.Bucket, job metadata.Job, id uint64) (*metadata.Checkpoint, error) {
	c, err := metadata.Read(ctx, b, job.MetadataKey(id))
	if err != nil {
		return nil, err
	}
	for _, s := range c.Stores {
		for _, f := range s.Files {
			key, err := metadata.Resolve(job.CheckpointDir(id), f.Path)
			if err != nil {
				return nil, err
			}
			data, err := b.ReadAll(ctx, key)
			if err != nil {
				return nil, fmt.Errorf("chk-%d %s/%s: %w", id, s.Name, f.Name, err)
			}
			sum := sha256.Sum256(data)
			if int64(len(data)) != f.Size || hex.EncodeToString(sum[:]) != f.SHA256 {
				return nil, fmt.Errorf("chk-%d %s/%s (%s): content does not match metadata", id, s.Name, f.Name, key)
			}
		}
	}
	return c, nil
}

// Materialize writes store of checkpoint id into dir (which must not exist)
// as a plain Pebble directory, so a test can open it.
func Materialize(ctx context.Context, b *blob.Bucket, job metadata.Job, id uint64, store, dir string) error {
	c, err := metadata.Read(ctx, b, job.MetadataKey(id))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, s := range c.Stores {
		if s.Name != store {
			continue
		}
		for _, f := range s.Files {
			key, err := metadata.Resolve(job.CheckpointDir(id), f.Path)
			if err != nil {
				return err
			}
			r, err := b.NewReader(ctx, key, nil)
			if err != nil {
				return err
			}
			out, err := os.Create(filepath.Join(dir, f.Name))
			if err != nil {
				r.Close()
				return err
			}
			_, err = io.Copy(out, r)
			r.Close()
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("no store %q in chk-%d", store, id)
}
