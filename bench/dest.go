package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"gocloud.dev/blob"

	"github.com/ckpt-dev/ckpt/storage"
)

// fileID identifies one version of a file or object: a destination entry
// whose ID changed between two listings was (re)written in between.
type fileID struct {
	Size  int64
	Mod   int64  // modification time, ns
	Inode uint64 // local files
	ETag  string // objects: their MD5, when the store reports one
}

// Listing maps a destination's relative paths (or keys) to their IDs.
type Listing map[string]fileID

// Dest is where a tool writes: a local directory or an S3 prefix.
type Dest interface {
	List(ctx context.Context) (Listing, error)
	String() string
}

// Written returns the bytes of entries of after that are absent from before
// or whose ID changed: what the run between the two listings wrote.
func Written(before, after Listing) int64 {
	var n int64
	for k, a := range after {
		if b, ok := before[k]; !ok || b != a {
			n += a.Size
		}
	}
	return n
}

// Total returns the bytes of all entries.
func (l Listing) Total() int64 {
	var n int64
	for _, f := range l {
		n += f.Size
	}
	return n
}

// DirDest is a local directory; a missing one lists as empty.
type DirDest string

func (d DirDest) String() string { return string(d) }

// List walks the directory (regular files only; sizes are apparent sizes).
func (d DirDest) List(ctx context.Context) (Listing, error) {
	out := Listing{}
	err := filepath.WalkDir(string(d), func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !e.Type().IsRegular() {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(string(d), p)
		id := fileID{Size: info.Size(), Mod: info.ModTime().UnixNano()}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			id.Inode = st.Ino
		}
		out[rel] = id
		return nil
	})
	return out, err
}

// S3Dest is a prefix of an S3 bucket, named by a ckpt location URL.
type S3Dest string

func (d S3Dest) String() string { return storage.Redact(string(d)) }

// List lists every object under the prefix with ckpt's storage package.
func (d S3Dest) List(ctx context.Context) (Listing, error) {
	loc, err := storage.Open(ctx, string(d))
	if err != nil {
		return nil, err
	}
	defer loc.Close()
	b := loc.Narrow()
	out := Listing{}
	it := b.List(&blob.ListOptions{})
	for {
		o, err := it.Next(ctx)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", d, err)
		}
		out[o.Key] = fileID{Size: o.Size, Mod: o.ModTime.UnixNano(), ETag: fmt.Sprintf("%x", o.MD5)}
	}
}

// removeAll removes dir, for the untimed clean-ups.
func removeAll(dir string) error { return os.RemoveAll(dir) }
