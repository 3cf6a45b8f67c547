// Package checkpoint takes incremental checkpoints of Pebble stores into a
// job location on object storage.
//
// Invariants:
//   - The source store is never modified: OpenDir takes the store's own
//     LOCK without creating it and opens it with Pebble read-only through a
//     filesystem that refuses every write; FromDB works on a Pebble
//     checkpoint in a scratch directory.
//   - A checkpoint exists only once its `_metadata` is written, last and
//     create-only-if-absent. Everything written before belongs to a reserved
//     `chk-<N>/` (reserved with a create-if-absent `_pending` marker, so no
//     two creators share an id) or is a content-named shared object.
//   - Shared objects are named by content (metadata.SharedName) and never
//     overwritten; an existing one is reused only after its size and
//     checksum match.
//   - Every uploaded byte is hashed on the way and compared with the hash
//     taken before the upload; a mismatch aborts the write before it is
//     committed, so a changing source never yields a checkpoint whose files
//     disagree with its metadata. The hash taken before the upload is
//     computed from the file, except for a shared file that is the same
//     inode as in the previous local copy (--local-dir) and unmodified since
//     that copy's `_metadata` was written: its digest is taken from there.
//   - On local files, uploads' directory fsyncs are batched and completed
//     before `_metadata` is written (storage.SyncBatch).
//   - The remote copy is primary: a failure of the local secondary copy is a
//     warning, never a failed checkpoint.
package checkpoint
