//go:build !unix

package storage

import "io/fs"

// inode returns 0 where inode numbers are not available; the local-file ETag
// then rests on the modification time and size alone.
func inode(fs.FileInfo) uint64 { return 0 }
