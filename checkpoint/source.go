package checkpoint

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/ckpt-dev/ckpt/internal/pebblero"

	"github.com/cockroachdb/pebble/v2"

	"github.com/ckpt-dev/ckpt/metadata"
)

// Errors describing a source store that cannot be checkpointed.
var (
	// ErrNotStore means the directory is missing or is not a Pebble store.
	ErrNotStore = errors.New("checkpoint: not a Pebble store")
	// ErrStoreInUse means another process holds the store's LOCK.
	ErrStoreInUse = errors.New("checkpoint: store is open in another process")
	// ErrUnsupported means the store uses a feature or format ckpt cannot
	// checkpoint.
	ErrUnsupported = errors.New("checkpoint: unsupported store")
)

// Store is a consistent, read-only view of one Pebble store's files, ready
// to be uploaded by Create. Close releases it (and its lock or scratch
// directory).
type Store struct {
	// Name names the store inside the checkpoint (see
	// metadata.ValidStoreName).
	Name string
	// Dir is the directory the files are read from.
	Dir string
	// FormatMajorVersion is the store's Pebble format major version.
	FormatMajorVersion uint64
	// Files are the files the checkpoint must hold, sorted by name.
	Files []SourceFile
	// Origin is read from the store's origin file (written by ckpt
	// restore); nil if the store was not restored by ckpt.
	Origin *Origin

	close func() error
}

// SourceFile is one file of a Store.
type SourceFile struct {
	// Name is the file name inside the store directory.
	Name string
	// Size is its size in bytes when the store was opened.
	Size int64
	// Shared is true for immutable data files (sstables and blob files),
	// which are named by content and shared between checkpoints.
	Shared bool
}

// Path is the file's path on the local filesystem.
func (s *Store) Path(f SourceFile) string { return filepath.Join(s.Dir, f.Name) }

// Close releases the store. It is safe to call more than once.
func (s *Store) Close() error {
	if s.close == nil {
		return nil
	}
	c := s.close
	s.close = nil
	return c()
}

// OpenDir opens the Pebble store in dir, which no other process may have
// open, as a consistent read-only Store named name. It never modifies dir: it
// takes the store's LOCK (fcntl, without creating it), opens the store with
// Pebble v2 read-only through a filesystem that refuses every write, reads
// the live file set and the format version, and closes Pebble again. The
// lock is held until Close, so no other process can open the store while the
// checkpoint reads it.
func OpenDir(name, dir string) (_ *Store, err error) {
	if err := metadata.ValidStoreName(name); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNotStore, dir, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s does not exist", ErrNotStore, abs)
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrNotStore, abs, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrNotStore, abs)
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", ErrNotStore, abs, err)
	}
	names := map[string]bool{}
	for _, e := range entries {
		names[e.Name()] = true
	}
	manifest := currentManifest(entries)
	if manifest == "" {
		if names["CURRENT"] {
			return nil, fmt.Errorf("%w: %s uses a Pebble format older than 13 (CURRENT file, no manifest marker); open it once with a newer Pebble to upgrade it", ErrUnsupported, abs)
		}
		return nil, fmt.Errorf("%w: %s has no Pebble manifest marker", ErrNotStore, abs)
	}
	if !names[manifest] {
		return nil, fmt.Errorf("%w: %s: the manifest marker names %s, which is missing", ErrNotStore, abs, manifest)
	}
	unlock, err := lockStore(abs, names["LOCK"])
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = unlock()
		}
	}()
	cmp, mrg, walDir, err := readOptions(abs, entries)
	if err != nil {
		return nil, err
	}
	if walDir != "" && filepath.Clean(walDir) != abs {
		return nil, fmt.Errorf("%w: %s keeps its WAL in a separate directory (%s)", ErrUnsupported, abs, walDir)
	}
	live, wals, format, err := liveFiles(abs, cmp, mrg)
	if err != nil {
		return nil, err
	}
	var maxLive uint64
	for n := range live {
		maxLive = max(maxLive, n)
	}
	s := &Store{Name: name, Dir: abs, FormatMajorVersion: format, close: unlock}
	for _, e := range entries {
		n := e.Name()
		kind, num := classify(n)
		switch kind {
		case fileTable:
			// Live tables, and tables newer than every live one (a
			// flushable ingest still referenced only by the WAL).
			if !live[num] && num <= maxLive {
				continue
			}
		case fileManifest:
			if n != manifest {
				continue
			}
		case fileWAL:
			// Only the logs Pebble replays; older ones are obsolete.
			if !wals[n] {
				continue
			}
		case fileOptions:
			if n != newestOptions(entries) {
				continue
			}
		case fileRemoteCatalog:
			return nil, fmt.Errorf("%w: %s uses Pebble shared (remote) storage", ErrUnsupported, abs)
		case fileOther:
			continue
		}
		if !e.Type().IsRegular() {
			return nil, fmt.Errorf("%w: %s/%s is not a regular file", ErrUnsupported, abs, n)
		}
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("reading %s/%s: %w", abs, n, err)
		}
		s.Files = append(s.Files, SourceFile{Name: n, Size: info.Size(), Shared: kind == fileTable || kind == fileBlob})
	}
	for n := range live {
		if !names[fmt.Sprintf("%06d.sst", n)] {
			return nil, fmt.Errorf("%w: %s: live table %06d.sst is missing", ErrNotStore, abs, n)
		}
	}
	sort.Slice(s.Files, func(i, j int) bool { return s.Files[i].Name < s.Files[j].Name })
	if s.Origin, err = readOrigin(abs); err != nil {
		return nil, err
	}
	return s, nil
}

type fileKind int

const (
	fileOther fileKind = iota
	fileTable
	fileBlob
	fileWAL
	fileManifest
	fileOptions
	fileMarker
	fileRemoteCatalog
)

// classify recognises Pebble's file names. LOCK, temporary files and
// anything Pebble does not own are fileOther and never uploaded.
func classify(name string) (fileKind, uint64) {
	if stem, ok := strings.CutSuffix(name, ".sst"); ok {
		if n, err := strconv.ParseUint(stem, 10, 64); err == nil {
			return fileTable, n
		}
		return fileOther, 0
	}
	if stem, ok := strings.CutSuffix(name, ".blob"); ok {
		if n, err := strconv.ParseUint(stem, 10, 64); err == nil {
			return fileBlob, n
		}
		return fileOther, 0
	}
	if stem, ok := strings.CutSuffix(name, ".log"); ok {
		num, _, _ := strings.Cut(stem, "-")
		if _, err := strconv.ParseUint(num, 10, 64); err == nil {
			return fileWAL, 0
		}
		return fileOther, 0
	}
	switch {
	case strings.HasPrefix(name, "MANIFEST-"):
		return fileManifest, 0
	case strings.HasPrefix(name, "OPTIONS-"):
		return fileOptions, 0
	case strings.HasPrefix(name, "marker."):
		return fileMarker, 0
	case strings.HasPrefix(name, "REMOTE-OBJ-CATALOG"):
		return fileRemoteCatalog, 0
	}
	return fileOther, 0
}

// currentManifest returns the manifest named by the newest
// marker.manifest.<iter>.<name> file, or "".
func currentManifest(entries []os.DirEntry) string {
	best, bestIter := "", int64(-1)
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "marker.manifest.")
		if !ok {
			continue
		}
		iter, target, ok := strings.Cut(rest, ".")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(iter, 10, 64)
		if err == nil && n > bestIter {
			best, bestIter = target, n
		}
	}
	return best
}

// lockStore takes an exclusive fcntl lock on dir/LOCK, the lock Pebble
// itself takes, without creating the file. A store without a LOCK file has
// never been opened by Pebble in place (for example a Pebble checkpoint), so
// there is nothing to lock.
func lockStore(dir string, hasLock bool) (func() error, error) {
	if !hasLock {
		return func() error { return nil }, nil
	}
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			// Read-only access is enough to read a store nobody else
			// writes, but then the lock cannot be taken.
			f, err = os.Open(path)
			if err != nil {
				return nil, fmt.Errorf("opening %s: %w", path, err)
			}
			return f.Close, nil
		}
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) {
			return nil, fmt.Errorf("%w: %s", ErrStoreInUse, dir)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return f.Close, nil
}

// readOptions finds the comparer and merger names and the WAL directory in
// the newest OPTIONS file. ckpt only copies files and never orders keys, so
// a store with a custom comparer or merger is opened with byte-wise stand-ins
// under the same names.
func readOptions(dir string, entries []os.DirEntry) (*pebble.Comparer, *pebble.Merger, string, error) {
	newest := newestOptions(entries)
	cmp, mrg := pebble.DefaultComparer, pebble.DefaultMerger
	if newest == "" {
		return cmp, mrg, "", nil
	}
	f, err := os.Open(filepath.Join(dir, newest))
	if err != nil {
		return nil, nil, "", fmt.Errorf("reading %s/%s: %w", dir, newest, err)
	}
	defer f.Close()
	var walDir string
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
		switch k {
		case "comparer":
			if v != cmp.Name {
				c := *pebble.DefaultComparer
				c.Name = v
				cmp = &c
			}
		case "merger":
			if v != mrg.Name && v != "nullptr" {
				m := *pebble.DefaultMerger
				m.Name = v
				mrg = &m
			}
		case "wal_dir":
			walDir = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, "", fmt.Errorf("reading %s/%s: %w", dir, newest, err)
	}
	return cmp, mrg, walDir, nil
}

// liveFiles opens the store read-only (through a filesystem that refuses
// writes) and returns the disk file numbers of its live tables, the names of
// the WAL files Pebble replays on open, and the format major version.
func liveFiles(dir string, cmp *pebble.Comparer, mrg *pebble.Merger) (map[uint64]bool, map[string]bool, uint64, error) {
	fs := pebblero.New()
	db, err := pebble.Open(dir, &pebble.Options{
		FS:       fs,
		ReadOnly: true,
		Comparer: cmp,
		Merger:   mrg,
		Logger:   pebblero.Logger{},
	})
	if err != nil {
		if strings.Contains(err.Error(), "no longer supported") {
			return nil, nil, 0, fmt.Errorf("%w: %s: %v", ErrUnsupported, dir, err)
		}
		return nil, nil, 0, fmt.Errorf("%w: opening %s: %v", ErrNotStore, dir, err)
	}
	defer db.Close()
	levels, err := db.SSTables()
	if err != nil {
		return nil, nil, 0, fmt.Errorf("listing tables of %s: %w", dir, err)
	}
	live := map[uint64]bool{}
	for _, level := range levels {
		for _, t := range level {
			live[uint64(t.BackingSSTNum)] = true
		}
	}
	wals := map[string]bool{}
	for _, n := range fs.Opened() {
		if k, _ := classify(n); k == fileWAL {
			wals[n] = true
		}
	}
	return live, wals, uint64(db.FormatMajorVersion()), nil
}

func newestOptions(entries []os.DirEntry) string {
	newest, newestNum := "", int64(-1)
	for _, e := range entries {
		if num, ok := strings.CutPrefix(e.Name(), "OPTIONS-"); ok {
			if n, err := strconv.ParseInt(num, 10, 64); err == nil && n > newestNum {
				newest, newestNum = e.Name(), n
			}
		}
	}
	return newest
}
