// Package flink reads and writes Apache Flink checkpoint and savepoint
// metadata files (_metadata), format versions 2 to 6 (Flink 1.3 to 2.1).
//
// Decode turns a file into a Metadata value: operators with their subtasks,
// and every state handle Flink writes there (inline byte streams, absolute
// and relative file handles, key-group handles, incremental RocksDB handles,
// changelog handles, operator state handles, file-merging segment handles,
// unaligned-checkpoint channel handles, merged channel handles of version 6,
// coordinator and master states, finished subtasks and operators).
// Metadata.Encode writes it back. Metadata.FileRefs lists every handle that
// names a file, and FileRef.SetPath rewrites such a path in place (turning a
// FileStateHandle into a RelativeFileStateHandle or back, as Flink's writer
// lays them out), which is what relocating a checkpoint needs.
//
// # Invariants
//
// Round-trip identity: for every input Decode accepts, Encode of the result
// returns exactly the input bytes, and decoding those again gives a
// structurally equal Metadata. To guarantee it, Decode keeps the fields
// Flink reads and ignores (the version-2 chain length, subtask duration and
// legacy state count), keeps opaque parts verbatim, keeps legacy tags
// (Flink's reader turns tags 3, 5, 8 and 10 into their current forms; this
// package writes them back as read), and rejects the few encodings Flink's
// reader tolerates but its writer never produces and that could not be
// written back identically: booleans and presence flags other than 0 and 1,
// modified UTF-8 with a raw NUL byte or overlong forms, negative counts other
// than the fully-finished marker, a null operator state handle announced as
// present. Changing a Metadata changes the output only where it was changed.
//
// No panic: Decode, Encode and every other function of the package return
// errors on any input, including hostile or corrupted files and Metadata
// values built by hand. Decode errors are *DecodeError values naming the
// byte offset at fault, e.g. "flink: unknown keyed state handle tag 42 at
// offset 1234" or "flink: unexpected end of data at offset 96 reading
// operator parallelism"; errors.Is tells their classes apart (ErrTruncated,
// ErrUnknownTag, ErrUnsupportedVersion, ErrNotMetadata, ErrInvalid,
// ErrLimit).
//
// Bounded allocation: every count or length read from a file is checked
// against the bytes left before anything is allocated for it (a count of
// elements that each need at least k bytes must not exceed remaining/k), and
// handles nest at most 32 levels deep, so decoding uses bounded stack and
// allocates in proportion to the input: under 48 bytes per input byte even
// for inputs made of the cheapest elements (a finished subtask takes 4 bytes
// of input and one SubtaskState), and far less for real files. The decoded
// Metadata never aliases the input.
//
// Strings are Java modified UTF-8 on disk (U+0000 as C0 80, characters above
// U+FFFF as two 3-byte surrogates) and Go strings in memory. An unpaired
// surrogate, which a Java string may hold, is kept in its 3-byte generalized
// UTF-8 form (WTF-8) so that it round-trips; such strings are not valid
// UTF-8.
//
// # What it does not interpret
//
// The package does not interpret: the version 4+ trailer (Flink's
// Java-serialized CheckpointProperties; only its AC ED 00 05 header is
// checked, the rest is kept as opaque bytes, so a file truncated inside the
// trailer is not detected); master states (kept opaque, MasterState.Contents
// decodes them on request); the contents of inline state (byte stream data,
// changelog changes, merged channel offsets); the meaning of offsets and
// key-group ranges. It does not resolve relative paths (they are relative to
// the directory holding _metadata, which the caller knows) nor touch any
// file. Version 1 (Flink 1.2) and versions above 6 are rejected.
package flink
