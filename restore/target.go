package restore

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// target is what NewPlan and Execute know about the target directory.
type target struct {
	abs, parent, base string
	// exists and empty describe the target when it was inspected.
	exists, empty bool
	// dev is the device of the parent directory, where the restore is built.
	dev uint64
	// aside is the old contents of an interrupted replacement, if the
	// target is missing and such a directory exists.
	aside string
}

// Kinds of temporary siblings of the target.
const (
	kindTmp = "restore" // a restore being built (or, after an exchange, an old target being removed)
	kindOld = "old"     // an old target renamed aside during a replacement
)

// sibling returns the name prefix of the target's temporary siblings of a
// kind: ".<base>.ckpt-<kind>-<hash of base>-". The base is shortened to keep
// names within NAME_MAX; the hash keeps targets with the same shortened
// base apart.
func (t *target) sibling(kind string) string {
	b := t.base
	if len(b) > 100 {
		b = b[:100]
	}
	h := sha256.Sum256([]byte(t.base))
	return "." + b + ".ckpt-" + kind + "-" + hex.EncodeToString(h[:4]) + "-"
}

func badTarget(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadTarget, fmt.Sprintf(format, args...))
}

// inspectTarget checks the target directory and its surroundings without
// changing anything.
func inspectTarget(o Options) (*target, error) {
	abs, err := filepath.Abs(o.Target)
	if err != nil {
		return nil, badTarget("%s: %v", o.Target, err)
	}
	t := &target{abs: abs, parent: filepath.Dir(abs), base: filepath.Base(abs)}
	if t.parent == abs {
		return nil, badTarget("%s cannot be a restore target (it has no parent directory to build the restore in)", abs)
	}
	pfi, err := os.Stat(t.parent)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, badTarget("the parent directory %s of %s does not exist", t.parent, abs)
		}
		return nil, badTarget("%v", err)
	}
	if !pfi.IsDir() {
		return nil, badTarget("%s, the parent of %s, is not a directory", t.parent, abs)
	}
	t.dev = devOf(pfi)
	fi, err := os.Lstat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		t.aside = t.findAside()
	case err != nil:
		return nil, badTarget("%v", err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil, badTarget("%s is a symbolic link; give the directory it points to", abs)
	case !fi.IsDir():
		return nil, badTarget("%s exists and is not a directory", abs)
	default:
		t.exists = true
		if devOf(fi) != t.dev {
			return nil, badTarget("%s is a mount point; a restore is built beside the target and renamed into place, so restore into a directory inside it", abs)
		}
		names, err := readNames(abs)
		if err != nil {
			return nil, badTarget("reading %s: %v", abs, err)
		}
		t.empty = len(names) == 0
		if !t.empty && !o.Force && !o.ReuseTarget {
			return nil, fmt.Errorf("%w: %s holds %d entries", ErrTargetNotEmpty, abs, len(names))
		}
	}
	if o.LocalDir != "" {
		if l, err := filepath.Abs(o.LocalDir); err == nil && t.exists && within(realPath(l), realPath(abs)) {
			return nil, badTarget("the local directory %s is inside %s, which the restore replaces", l, abs)
		}
	}
	if o.SourceDir != "" {
		s := realPath(filepath.Clean(o.SourceDir))
		if a := realPath(abs); within(a, s) || within(s, a) {
			return nil, badTarget("%s overlaps the job location %s", abs, o.SourceDir)
		}
	}
	return t, nil
}

// within reports whether path p is dir or inside it (both clean and
// absolute).
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// realPath resolves symbolic links in the longest existing prefix of p.
func realPath(p string) string {
	rest := ""
	for {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return filepath.Join(p, rest)
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
}

func readNames(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Readdirnames(-1)
}

// findAside returns the newest ".ckpt-old-" sibling, or "".
func (t *target) findAside() string {
	names, err := readNames(t.parent)
	if err != nil {
		return ""
	}
	best, bestTime := "", int64(0)
	for _, n := range names {
		if !strings.HasPrefix(n, t.sibling(kindOld)) {
			continue
		}
		p := filepath.Join(t.parent, n)
		fi, err := os.Lstat(p)
		if err != nil || !fi.IsDir() {
			continue
		}
		if m := fi.ModTime().UnixNano(); best == "" || m > bestTime {
			best, bestTime = p, m
		}
	}
	return best
}

func devOf(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev)
	}
	return 0
}

var errLocked = errors.New("locked")

// lockDir opens directory p without following a symbolic link and takes an
// exclusive flock on it, waiting for it only if wait is set. Closing the
// file releases it.
func lockDir(p string, wait bool) (*os.File, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	how := unix.LOCK_EX | unix.LOCK_NB
	if wait {
		how = unix.LOCK_EX
	}
	if err := unix.Flock(fd, how); err != nil {
		_ = unix.Close(fd)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, &fs.PathError{Op: "flock", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// cleanStale removes the temporary siblings that interrupted restores into
// the target left behind. If the target is missing and an interrupted
// replacement left its old contents aside, they are put back first. A
// sibling locked by a running restore makes it ErrBusy.
func (t *target) cleanStale() (warnings []string, err error) {
	names, err := readNames(t.parent)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", t.parent, err)
	}
	type aside struct {
		path  string
		mtime int64
		lock  *os.File
	}
	var asides []aside
	defer func() {
		for _, a := range asides {
			a.lock.Close()
		}
	}()
	for _, n := range names {
		kind := ""
		switch {
		case strings.HasPrefix(n, t.sibling(kindTmp)):
			kind = kindTmp
		case strings.HasPrefix(n, t.sibling(kindOld)):
			kind = kindOld
		default:
			continue
		}
		p := filepath.Join(t.parent, n)
		l, err := lockDir(p, false)
		if errors.Is(err, errLocked) {
			return warnings, fmt.Errorf("%w: %s (its working directory %s is in use)", ErrBusy, t.abs, p)
		}
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("leftover %s not removed: %v", p, err))
			continue
		}
		if kind == kindTmp {
			if err := os.RemoveAll(p); err != nil {
				warnings = append(warnings, fmt.Sprintf("leftover %s not removed: %v", p, err))
			}
			l.Close()
			continue
		}
		fi, err := l.Stat()
		if err != nil {
			l.Close()
			continue
		}
		asides = append(asides, aside{path: p, mtime: fi.ModTime().UnixNano(), lock: l})
	}
	sort.Slice(asides, func(i, j int) bool { return asides[i].mtime > asides[j].mtime })
	if _, err := os.Lstat(t.abs); errors.Is(err, fs.ErrNotExist) && len(asides) > 0 {
		back := asides[0]
		asides = asides[1:]
		err := os.Rename(back.path, t.abs)
		back.lock.Close()
		if err != nil {
			return warnings, fmt.Errorf("putting back %s, the old contents of %s: %w", back.path, t.abs, err)
		}
		if err := syncDir(t.parent); err != nil {
			return warnings, err
		}
		warnings = append(warnings, fmt.Sprintf("an earlier restore was interrupted while replacing %s; its old contents were put back", t.abs))
	}
	for _, a := range asides {
		if err := os.RemoveAll(a.path); err != nil {
			warnings = append(warnings, fmt.Sprintf("leftover %s not removed: %v", a.path, err))
		}
	}
	return warnings, nil
}

// lockStores takes Pebble's own lock (an fcntl write lock on LOCK) of a
// store directly in dir and of every store in its subdirectories, so that
// no store open in another process is replaced. release drops the locks.
func lockStores(dir string) (release func(), err error) {
	var held []*os.File
	release = func() {
		for _, f := range held {
			f.Close()
		}
	}
	try := func(p string) error {
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		fd, err := unix.Open(p, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil // not ours to lock (a store we may not write is not open for writing by us either)
		}
		f := os.NewFile(uintptr(fd), p)
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
		if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
			f.Close()
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
				return fmt.Errorf("%w: %s", ErrTargetInUse, filepath.Dir(p))
			}
			return fmt.Errorf("locking %s: %w", p, err)
		}
		held = append(held, f)
		return nil
	}
	if err := try(filepath.Join(dir, "LOCK")); err != nil {
		release()
		return nil, err
	}
	names, err := readNames(dir)
	if err != nil {
		release()
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	for _, n := range names {
		p := filepath.Join(dir, n)
		if fi, err := os.Lstat(p); err != nil || !fi.IsDir() {
			continue
		}
		if err := try(filepath.Join(p, "LOCK")); err != nil {
			release()
			return nil, err
		}
	}
	return release, nil
}

func randomSuffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// install puts the finished restore tmp in place of the target and returns
// the path of the old target's contents to remove ("" if none) and a
// function releasing the lock install took on them.
func (t *target) install(tmp string, replace, noExchange bool) (old string, unlock func(), err error) {
	unlock = func() {}
	_, lerr := os.Lstat(t.abs)
	switch {
	case errors.Is(lerr, fs.ErrNotExist):
		err := errUnsupported
		if !noExchange {
			err = renameNoReplace(tmp, t.abs)
		}
		if errors.Is(err, errUnsupported) {
			err = os.Rename(tmp, t.abs) // os.Rename never replaces a directory
		}
		if errors.Is(err, fs.ErrExist) || errors.Is(err, unix.ENOTEMPTY) {
			return "", unlock, fmt.Errorf("%w: %s appeared while restoring", ErrTargetNotEmpty, t.abs)
		}
		if err != nil {
			return "", unlock, fmt.Errorf("renaming %s to %s: %w", tmp, t.abs, err)
		}
		return "", unlock, nil
	case lerr != nil:
		return "", unlock, lerr
	case !replace:
		// The target was empty: rename over it, which fails if it is not
		// empty any more (rename(2) itself: os.Rename refuses to replace
		// any directory).
		if err := unix.Rename(tmp, t.abs); err != nil {
			if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, fs.ErrExist) {
				return "", unlock, fmt.Errorf("%w: %s received files while restoring", ErrTargetNotEmpty, t.abs)
			}
			return "", unlock, fmt.Errorf("renaming %s to %s: %w", tmp, t.abs, err)
		}
		return "", unlock, nil
	}
	// Lock the old target's directory: wherever it goes, no other restore
	// takes it for a leftover while it is on its way out.
	l, err := lockDir(t.abs, false)
	if errors.Is(err, errLocked) {
		return "", unlock, fmt.Errorf("%w: %s is locked", ErrBusy, t.abs)
	}
	if err != nil {
		return "", unlock, err
	}
	unlock = func() { l.Close() }
	err = errUnsupported
	if !noExchange {
		err = exchange(tmp, t.abs)
	}
	if err == nil {
		return tmp, unlock, nil // tmp now holds the old target
	}
	if !errors.Is(err, errUnsupported) {
		return "", unlock, fmt.Errorf("exchanging %s and %s: %w", tmp, t.abs, err)
	}
	aside := filepath.Join(t.parent, t.sibling(kindOld)+randomSuffix())
	if err := os.Rename(t.abs, aside); err != nil {
		return "", unlock, fmt.Errorf("renaming %s aside: %w", t.abs, err)
	}
	if err := os.Rename(tmp, t.abs); err != nil {
		if rerr := os.Rename(aside, t.abs); rerr != nil {
			return "", unlock, fmt.Errorf("renaming %s to %s: %w (and putting the old target back from %s: %v)", tmp, t.abs, err, aside, rerr)
		}
		return "", unlock, fmt.Errorf("renaming %s to %s: %w", tmp, t.abs, err)
	}
	return aside, unlock, nil
}

// othersRunning reports ErrBusy if another restore into the target holds
// a temporary sibling other than own.
func (t *target) othersRunning(own string) error {
	names, err := readNames(t.parent)
	if err != nil {
		return fmt.Errorf("reading %s: %w", t.parent, err)
	}
	for _, n := range names {
		p := filepath.Join(t.parent, n)
		if !strings.HasPrefix(n, t.sibling(kindTmp)) || p == own {
			continue
		}
		l, err := lockDir(p, false)
		if errors.Is(err, errLocked) {
			return fmt.Errorf("%w: %s (its working directory %s is in use)", ErrBusy, t.abs, p)
		}
		if err == nil {
			l.Close()
		}
	}
	return nil
}

var errUnsupported = errors.New("not supported by this filesystem")

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
