// Package pebblero opens Pebble stores for reading without ever writing to
// them: no LOCK file, no manifest rotation, no WAL recycling, nothing.
//
// Invariant: every filesystem call through FS that would create, change or
// remove a file fails with ErrWrite, and Lock succeeds without touching the
// disk (the caller holds, or does not need, the real lock).
package pebblero

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// ErrWrite is returned for every write Pebble attempts through FS.
var ErrWrite = errors.New("pebblero: the store is opened without writing")

// FS wraps a vfs.FS (vfs.Default if nil) so that Pebble can read a store but
// not write anything. It records the base names of the files Pebble opened
// for reading (Opened), which tells which WAL files it replays.
type FS struct {
	vfs.FS
	mu     sync.Mutex
	opened map[string]bool
}

// New returns an FS over vfs.Default.
func New() *FS { return &FS{FS: vfs.Default, opened: map[string]bool{}} }

// Open implements vfs.FS, recording the file's base name.
func (r *FS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := r.FS.Open(name, opts...)
	if err == nil {
		r.mu.Lock()
		r.opened[filepath.Base(name)] = true
		r.mu.Unlock()
	}
	return f, err
}

// Opened returns the base names of the files opened so far.
func (r *FS) Opened() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.opened))
	for n := range r.opened {
		out = append(out, n)
	}
	return out
}

func (*FS) Create(string, vfs.DiskWriteCategory) (vfs.File, error) { return nil, ErrWrite }
func (*FS) Link(string, string) error                              { return ErrWrite }
func (*FS) OpenReadWrite(string, vfs.DiskWriteCategory, ...vfs.OpenOption) (vfs.File, error) {
	return nil, ErrWrite
}
func (*FS) Remove(string) error                { return ErrWrite }
func (*FS) RemoveAll(string) error             { return ErrWrite }
func (*FS) Rename(string, string) error        { return ErrWrite }
func (*FS) MkdirAll(string, fs.FileMode) error { return ErrWrite }
func (*FS) ReuseForWrite(string, string, vfs.DiskWriteCategory) (vfs.File, error) {
	return nil, ErrWrite
}

// Lock implements vfs.FS without creating or locking anything.
func (*FS) Lock(string) (io.Closer, error) { return nopCloser{}, nil }

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// Logger drops Pebble's messages; Fatalf panics with the message (callers
// that must survive it recover).
type Logger struct{}

func (Logger) Infof(string, ...interface{})  {}
func (Logger) Errorf(string, ...interface{}) {}
func (Logger) Fatalf(format string, args ...interface{}) {
	panic(fmt.Sprintf(format, args...))
}
