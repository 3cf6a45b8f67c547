package storage

import (
	"io/fs"
	"os"
	"sync"
	"time"
)

// Directories with fewer entries than this are cheap to read again and are
// not cached.
const dirCacheMinEntries = 1000

// dirCacheSize is the number of directories a dirCache holds.
const dirCacheSize = 4

// A dirCache keeps the sorted entries of the last few large directories a
// listing read, for the listing's next pages. An entry is used only while
// the directory is the same inode with the same modification time and was
// read less than dirCacheTTL ago; the first page of every listing reads
// afresh. The zero value is ready to use and safe for concurrent use.
type dirCache struct {
	mu      sync.Mutex
	entries []cachedDir
}

// dirCacheTTL bounds how stale a cached directory can be, for a change made
// within the filesystem's timestamp granularity of the read.
const dirCacheTTL = 10 * time.Second

// dirCacheQuiet is how long a directory must have been unchanged to be
// cached: far above any filesystem's timestamp granularity.
const dirCacheQuiet = 2 * time.Second

type cachedDir struct {
	dir     os.FileInfo
	read    time.Time
	entries []dirEntry
}

func (c *dirCache) get(dir os.FileInfo) ([]dirEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		if sameDir(e.dir, dir) && time.Since(e.read) < dirCacheTTL {
			return e.entries, true
		}
	}
	return nil, false
}

func (c *dirCache) put(dir os.FileInfo, entries []dirEntry) {
	// A directory changed just before it was read may change again within
	// the same timestamp tick, unseen: don't cache it.
	if len(entries) < dirCacheMinEntries || time.Since(dir.ModTime()) < dirCacheQuiet {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.entries[:0]
	for _, e := range c.entries {
		if !os.SameFile(e.dir, dir) {
			kept = append(kept, e)
		}
	}
	c.entries = append(kept, cachedDir{dir: dir, read: time.Now(), entries: entries})
	if len(c.entries) > dirCacheSize {
		c.entries = c.entries[len(c.entries)-dirCacheSize:]
	}
	// Memory is held only while a listing may still use it.
	time.AfterFunc(dirCacheTTL, c.expire)
}

// expire drops the entries too old to be used.
func (c *dirCache) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.entries[:0]
	for _, e := range c.entries {
		if time.Since(e.read) < dirCacheTTL {
			kept = append(kept, e)
		}
	}
	clear(c.entries[len(kept):])
	c.entries = kept
}

func sameDir(a, b fs.FileInfo) bool {
	return os.SameFile(a, b) && a.ModTime().Equal(b.ModTime())
}
