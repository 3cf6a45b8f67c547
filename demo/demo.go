// Package demo runs ckpt's end-to-end demonstration on an embedded default:
// it builds a real Pebble store in a directory, takes incremental
// checkpoints of it into a local job location while changing the data, and
// inspects the result.
//
// Invariants: everything it writes is under Options.Dir; it reports each
// step through Options.Step and never prints.
package demo

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/inspect"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/progress"
	"github.com/ckpt-dev/ckpt/storage"
)

// Options configure Run.
type Options struct {
	// Dir is where the store, the job location and the local copies live.
	Dir string
	// Keys is the size of the generated store (values are 256 bytes).
	Keys int
	// Rounds is the number of checkpoints taken.
	Rounds int
	// Churn is the fraction of keys rewritten between checkpoints.
	Churn float64
	// Now is the clock.
	Now func() time.Time
	// Progress receives byte progress of each step.
	Progress progress.Reporter
	// Step is called after each step with its report.
	Step func(Step)
}

// Step reports one step of the demo. Exactly one of its pointers is set.
type Step struct {
	Name       string
	Store      *StoreInfo
	Checkpoint *checkpoint.Result
	Job        *inspect.Job
	Verified   *inspect.Checkpoint
}

// StoreInfo describes the generated or changed store.
type StoreInfo struct {
	Dir     string
	Keys    int
	Changed int
}

// Layout of the demo directory.
const (
	StoreDir = "db"
	JobDir   = "jobs/demo"
	LocalDir = "local"
)

// Run performs the demo.
func Run(ctx context.Context, o Options) error {
	if o.Keys <= 0 {
		o.Keys = 200_000
	}
	if o.Rounds <= 0 {
		o.Rounds = 3
	}
	if o.Churn <= 0 {
		o.Churn = 0.05
	}
	step := func(s Step) {
		if o.Step != nil {
			o.Step(s)
		}
	}
	dbDir := filepath.Join(o.Dir, StoreDir)
	if err := write(dbDir, 0, o.Keys, 1); err != nil {
		return fmt.Errorf("building the demo store: %w", err)
	}
	step(Step{Name: "build", Store: &StoreInfo{Dir: dbDir, Keys: o.Keys}})

	loc, err := storage.Open(ctx, filepath.Join(o.Dir, JobDir))
	if err != nil {
		return err
	}
	defer loc.Close()
	_, job, _ := metadata.ParseLocation(loc.Prefix)
	var last uint64
	for round := 1; round <= o.Rounds; round++ {
		if round > 1 {
			n := int(float64(o.Keys) * o.Churn)
			start := (round * 7919 * n) % (o.Keys - n)
			if err := write(dbDir, start, n, uint64(round)); err != nil {
				return fmt.Errorf("changing the demo store: %w", err)
			}
			step(Step{Name: "churn", Store: &StoreInfo{Dir: dbDir, Keys: o.Keys, Changed: n}})
		}
		s, err := checkpoint.OpenDir("default", dbDir)
		if err != nil {
			return err
		}
		res, err := checkpoint.Create(ctx, loc.Bucket, job, []*checkpoint.Store{s}, checkpoint.Options{
			LocalDir: filepath.Join(o.Dir, LocalDir), Now: o.Now, Progress: o.Progress,
		})
		s.Close()
		if err != nil {
			return err
		}
		last = res.CheckpointID
		step(Step{Name: "create", Checkpoint: res})
	}
	jr, err := inspect.ReadJob(ctx, loc.Bucket, job, inspect.Options{})
	if err != nil {
		return err
	}
	step(Step{Name: "inspect", Job: jr})
	cr, err := inspect.ReadCheckpoint(ctx, loc.Bucket, job, last, inspect.Options{ReadData: true, Progress: o.Progress})
	if err != nil {
		return err
	}
	step(Step{Name: "verify", Verified: cr})
	return nil
}

// write sets keys [start, start+n) to fresh random 256-byte values, then
// flushes and closes the store (creating it if needed).
func write(dir string, start, n int, seed uint64) error {
	db, err := pebble.Open(dir, &pebble.Options{Logger: quiet{}, FormatMajorVersion: pebble.FormatNewest})
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, 42))
	b := db.NewBatch()
	val := make([]byte, 256)
	for i := start; i < start+n; i++ {
		var k [12]byte
		copy(k[:], "key-")
		binary.BigEndian.PutUint64(k[4:], uint64(i))
		for j := 0; j < len(val); j += 8 {
			binary.LittleEndian.PutUint64(val[j:], rng.Uint64())
		}
		if err := b.Set(k[:], val, nil); err != nil {
			return err
		}
		if b.Len() > 4<<20 {
			if err := b.Commit(pebble.NoSync); err != nil {
				return err
			}
			b = db.NewBatch()
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return err
	}
	if err := db.Flush(); err != nil {
		return err
	}
	return db.Close()
}

type quiet struct{}

func (quiet) Infof(string, ...interface{})      {}
func (quiet) Errorf(string, ...interface{})     {}
func (quiet) Fatalf(f string, a ...interface{}) { panic(fmt.Sprintf(f, a...)) }
