//go:build linux

package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync/atomic"
	"syscall"

	"gocloud.dev/gcerrors"
	"golang.org/x/sys/unix"
)

// openat2Missing is set once openat2(2) is found missing (Linux < 5.6, or
// a seccomp filter): lstatKey then checks component by component.
var openat2Missing atomic.Bool

// lstatBeneath is lstatKey in one path resolution: openat2(2) with
// RESOLVE_NO_SYMLINKS and RESOLVE_BENEATH fails on a symbolic link anywhere
// in key, and on any escape from dir, in the kernel, instead of one Lstat
// per component. ok is false when openat2 is not available.
func lstatBeneath(dir, key string) (fi fs.FileInfo, err error, ok bool) {
	if openat2Missing.Load() {
		return nil, nil, false
	}
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}, true
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat2(dfd, osPath(key), &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_BENEATH,
	})
	switch {
	case errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM):
		openat2Missing.Store(true)
		return nil, nil, false
	case errors.Is(err, unix.ELOOP):
		return nil, withCode(gcerrors.NotFound, fmt.Errorf("%s: %w", key, errSymlink)), true
	case errors.Is(err, unix.ENOTDIR):
		return nil, withCode(gcerrors.NotFound, &fs.PathError{Op: "lstat", Path: key, Err: syscall.ENOTDIR}), true
	case err != nil:
		return nil, &fs.PathError{Op: "lstat", Path: key, Err: err}, true
	}
	f := os.NewFile(uintptr(fd), osPath(key))
	defer f.Close()
	fi, err = f.Stat()
	if err != nil {
		return nil, err, true
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, withCode(gcerrors.NotFound, fmt.Errorf("%s: %w", key, errSymlink)), true
	}
	return fi, nil, true
}
