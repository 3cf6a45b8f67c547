//go:build !linux

package storage

import "io/fs"

// lstatBeneath is not available: lstatKey checks component by component.
func lstatBeneath(dir, key string) (fs.FileInfo, error, bool) { return nil, nil, false }
