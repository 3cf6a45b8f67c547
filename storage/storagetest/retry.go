package storagetest

import (
	"context"
	"sync"
	"time"

	"github.com/ckpt-dev/ckpt/storage"
)

// Clock is a fake clock for storage.RetryPolicy: sleeping advances it at
// once instead of waiting. It is safe for concurrent use.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

// Policy returns the default retry policy with time taken from c and a
// jitter that always picks the middle of its range.
func (c *Clock) Policy() storage.RetryPolicy {
	return storage.RetryPolicy{
		Now: func() time.Time {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.now
		},
		Sleep: func(ctx context.Context, d time.Duration) error {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.now = c.now.Add(d)
			c.sleeps = append(c.sleeps, d)
			return ctx.Err()
		},
		Rand: func() float64 { return 0.5 },
	}
}

// Sleeps returns the delays slept so far, in order.
func (c *Clock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}
