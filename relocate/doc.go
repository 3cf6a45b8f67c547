// Package relocate copies checkpoints to another job location, in the same
// bucket, another bucket or another storage service, so that the copy
// references only objects under the destination job, by relative paths.
//
// Work is a plan, then an execution: NewPlan reads and checks everything
// and writes nothing; Plan.Execute reserves, copies, verifies and commits.
// A dry run is NewPlan alone.
//
// # Layout at the destination
//
// A file that the source keeps in some job's shared/ directory (its own
// job's or, after a restore with claim, another job's up the chain) becomes
// DST/shared/<metadata.SharedName>; every other file becomes
// DST/chk-<N>/<store>/<name>. Keys are built by metadata.Job only. Shared
// objects are content-named, so relocating several checkpoints (a whole job)
// copies each shared object once.
//
// # Invariants
//
//   - Nothing is written to the destination before the source has been
//     checked: every source `_metadata` decodes, and every object still to
//     copy exists with its recorded size (and, with Options.ReadData, its
//     recorded SHA-256). A failure lists every bad object.
//   - The source is only read. Nothing outside the destination job is
//     written, and an existing checkpoint (`chk-<N>/_metadata`) at the
//     destination is never overwritten: a different one there is a conflict
//     (ErrDestinationExists, which also matches storage.ErrExists).
//   - Each destination id is reserved with a create-if-absent
//     `chk-<N>/_pending` marker (metadata.Pending), as checkpoint.Create
//     does, before anything is written for it. The marker's token is
//     derived from the destination checkpoint's identity (id, job id,
//     creation time, stores, files' names, sizes and checksums), so a
//     re-run of the same relocation recognises its own reservation and
//     resumes, while anyone else's marker is a conflict.
//   - `_metadata` is written last, create-if-absent, only after every object
//     it references has been verified at the destination (size, and SHA-256
//     with ReadData), and only while the reservation is still the
//     relocation's own. An interrupted relocation therefore never leaves a
//     `_metadata` that references a missing object, and a half-done
//     relocation is never a checkpoint.
//   - gc's protocol is followed (see package gc): markers are rewritten
//     while copying; an object already at the destination is kept only if
//     gc cannot collect it before the commit (written since the
//     reservation was made, or referenced by the committed base checkpoint
//     the marker names); a shared object that exists but cannot be kept is
//     never overwritten, the copy goes under a name unique to the reserved
//     directory (metadata.SharedNameFor) instead.
//   - Re-running with the same arguments is safe and finishes the work: a
//     re-run renews its earlier reservation with the time it was first
//     made, so it keeps what the interrupted run copied (size, and checksum
//     with ReadData); a checkpoint already committed with the same identity
//     counts as done.
//   - Every streamed object is hashed on the way and never committed if it
//     disagrees with the source's `_metadata`.
//   - The new `_metadata` names nothing outside the destination job: every
//     path is relative and stays inside it, and a lineage link that would
//     point elsewhere is cut (its path dropped, its job and checkpoint ids
//     kept). A plain copy of the destination job is therefore a valid job.
//   - Copies run in parallel (Options.Parallel) with bounded memory: objects
//     are streamed, never held whole in memory. When source and destination
//     are the same *blob.Bucket, objects are copied server-side
//     (Bucket.Copy) instead.
//
// # Formats
//
// The execution works on a list of copies (source key, destination key,
// size, checksum) and, per checkpoint, a function that renders the
// `_metadata` to commit once the objects are in place. Only planning knows
// ckpt's `_metadata` format (ckpt.go); a second format (Flink's) plugs in by
// producing the same units.
package relocate
