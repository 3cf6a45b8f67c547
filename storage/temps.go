package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// SweepTemps removes the local-file driver's temporary files (".ckpt-tmp-*",
// never listed as objects) below the key prefix of the file location l that
// were last modified before before: what writers killed in the middle of a
// write (SIGKILL, power loss) leave behind. A write in progress keeps its
// temporary file's modification time fresh, so a cut-off well in the past
// (gc's --min-age) never touches one. With dryRun it only counts them. It
// returns how many files it removed (or would) and their bytes; other
// schemes have no such files and get zeros.
//
// Nothing outside prefix is touched, prefix must be l's own directory or
// below it, and symbolic links are not followed.
func SweepTemps(ctx context.Context, l *Location, prefix string, before time.Time, dryRun bool) (files int, bytes int64, err error) {
	if l.Scheme != SchemeFile {
		return 0, 0, nil
	}
	if prefix != l.Prefix && !strings.HasPrefix(prefix, l.Prefix+"/") {
		return 0, 0, fmt.Errorf("storage: %q is not inside the location %s", prefix, l.Display)
	}
	root, err := os.OpenRoot(string(filepath.Separator) + filepath.FromSlash(prefix))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	defer root.Close()
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed meanwhile
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(d.Name(), tempPrefix) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !fi.ModTime().Before(before) {
			return nil
		}
		if !dryRun {
			if err := root.Remove(filepath.FromSlash(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		files++
		bytes += fi.Size()
		return nil
	})
	if err != nil {
		err = fmt.Errorf("sweeping temporary files in %s: %w", l.Display, err)
	}
	return files, bytes, err
}
