package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
)

// FromDB checkpoints a store that this process holds open, for applications
// that cannot close their database to run `ckpt create`. Pebble's own
// Checkpoint (with the WAL flushed) hard-links the live files into
// scratchDir, which must not exist and should be on the database's
// filesystem so that nothing is copied; the returned Store reads from there,
// and its Close removes scratchDir. The database keeps running meanwhile.
//
// Pass the Store to Create exactly like one from OpenDir.
func FromDB(db *pebble.DB, name, scratchDir string) (*Store, error) {
	abs, err := filepath.Abs(scratchDir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Lstat(abs); err == nil {
		return nil, fmt.Errorf("checkpoint: scratch directory %s already exists", abs)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := db.Checkpoint(abs, pebble.WithFlushedWAL()); err != nil {
		_ = os.RemoveAll(abs)
		return nil, fmt.Errorf("checkpoint: pebble checkpoint into %s: %w", abs, err)
	}
	s, err := OpenDir(name, abs)
	if err != nil {
		_ = os.RemoveAll(abs)
		return nil, err
	}
	unlock := s.close
	s.close = func() error {
		return errors.Join(unlock(), os.RemoveAll(abs))
	}
	return s, nil
}
