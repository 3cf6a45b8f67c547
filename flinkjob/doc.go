// Package flinkjob reads, verifies, relocates and garbage-collects Apache
// Flink checkpoints kept on object storage: checkpoint directories holding a
// Flink `_metadata` (decoded by package flink) and Flink job directories
// (`<checkpoint-dir>/<jobId>/` with `chk-<N>/`, `shared/` and `taskowned/`).
// It works on a *blob.Bucket opened by the caller (see Store) and never
// opens a location itself.
//
// # Paths from `_metadata`
//
// Flink writes absolute URIs (`file:/…`, `s3://bucket/…`, `gs://…`,
// `abfss://container@account/…`, `hdfs://…`) and, for files inside the
// `_metadata`'s own directory, relative names. Store.Resolve turns such a
// path into a key of the opened bucket. Paths are never trusted: a relative
// path may not climb out of its directory (no "..", ".", empty segment,
// leading "/" or backslash, and the same for the path of an absolute URI),
// and an absolute URI that names another scheme or bucket is reported as
// outside the opened bucket (ErrOutsideBucket) and never read, copied or
// deleted. Entropy-injected paths (Flink's `s3.entropy.key`) are ordinary
// keys of the same bucket and resolve like any other.
//
// # Invariants
//
//   - Detect, ReadMetadata, ReadCheckpoint and ReadJob only read.
//   - Relocation (NewRelocatePlan, RelocatePlan.Execute) never writes before
//     the source has been checked: the `_metadata` decodes, every referenced
//     file resolves into the source bucket and exists with its recorded size
//     (a segment file at least as long as its last segment). It never writes
//     outside the destination directory, never overwrites a `_metadata`,
//     writes `_metadata` last and create-if-absent, only after every file it
//     references has been verified at the destination, and a re-run of an
//     interrupted relocation finishes it. Every object written is streamed
//     and checked against the size the source listing gave.
//   - The relocated `_metadata` differs from the source only in the paths of
//     the handles naming files (turned into names relative to the new
//     directory, or, for file-merging segments, which have no relative form,
//     absolute URIs of the new directory); everything else, the trailer
//     included, is byte-identical.
//   - Garbage collection (NewGCPlan, GCPlan.Execute) deletes only objects
//     under the `chk-<N>/` and `shared/` directories of the named jobs; it
//     never touches `taskowned/` nor anything else. It deletes nothing at
//     all if any `_metadata` of the named jobs cannot be read and decoded,
//     or names a path that cannot be resolved (fail closed), and nothing
//     younger than Options.MinAge. It deletes an expired checkpoint's
//     `_metadata` first, then that checkpoint's other objects and stale
//     incomplete directories, then, after reading every `_metadata` again,
//     the `shared/` objects no checkpoint references. A crash at any point
//     leaves only unreferenced objects, which the next run removes.
//
// Errors wrap the sentinels below so that callers can map them to exit
// statuses; none of them is returned bare.
package flinkjob
