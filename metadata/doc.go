// Package metadata owns ckpt's on-storage layout and the `_metadata` format.
//
// A job location holds checkpoint directories `chk-<N>/` and a `shared/`
// directory. A checkpoint exists if and only if its `chk-<N>/_metadata`
// object exists and decodes: that object is written last, create-only-if-
// absent, and is the commit point of a checkpoint.
//
// Invariants:
//   - Every object key ckpt builds is built here (Job, Checkpoint, Resolve);
//     no other package joins key strings.
//   - Encode is deterministic: the same Checkpoint value always gives the same
//     bytes (fields in a fixed order, stores and files sorted).
//   - Decode never panics and never trusts its input: it checks the magic,
//     the format version (newer versions are refused with ErrNewerVersion),
//     the SHA-256 trailer (a truncated or altered file is ErrCorrupt), sizes
//     and counts, and every path. Paths are relative to the directory that
//     holds `_metadata`; absolute paths, empty or `.` segments, backslashes,
//     NUL bytes and `..` anywhere but at the start are rejected, and Resolve
//     rejects any path that climbs above the storage root.
//   - Store file names (the names a restore writes) are single path elements
//     with no separators, so a restore can never write outside its target.
package metadata
