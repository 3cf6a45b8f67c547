package checkpoint

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ckpt-dev/ckpt/metadata"
)

// WriteLocalCopy keeps a local secondary copy of checkpoint id in dir, the
// layout `ckpt restore --local-dir` reads:
//
//	dir/chk-<id>/_metadata
//	dir/chk-<id>/<store>/<file>
//
// Shared (immutable) files are hard-linked from the store when dir is on the
// same filesystem and copied otherwise; private files are always copied,
// because Pebble appends to some of them in place. The copy is built in a
// temporary directory beside its final place and renamed into place only
// when complete, and then the copies of older checkpoints in dir are
// removed. It returns the copy's directory.
func WriteLocalCopy(dir string, id uint64, stores []*Store, meta []byte) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, ".tmp-"+metadata.CheckpointDirName(id)+"-")
	if err != nil {
		return "", err
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(tmp)
		}
	}()
	for _, s := range stores {
		sd := filepath.Join(tmp, s.Name)
		if err := os.Mkdir(sd, 0o755); err != nil {
			return "", err
		}
		for _, f := range s.Files {
			dst := filepath.Join(sd, f.Name)
			if f.Shared {
				if err := os.Link(s.Path(f), dst); err == nil {
					continue
				}
			}
			if err := copyFile(s.Path(f), dst); err != nil {
				return "", err
			}
		}
		if err := syncDir(sd); err != nil {
			return "", err
		}
	}
	if err := writeFileSync(filepath.Join(tmp, metadata.MetadataName), meta); err != nil {
		return "", err
	}
	if err := syncDir(tmp); err != nil {
		return "", err
	}
	final := filepath.Join(dir, metadata.CheckpointDirName(id))
	if err := os.RemoveAll(final); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", err
	}
	ok = true
	if err := syncDir(dir); err != nil {
		return final, err
	}
	return final, PruneLocal(dir, id)
}

// PruneLocal removes from dir the local copies of checkpoints older than
// keep, and leftover temporary directories of interrupted copies.
func PruneLocal(dir string, keep uint64) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		n := e.Name()
		old := false
		if id, ok := metadata.ParseCheckpointDirName(n); ok && id < keep {
			old = true
		}
		if strings.HasPrefix(n, ".tmp-chk-") && !strings.HasPrefix(n, ".tmp-"+metadata.CheckpointDirName(keep)+"-") {
			old = true
		}
		if old {
			errs = append(errs, os.RemoveAll(filepath.Join(dir, n)))
		}
	}
	return errors.Join(errs...)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", src, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
