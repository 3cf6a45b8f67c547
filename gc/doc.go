// Package gc deletes exactly what no retained checkpoint needs.
//
// A job's checkpoints are kept or expired by a Policy (the newest complete
// checkpoint is always kept). A file is live if a kept checkpoint of any job
// gc can see references it: the jobs named, plus every job that recorded a
// referrer marker (`<job>/_referrers/<id>`, written by a creator before it
// reuses another job's shared files) in a named job.
//
// What gc never deletes:
//   - a live file, or anything under a job whose checkpoints (or whose
//     referrers' checkpoints) cannot all be read: such a job is blocked and
//     gc deletes nothing in it (fail closed), and says which;
//   - any shared object younger than MinAge, or any object of an
//     incomplete `chk-<N>/` whose reservation or objects are younger than
//     MinAge (a creator may still be writing it);
//   - the files of the checkpoint a live reservation builds on (its base or
//     claimed source), even if that checkpoint itself expires;
//   - anything outside the named jobs' directories and the local directory.
//
// Sweep order, which makes every crash leave only unreachable objects that
// the next run removes: (1) the `_metadata` of expired checkpoints (they stop
// being checkpoints); (2) their private files, and stale incomplete
// directories, reservation marker first; (3) after re-reading referrer and
// reservation markers, the shared files no live checkpoint or reservation
// needs; (4) stale referrer markers, the storage's temporary files left by
// killed writers (Options.SweepTemps, older than MinAge), and local copies. Each step's deletions
// are durable (storage.SyncBatch) before the next step starts, so the order
// holds across a power loss too, not only a process crash.
//
// Concurrent creators (package checkpoint) are safe by protocol: a creator
// writes its reservation and referrer markers, then checks that the
// checkpoint it reuses from still has its `_metadata`. gc deletes that
// `_metadata` (step 1) before it re-reads the markers (step 3). Either the
// creator's markers are visible to step 3, and gc keeps what they name, or
// they were written after it, and then the creator sees the `_metadata` gone
// and reuses nothing. New uploads are younger than MinAge; creators refresh
// their reservation every few minutes, so MinAge (default 6h) only has to
// exceed that interval by a wide margin, and a creator whose reservation
// was collected refuses to commit.
package gc
