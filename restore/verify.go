package restore

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ckpt-dev/ckpt/internal/pebblero"

	"github.com/cockroachdb/pebble/v2"
)

// checkStore opens the restored store in dir with Pebble v2 read-only,
// through a filesystem that refuses every write and takes no lock (so
// nothing, not even a LOCK file, is added to dir). Opening replays the
// manifest and WAL and checks that every live table exists with its size;
// the format major version must be the one the checkpoint recorded. With
// full, every level is read and checked (Pebble's CheckLevels: key order,
// tombstones, merges, block checksums); for a store whose comparer ckpt
// does not know, every key is read instead, and the returned warning says
// that key order was not checked.
func checkStore(ctx context.Context, dir string, s Store, full bool) (warning string, err error) {
	cmp, mrg, err := storeOptions(dir)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrVerifyFailed, err)
	}
	type result struct {
		warning string
		err     error
	}
	done := make(chan result, 1)
	// Pebble cannot be interrupted; on cancellation the check finishes in
	// the background and its result is dropped.
	go func() {
		var r result
		defer func() {
			if v := recover(); v != nil {
				r = result{err: fmt.Errorf("%w: Pebble failed on the restored store: %v", ErrVerifyFailed, v)}
			}
			done <- r
		}()
		r.warning, r.err = openAndCheck(ctx, dir, s, cmp, mrg, full)
	}()
	select {
	case r := <-done:
		return r.warning, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func openAndCheck(ctx context.Context, dir string, s Store, cmp *pebble.Comparer, mrg *pebble.Merger, full bool) (string, error) {
	db, err := pebble.Open(dir, &pebble.Options{
		FS:       pebblero.New(),
		ReadOnly: true,
		Comparer: cmp,
		Merger:   mrg,
		Logger:   pebblero.Logger{},
	})
	if err != nil {
		return "", fmt.Errorf("%w: the restored store does not open: %v", ErrVerifyFailed, err)
	}
	defer db.Close()
	if got := uint64(db.FormatMajorVersion()); got != s.FormatMajorVersion {
		return "", fmt.Errorf("%w: the restored store has Pebble format %d, the checkpoint says %d", ErrVerifyFailed, got, s.FormatMajorVersion)
	}
	if !full {
		return "", nil
	}
	if cmp.Name == pebble.DefaultComparer.Name {
		if err := db.CheckLevels(nil); err != nil {
			return "", fmt.Errorf("%w: checking the restored store: %v", ErrVerifyFailed, err)
		}
		return "", nil
	}
	it, err := db.NewIter(nil)
	if err != nil {
		return "", fmt.Errorf("%w: reading the restored store: %v", ErrVerifyFailed, err)
	}
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		if n++; n%4096 == 0 && ctx.Err() != nil {
			it.Close()
			return "", ctx.Err()
		}
	}
	if err := it.Close(); err != nil {
		return "", fmt.Errorf("%w: reading the restored store: %v", ErrVerifyFailed, err)
	}
	return fmt.Sprintf("store %q uses the comparer %q, which ckpt does not know: --check read every key but could not check their order", s.Name, cmp.Name), nil
}

// storeOptions reads the comparer and merger names from the store's newest
// OPTIONS file. Stand-ins with those names and byte-wise behaviour let
// Pebble open a store written with a custom comparer or merger.
func storeOptions(dir string) (*pebble.Comparer, *pebble.Merger, error) {
	cmp, mrg := pebble.DefaultComparer, pebble.DefaultMerger
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	newest, newestNum := "", int64(-1)
	for _, e := range entries {
		if num, ok := strings.CutPrefix(e.Name(), "OPTIONS-"); ok {
			if n, err := strconv.ParseInt(num, 10, 64); err == nil && n > newestNum {
				newest, newestNum = e.Name(), n
			}
		}
	}
	if newest == "" {
		return cmp, mrg, nil
	}
	f, err := os.Open(filepath.Join(dir, newest))
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	section := ""
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section != "[Options]" {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case k == "comparer" && v != cmp.Name:
			c := *pebble.DefaultComparer
			c.Name = v
			cmp = &c
		case k == "merger" && v != mrg.Name && v != "nullptr":
			m := *pebble.DefaultMerger
			m.Name = v
			mrg = &m
		}
	}
	return cmp, mrg, sc.Err()
}
