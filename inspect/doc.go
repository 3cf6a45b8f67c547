// Package inspect describes and verifies checkpoints and jobs.
//
// Invariants:
//   - It only reads: no call in this package writes or deletes an object.
//   - Every file path from a `_metadata` is resolved with metadata.Resolve
//     (never joined by hand), so a path that escapes the storage root is
//     reported as corrupt, not followed.
//   - Verification reports every bad file, not just the first: a missing
//     object, a size mismatch, or (with ReadData) a checksum mismatch, each
//     naming the object. A report with problems comes with an error wrapping
//     ErrVerifyFailed.
//   - Following lineage is bounded (MaxChain) and cycle-safe.
package inspect
