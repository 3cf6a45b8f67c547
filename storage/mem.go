package storage

import (
	"sync"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/ckpt-dev/ckpt/storage/internal/relay"
)

// memRegistry holds the in-process buckets behind mem:// locations, keyed by
// name. It is the package's only mutable state.
var memRegistry struct {
	mu      sync.Mutex
	buckets map[string]*blob.Bucket
}

// openMem returns a new *blob.Bucket sharing the data of the mem bucket
// called name, creating that bucket on first use. Closing the returned bucket
// leaves the shared data in place.
func openMem(name string) *blob.Bucket {
	memRegistry.mu.Lock()
	defer memRegistry.mu.Unlock()
	b, ok := memRegistry.buckets[name]
	if !ok {
		if memRegistry.buckets == nil {
			memRegistry.buckets = make(map[string]*blob.Bucket)
		}
		b = memblob.OpenBucket(nil)
		memRegistry.buckets[name] = b
	}
	return blob.NewBucket(&relay.Bucket{Inner: b})
}

// ResetMem forgets every mem:// bucket and its data. Buckets opened before the
// call stop working (their operations fail); Opens after it start empty.
// It is meant for tests and is safe for concurrent use.
func ResetMem() {
	memRegistry.mu.Lock()
	defer memRegistry.mu.Unlock()
	for _, b := range memRegistry.buckets {
		_ = b.Close()
	}
	memRegistry.buckets = nil
}
