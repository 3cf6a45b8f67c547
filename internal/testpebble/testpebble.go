// Package testpebble builds real Pebble stores for tests and benchmarks:
// written by Pebble v2 (the line ckpt uses) or by Pebble v1.1.x at its
// newest format (what go-ethereum writes), filled with deterministic keys and
// values and churned between checkpoints.
package testpebble

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sort"

	pebblev1 "github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/v2"
)

// Version selects the Pebble release that writes a store.
type Version int

// Pebble releases.
const (
	V2 Version = 2
	V1 Version = 1
)

func (v Version) String() string { return fmt.Sprintf("pebble-v%d", int(v)) }

// Spec describes a store to generate.
type Spec struct {
	Keys      int    // number of keys
	ValueSize int    // bytes per value
	Seed      uint64 // deterministic content
	// Unflushed leaves the last UnflushedKeys writes in the WAL only.
	UnflushedKeys int
	// TargetFileSize is the sstable target size at every level. 0 keeps
	// this package's small default (256 KiB: many tables even in a small
	// store); PebbleDefaults keeps Pebble's own sizes (2 MiB at L0,
	// doubling at each level below), as in a production store. Churn must
	// be given the same value as Create.
	TargetFileSize int64
}

// PebbleDefaults as Spec.TargetFileSize leaves Pebble's default target file
// sizes in place.
const PebbleDefaults int64 = -1

// Key returns the i-th key of a generated store.
func Key(i int) []byte {
	k := make([]byte, 12)
	copy(k, "key-")
	binary.BigEndian.PutUint64(k[4:], uint64(i))
	return k
}

func value(rng *rand.Rand, size int) []byte {
	v := make([]byte, size)
	for i := 0; i < size; i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], rng.Uint64())
		copy(v[i:], w[:])
	}
	return v
}

// writer abstracts the two Pebble versions' batch and flush calls.
type writer interface {
	set(k, v []byte) error
	del(k []byte) error
	commit() error
	flush() error
	compact() error
	close() error
}

type v2w struct {
	db *pebble.DB
	b  *pebble.Batch
}

func (w *v2w) set(k, v []byte) error { return w.b.Set(k, v, nil) }
func (w *v2w) del(k []byte) error    { return w.b.Delete(k, nil) }
func (w *v2w) commit() error {
	err := w.b.Commit(pebble.Sync)
	w.b = w.db.NewBatch()
	return err
}
func (w *v2w) flush() error { return w.db.Flush() }
func (w *v2w) compact() error {
	return w.db.Compact(context.Background(), []byte("a"), []byte("z"), true)
}
func (w *v2w) close() error { _ = w.b.Close(); return w.db.Close() }

type v1w struct {
	db *pebblev1.DB
	b  *pebblev1.Batch
}

func (w *v1w) set(k, v []byte) error { return w.b.Set(k, v, nil) }
func (w *v1w) del(k []byte) error    { return w.b.Delete(k, nil) }
func (w *v1w) commit() error {
	err := w.b.Commit(pebblev1.Sync)
	w.b = w.db.NewBatch()
	return err
}
func (w *v1w) flush() error   { return w.db.Flush() }
func (w *v1w) compact() error { return w.db.Compact([]byte("a"), []byte("z"), true) }
func (w *v1w) close() error   { _ = w.b.Close(); return w.db.Close() }

// targetFileSize keeps tables small, so that even a test-sized store has
// many of them and a churn rewrites only some, as in a large store.
const targetFileSize = 256 << 10

// open opens (creating if need be) the store in dir with the sstable target
// size of Spec.TargetFileSize.
func open(v Version, dir string, fileSize int64) (writer, error) {
	if fileSize == 0 {
		fileSize = targetFileSize
	}
	switch v {
	case V1:
		o := &pebblev1.Options{FormatMajorVersion: pebblev1.FormatNewest, Logger: quiet{}}
		if fileSize > 0 {
			o.Levels = make([]pebblev1.LevelOptions, 7)
			for i := range o.Levels {
				o.Levels[i].TargetFileSize = fileSize
			}
		}
		db, err := pebblev1.Open(dir, o)
		if err != nil {
			return nil, err
		}
		return &v1w{db: db, b: db.NewBatch()}, nil
	default:
		o := &pebble.Options{FormatMajorVersion: pebble.FormatNewest, Logger: quiet{}}
		for i := range o.TargetFileSizes {
			o.TargetFileSizes[i] = max(fileSize, 0)
		}
		db, err := pebble.Open(dir, o)
		if err != nil {
			return nil, err
		}
		return &v2w{db: db, b: db.NewBatch()}, nil
	}
}

type quiet struct{}

func (quiet) Infof(string, ...interface{})         {}
func (quiet) Errorf(string, ...interface{})        {}
func (quiet) Fatalf(f string, args ...interface{}) { panic(fmt.Sprintf(f, args...)) }

// FlushEvery is how many keys Create writes between flushes.
const FlushEvery = 5000

// Create writes a new store in dir.
func Create(v Version, dir string, s Spec) error {
	w, err := open(v, dir, s.TargetFileSize)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(s.Seed, 1))
	flushed := s.Keys - s.UnflushedKeys
	for i := 0; i < s.Keys; i++ {
		if err := w.set(Key(i), value(rng, s.ValueSize)); err != nil {
			return err
		}
		if (i+1)%1000 == 0 || i == flushed-1 {
			if err := w.commit(); err != nil {
				return err
			}
		}
		if i == flushed-1 || (i+1)%FlushEvery == 0 && i < flushed {
			if err := w.flush(); err != nil {
				return err
			}
		}
	}
	if err := w.commit(); err != nil {
		return err
	}
	if s.UnflushedKeys == 0 {
		// Settle the tables into the last level, as in a store that has
		// run for a while, so that a churn rewrites only what it touches.
		if err := w.compact(); err != nil {
			return err
		}
	}
	return w.close()
}

// Churn rewrites fraction of the keys of a store made by Create with new
// values (and deletes a few), then flushes so the change lands in new
// sstables. Seed varies the change.
func Churn(v Version, dir string, s Spec, fraction float64, seed uint64) error {
	w, err := open(v, dir, s.TargetFileSize)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	n := int(float64(s.Keys) * fraction)
	start := rng.IntN(max(1, s.Keys-n))
	for i := start; i < start+n; i++ {
		if i%97 == 0 {
			err = w.del(Key(i))
		} else {
			err = w.set(Key(i), value(rng, s.ValueSize))
		}
		if err != nil {
			return err
		}
		if (i+1)%1000 == 0 {
			if err := w.commit(); err != nil {
				return err
			}
		}
	}
	if err := w.commit(); err != nil {
		return err
	}
	if err := w.flush(); err != nil {
		return err
	}
	return w.close()
}

// Dump returns every key/value of the store in dir, read with Pebble v2.
func Dump(dir string) (map[string]string, error) {
	db, err := pebble.Open(dir, &pebble.Options{ReadOnly: true, Logger: quiet{}})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	it, err := db.NewIter(nil)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for it.First(); it.Valid(); it.Next() {
		out[string(it.Key())] = string(it.Value())
	}
	if err := it.Close(); err != nil {
		return nil, err
	}
	return out, nil
}

// Digest summarises Dump as sorted "key=len" lines' count and a checksum,
// for cheap equality checks of large stores.
func Digest(dir string) (string, error) {
	m, err := Dump(dir)
	if err != nil {
		return "", err
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var h uint64 = 1469598103934665603
	for _, k := range keys {
		for _, s := range []string{k, m[k]} {
			for i := 0; i < len(s); i++ {
				h ^= uint64(s[i])
				h *= 1099511628211
			}
			h ^= 0xff
		}
	}
	return fmt.Sprintf("%d keys, fnv %016x", len(keys), h), nil
}
