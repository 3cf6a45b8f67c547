// Package storage is the only place in ckpt that turns a location string into
// a *blob.Bucket and the only package that imports gocloud drivers.
//
// # Locations
//
// Open accepts gocloud-style URLs (file://, mem://, s3://, gs://, azblob://)
// and plain local paths. The path after the bucket name becomes the
// location's prefix; the query string is handed to the driver's own URL
// opener unchanged (for example s3's region, endpoint, use_path_style and
// disable_https, or azblob's protocol, domain and localemu). Credentials never
// come from the location: drivers read them from their usual environment
// variables, and a location carrying userinfo is rejected.
//
// Open makes no network calls of its own. Location.Check performs one cheap
// listing call and turns the usual failures (unreachable endpoint, permission
// denied, missing bucket) into one-line errors.
//
// # Invariants
//
//   - Every error this package returns that names a location shows the
//     location through Redact, so secrets in query parameters or userinfo
//     never reach a message, a log or a JSON field.
//   - Local files are served by this package's own driver, not gocloud's
//     fileblob: it writes no ".attrs" sidecar files, makes every write visible
//     atomically (temporary file, fsync, rename, directory fsync) and
//     implements create-if-absent atomically with a hard link. See CheckKey
//     for the keys it accepts and Open for its symlink policy.
//   - A write, copy or delete on local files is durable when it returns
//     (the directories it changed are fsynced, including ones it created),
//     except under a SyncBatch (WithSyncBatch), where the directory fsyncs
//     wait for the batch's Sync: callers use one before each commit point
//     (create, relocate) and between gc's sweep steps, so a run of N
//     objects costs one fsync per directory instead of N.
//   - WriteIfAbsent is create-if-absent on every backend and reports a lost
//     race as ErrExists.
//   - No write ever reaches the gocloud v0.47 azureblob code path that panics
//     when an upload fails (Writer.Write followed by a failed upload, for
//     example a lost conditional write or a cancelled context): azblob
//     buckets returned by Open route every writer through the driver's
//     Upload method, which returns the error instead.
//   - Buckets from Open retry transient failures (IsTransient) by
//     DefaultRetryPolicy: at most 5 attempts within 30 s, exponential
//     backoff with jitter, and an attempt timeout on calls that move no data
//     (WithRetry lists what is retried). Only operations that are safe to
//     repeat are retried; a create-if-absent write retried after an
//     ambiguous failure succeeds only if the object it finds holds exactly
//     its bytes, and is a conflict (ErrExists) otherwise. A failure that
//     outlasts the policy is a *RetryError saying how many attempts were
//     made. Nothing here detects a read that is short or corrupt but
//     reports no error: callers compare sizes and checksums.
//   - mem:// buckets live in a process-wide registry keyed by name, so two
//     Opens of the same mem URL share data; ResetMem empties the registry.
//     The registry is the only package-level mutable state.
//
// Errors from operations on a Location's Bucket come straight from gocloud;
// pass them through Wrap, which redacts their text and lets callers test them
// with errors.Is(err, ErrNotFound) and errors.Is(err, ErrExists).
package storage
