//go:build !linux

package restore

// renameNoReplace is not available here: the caller checks and renames.
func renameNoReplace(from, to string) error { return errUnsupported }

// exchange is not available here: the caller renames the old target aside
// first.
func exchange(a, b string) error { return errUnsupported }
