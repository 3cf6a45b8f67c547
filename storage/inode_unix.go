//go:build unix

package storage

import (
	"io/fs"
	"syscall"
)

// inode returns the inode number of fi, used in the local-file ETag.
func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
