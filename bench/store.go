package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/internal/testpebble"
)

// Store shape. Values are random (incompressible) 1 KiB; keys are
// testpebble.Key(i), 12 bytes, dense from 0; Pebble's default sstable
// sizes; the store is compacted into the last level once written.
const (
	valueSize = 1024
	// perKeyBytes approximates the on-disk bytes of one key/value: the
	// value plus key, trailer, block and index overhead.
	perKeyBytes = valueSize + 86
)

// storeSpec returns the spec of a store of about sizeMB MiB.
func storeSpec(sizeMB int) testpebble.Spec {
	return testpebble.Spec{
		Keys:           max(sizeMB<<20/perKeyBytes, 1000),
		ValueSize:      valueSize,
		Seed:           1,
		TargetFileSize: testpebble.PebbleDefaults,
	}
}

// buildStore writes a new store into dir with Pebble v2.
func buildStore(dir string, spec testpebble.Spec) error {
	if err := testpebble.Create(testpebble.V2, dir, spec); err != nil {
		return fmt.Errorf("creating store %s: %w", dir, err)
	}
	return nil
}

// churn rewrites fraction of the keys of the store in dir (a contiguous
// range, every 97th key deleted instead) and flushes; Pebble compacts in
// the background as it would. The same seed gives the same change.
func churn(dir string, spec testpebble.Spec, fraction float64, seed uint64) error {
	if err := testpebble.Churn(testpebble.V2, dir, spec, fraction, seed); err != nil {
		return fmt.Errorf("churning %s: %w", dir, err)
	}
	return nil
}

// StoreFile is one file a checkpoint of a store holds.
type StoreFile struct {
	Size   int64
	Shared bool // an immutable sstable or blob file
}

// storeFiles lists the files a checkpoint of the store in dir holds, as
// ckpt selects them (checkpoint.OpenDir): the live sstables, MANIFEST,
// OPTIONS, markers and WAL, without LOCK or obsolete files.
func storeFiles(dir string) (map[string]StoreFile, error) {
	s, err := checkpoint.OpenDir("default", dir)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	out := map[string]StoreFile{}
	for _, f := range s.Files {
		out[f.Name] = StoreFile{Size: f.Size, Shared: f.Shared}
	}
	return out, nil
}

// increment returns the bytes an ideal incremental checkpoint uploads after
// the store went from before to after: the shared files after holds and
// before did not, plus every private file of after.
func increment(before, after map[string]StoreFile) (newShared, private int64) {
	for name, f := range after {
		switch {
		case !f.Shared:
			private += f.Size
		case !hasShared(before, name):
			newShared += f.Size
		}
	}
	return newShared, private
}

func hasShared(m map[string]StoreFile, name string) bool {
	f, ok := m[name]
	return ok && f.Shared
}

// verifyRestore checks that the store restored in got equals the store in
// want: every file a checkpoint of want holds is in got with the same
// bytes, and every other file of got that want also has is identical. With
// keys set it also opens both with Pebble and compares every key and value.
func verifyRestore(want, got string, keys bool) error {
	files, err := storeFiles(want)
	if err != nil {
		return err
	}
	for name := range files {
		if err := sameFile(filepath.Join(want, name), filepath.Join(got, name)); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(got)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if _, ok := files[e.Name()]; ok || !e.Type().IsRegular() || e.Name() == "LOCK" {
			continue
		}
		w := filepath.Join(want, e.Name())
		if _, err := os.Stat(w); err != nil {
			continue // e.g. ckpt's CKPT-ORIGIN
		}
		if err := sameFile(w, filepath.Join(got, e.Name())); err != nil {
			return err
		}
	}
	if !keys {
		return nil
	}
	dw, err := testpebble.Digest(want)
	if err != nil {
		return fmt.Errorf("reading %s: %w", want, err)
	}
	dg, err := testpebble.Digest(got)
	if err != nil {
		return fmt.Errorf("reading %s: %w", got, err)
	}
	if dw != dg {
		return fmt.Errorf("restored store %s holds %s, the source %s", got, dg, dw)
	}
	return nil
}

// sameFile reports an error unless a and b have the same bytes.
func sameFile(a, b string) error {
	x, err := os.ReadFile(a)
	if err != nil {
		return err
	}
	y, err := os.ReadFile(b)
	if err != nil {
		return fmt.Errorf("restored store lacks %s: %w", filepath.Base(a), err)
	}
	if !bytes.Equal(x, y) {
		return fmt.Errorf("restored %s differs from the source %s", b, a)
	}
	return nil
}
