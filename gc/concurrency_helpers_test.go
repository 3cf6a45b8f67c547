package gc_test

import (
	"fmt"
	"sync"
	"time"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/internal/testpebble"
	"github.com/ckpt-dev/ckpt/metadata"
)

func openStore(w *world, name string) (*checkpoint.Store, error) {
	return checkpoint.OpenDir("default", w.stores[name].dir)
}

// createWith runs a create with a short reservation refresh, recording the
// expected data under mu.
func createWith(w *world, src *checkpoint.Store, mu *sync.Mutex) (*checkpoint.Result, error) {
	r, err := checkpoint.Create(w.ctx, w.b, metadata.Job{Prefix: "a"}, []*checkpoint.Store{src}, checkpoint.Options{RefreshInterval: 50 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	d, err := testpebble.Digest(src.Dir)
	if err != nil {
		return nil, err
	}
	mu.Lock()
	w.digests[fmt.Sprintf("a/chk-%d", r.CheckpointID)] = d
	mu.Unlock()
	return r, nil
}
