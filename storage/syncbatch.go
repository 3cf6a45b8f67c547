package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"gocloud.dev/blob"
)

// A SyncBatch defers the directory fsyncs of the local-file driver to one
// explicit barrier. By default every write, copy and delete on a local
// location fsyncs the directories it changed before it returns, so that a
// completed call is durable. Work that makes many changes and has its own
// commit point (a checkpoint's objects before its _metadata, a gc step
// before the next) can instead run them under WithSyncBatch and call Sync
// before the commit point: each changed directory is then fsynced once,
// not once per object.
//
// Until Sync returns, a crash may undo any change made under the batch
// (an object written may be missing, a deleted one back): callers must not
// make anything depend on those changes before Sync. Objects' contents are
// still fsynced before they become visible, so an object that survives a
// crash is always complete. Other drivers ignore the batch: their writes and
// deletes are durable when the call returns.
//
// A SyncBatch is safe for concurrent use.
type SyncBatch struct {
	mu sync.Mutex
	// dirs maps an absolute directory path to whether it must still exist
	// at Sync (false for directories recorded by deletions, which a later
	// deletion may have pruned).
	dirs map[string]bool
}

type syncBatchKey struct{}

// includeKey marks the context of SyncBatch.Include's Attributes calls.
type includeKey struct{}

// localFiles is what the local-file driver answers to Bucket.As.
type localFiles bool

func including(ctx context.Context) bool {
	return ctx.Value(includeKey{}) != nil && syncBatchFrom(ctx) != nil
}

// WithSyncBatch returns a context that makes local-file writes, copies and
// deletes made with it record the directories to fsync in the returned
// batch instead of fsyncing them.
func WithSyncBatch(ctx context.Context) (context.Context, *SyncBatch) {
	sb := &SyncBatch{dirs: map[string]bool{}}
	return context.WithValue(ctx, syncBatchKey{}, sb), sb
}

func syncBatchFrom(ctx context.Context) *SyncBatch {
	sb, _ := ctx.Value(syncBatchKey{}).(*SyncBatch)
	return sb
}

func (sb *SyncBatch) add(dir string, mustExist bool) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sb.dirs[dir] = sb.dirs[dir] || mustExist
}

// Include adds to the batch the directories holding keys, objects in b
// that this process may not have written itself: an earlier, interrupted
// run's uploads whose directory fsyncs never happened. After Sync they are
// durable too. It fails if a key does not exist. On other drivers it does
// nothing.
func (sb *SyncBatch) Include(ctx context.Context, b *blob.Bucket, keys ...string) error {
	var local localFiles
	if !b.As(&local) {
		return nil
	}
	ctx = context.WithValue(context.WithValue(ctx, syncBatchKey{}, sb), includeKey{}, true)
	for _, k := range keys {
		if _, err := b.Attributes(ctx, k); err != nil {
			return fmt.Errorf("reading %s: %w", k, err)
		}
	}
	return nil
}

// ancestors returns the directories above dir (a key prefix, or ".") up to
// and including the location directory floor, deepest first.
func ancestors(dir, floor string) []string {
	var out []string
	for dir != "." && dir != floor {
		dir = parentKey(dir)
		out = append(out, osPath(dir))
	}
	return out
}

// Len is the number of distinct directories waiting for Sync.
func (sb *SyncBatch) Len() int {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return len(sb.dirs)
}

// Sync fsyncs every directory recorded since the last Sync, deepest first,
// a few at a time. A directory recorded by a deletion that has since been
// removed is skipped (its parent, recorded too, holds the change). After
// Sync returns nil every change made under the batch is durable. On error
// the batch keeps the directories that were not synced, so Sync can be
// called again.
func (sb *SyncBatch) Sync(ctx context.Context) error {
	sb.mu.Lock()
	dirs := make([]string, 0, len(sb.dirs))
	for d := range sb.dirs {
		dirs = append(dirs, d)
	}
	sb.mu.Unlock()
	// Deepest first, so a directory's own entry in its parent is synced
	// after the directory's contents.
	sort.Slice(dirs, func(i, j int) bool {
		if a, b := depth(dirs[i]), depth(dirs[j]); a != b {
			return a > b
		}
		return dirs[i] < dirs[j]
	})
	var errs []error
	for _, d := range dirs {
		if err := ctx.Err(); err != nil {
			return err
		}
		sb.mu.Lock()
		mustExist := sb.dirs[d]
		sb.mu.Unlock()
		err := syncPath(d)
		if err != nil && !mustExist && errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("syncing directory %s: %w", d, err))
			continue
		}
		sb.mu.Lock()
		delete(sb.dirs, d)
		sb.mu.Unlock()
	}
	return errors.Join(errs...)
}

func depth(p string) int {
	n := 0
	for _, c := range p {
		if c == filepath.Separator {
			n++
		}
	}
	return n
}

func syncPath(dir string) error { return syncClose(os.Open(dir)) }

// syncClose fsyncs and closes the file just opened (or returns the error
// opening it).
func syncClose(f *os.File, err error) error {
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDirs makes the changes in the directories dirs (relative to root, the
// opened location b.dir) durable now, or records them in ctx's batch.
// Directories changed by a deletion need not exist any more.
func (b *fileBucket) syncDirs(ctx context.Context, root *os.Root, deleted bool, dirs ...string) error {
	if sb := syncBatchFrom(ctx); sb != nil {
		for _, d := range dirs {
			sb.add(filepath.Join(b.dir, d), !deleted)
		}
		return nil
	}
	for _, d := range dirs {
		err := syncDir(root, d)
		if deleted && errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}
