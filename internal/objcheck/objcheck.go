// Package objcheck verifies one stored object against its recorded size and
// SHA-256, for the commands that check checkpoints (inspect, relocate).
//
// Invariant: it only reads; a missing, short or corrupt object is a problem
// described in the result, never an error — only a cancelled context is.
package objcheck

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"gocloud.dev/blob"

	"github.com/ckpt-dev/ckpt/progress"
	"github.com/ckpt-dev/ckpt/storage"
)

// Check reads key and returns what is wrong with it: "" if it has size bytes
// hashing to want (with want "" only the size is checked), otherwise
// "missing", "size N, expected M", "checksum mismatch" or "unreadable: …".
// Bytes read are reported to pr.
func Check(ctx context.Context, b *blob.Bucket, key string, size int64, want string, pr progress.Reporter) (string, error) {
	// Stop before opening: a driver that ignores ctx (local files) would
	// otherwise read every remaining object after a Ctrl-C.
	if err := ctx.Err(); err != nil {
		return "", err
	}
	rd, err := b.NewReader(ctx, key, nil)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if storage.IsNotFound(err) {
			return "missing", nil
		}
		return "unreadable: " + oneLine(storage.Wrap(err)), nil
	}
	defer rd.Close()
	h := sha256.New()
	n, err := io.Copy(h, progress.Reader(rd, pr))
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "unreadable: " + oneLine(storage.Wrap(err)), nil
	}
	if n != size {
		return fmt.Sprintf("size %d, expected %d", n, size), nil
	}
	if want != "" && hex.EncodeToString(h.Sum(nil)) != want {
		return "checksum mismatch", nil
	}
	return "", nil
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }
