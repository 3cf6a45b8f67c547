// Package faultblob wraps a *blob.Bucket so that tests can count storage
// operations and make chosen ones fail, crash or misbehave.
//
// Wrap returns a bucket whose driver forwards every call to the inner bucket
// through its public API: keys, options (including IfNotExist), callbacks
// and errors pass through unchanged, so gcerrors codes and ErrorAs survive
// the wrapping. An Injector decides the fate of each operation.
//
// # What counts as one operation
//
// Operations are numbered 1, 2, 3, … in the order they start, across all
// goroutines sharing the Injector:
//
//   - "read": opening a reader (NewReader, NewRangeReader, ReadAll,
//     Download). Read calls on an open reader are not counted.
//   - "write": closing a writer (Writer.Close, and so WriteAll and Upload),
//     which is when the object becomes visible. NewWriter and Write are not
//     counted. A writer whose context is cancelled before Close is discarded
//     without counting.
//   - "list": each page fetched from the driver (one ListPage call, or one
//     page of a List iteration).
//   - "attrs": Attributes (and so Exists).
//   - "copy": Copy; Op.Key is the destination and Op.Src the source.
//   - "delete": Delete.
//
// SignedURL and Close are not counted.
//
// # Invariants
//
//   - Writers buffer their bytes in memory and hand them to the inner bucket
//     in one Upload call at Close: an object written through faultblob
//     appears whole or not at all, and a writer that is never closed, or
//     closed after a crash or an injected failure, leaves nothing behind.
//     Upload is also the inner call that does not trip gocloud's azureblob
//     panic on a failed conditional write.
//   - After a crash every call fails with ErrCrashed, including Read and Write
//     on readers and writers opened before it, until Reset.
//   - A failure injected before an operation means the inner bucket never saw
//     it; FailAfter and FlakyAfter let the operation take effect and report
//     an error anyway, as a lost response would.
//
// # Misbehaving storage
//
// Besides hard failures and crashes, an Injector can make storage misbehave
// the way real services do: Flaky and FlakyAfter fail operations with
// ErrTransient a given number of times before they succeed, BreakReads
// breaks readers mid-stream, Delay makes responses slow (in real time,
// honouring the context), HideFromList makes listings miss objects that
// exist, ShortRead ends reads early without an error, and Corrupt flips the
// bytes read. storage.WithRetry above a faultblob bucket shows how ckpt
// copes with each.
package faultblob
