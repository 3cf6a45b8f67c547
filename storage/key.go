package storage

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// tempPrefix starts the name of every temporary file the local-file driver
// creates. Such files are never listed, and no key segment may start with it.
const tempPrefix = ".ckpt-tmp-"

// CheckKey reports whether key is acceptable to every backend, in particular
// to the local-file driver, which rejects anything else with an error whose
// gcerrors code is InvalidArgument. A valid key:
//
//   - is valid UTF-8 and not empty;
//   - is a "/"-separated list of segments, none of which is empty (so no
//     leading, trailing or doubled "/"), "." or "..";
//   - contains no NUL byte and no backslash;
//   - has no segment starting with ".ckpt-tmp-" (reserved for temporary
//     files, which are never listed).
//
// Object stores accept more, but ckpt keys must stay within these rules so
// that every location behaves the same. CheckKey does not write or allocate.
func CheckKey(key string) error {
	if key == "" {
		return fmt.Errorf("storage: invalid key %q: empty", key)
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("storage: invalid key %q: not valid UTF-8", key)
	}
	if strings.ContainsAny(key, "\x00\\") {
		return fmt.Errorf("storage: invalid key %q: contains NUL or backslash", key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return fmt.Errorf("storage: invalid key %q: empty path segment", key)
		case seg == "." || seg == "..":
			return fmt.Errorf("storage: invalid key %q: %q segment", key, seg)
		case strings.HasPrefix(seg, tempPrefix):
			return fmt.Errorf("storage: invalid key %q: segment starts with reserved %q", key, tempPrefix)
		}
	}
	return nil
}
