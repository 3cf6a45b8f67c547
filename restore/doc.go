// Package restore materialises a checkpoint as Pebble store directories on
// the local filesystem: NewPlan decides where every file comes from (a local
// copy kept by `ckpt create --local-dir`, the files already in the target,
// or the checkpoint's storage), and Plan.Execute builds the stores, verifies
// them and puts them in place.
//
// # Layout
//
// A checkpoint with one store, or one store chosen with Options.Store, is
// restored directly into the target directory. A checkpoint with several
// stores is restored into TARGET/<store name>/, one directory per store.
// Every restored store holds exactly the checkpoint's files plus the origin
// file (checkpoint.OriginFile) recording where it came from, so that the
// next checkpoint taken from it knows its lineage.
//
// # Invariants
//
//   - Nothing is written outside the target and its temporary siblings in
//     the target's parent directory (".<target>.ckpt-restore-…" while the
//     restore runs, ".<target>.ckpt-old-…" during a replacement). Store file
//     names are checked again here (single path elements, no duplicates, not
//     even under case folding, not the origin file's name), every object key
//     is built with metadata.Resolve, and files are created through an
//     os.Root opened on the temporary directory.
//   - Symbolic links are never followed out of the local directory or the
//     target: only regular files found with Lstat are used, each is opened
//     through an os.Root and must still be the same inode when it is read or
//     linked. A target that is itself a symbolic link, a file or a mount
//     point is refused.
//   - Every file that lands in a restored store was verified against the
//     checkpoint's recorded size and SHA-256: downloaded and copied bytes
//     are hashed while they stream; local candidates are hashed before they
//     are used and must still be the same, unmodified inode when hard-linked.
//     A local copy that is missing, partial, corrupt or changed is never an
//     error: the file is fetched from storage instead.
//   - The stores are built in a temporary directory beside the target, every
//     file and directory is fsynced, and the result is opened with Pebble v2
//     read-only (Options.Check: every level is read and checked). Only then
//     is it renamed into place. The verification opens the store through a
//     filesystem that refuses every write and takes no lock, so it creates no
//     LOCK file: a restored store holds exactly the checkpoint's files.
//   - Atomicity. A new target appears whole with one rename (RENAME_NOREPLACE
//     on Linux, so a directory created meanwhile is never replaced). An
//     existing target is swapped with the new one in one atomic exchange
//     (Linux renameat2 RENAME_EXCHANGE) and then deleted. Where the
//     filesystem cannot exchange, the old target is first renamed aside and
//     the new one renamed in: between those two renames the target is absent
//     and its old contents are in the ".ckpt-old-" sibling; the next restore
//     into the same target puts them back before it does anything else. A
//     crash or cancellation at any other point leaves the old target (or no
//     target) untouched and at most a temporary sibling, which the next
//     restore into the same target removes. A running restore holds a flock
//     on its temporary directory, so a concurrent one never removes it and
//     refuses to run instead.
//   - A target store that another process has open (its Pebble LOCK is
//     held) is never replaced.
//   - Memory use is bounded by Options.Parallel buffers of 1 MiB, whatever
//     the file sizes.
//   - This package never prints: progress goes to a progress.Reporter and
//     non-fatal problems to Plan.Warnings and Result.Warnings.
package restore
