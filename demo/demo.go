// Package demo runs ckpt's end-to-end demonstration on an embedded default:
// it builds a real Pebble store in a directory, takes incremental
// checkpoints of it into a local job location while changing the data,
// inspects them, restores from the local copy, continues in a second job
// restored with claim, collects the first job's garbage, relocates the
// second job's checkpoint, deletes both original jobs and restores from the
// relocated copy.
//
// Invariants: everything it writes is under Options.Dir; it reports each
// step through Options.Step and never prints.
package demo

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"gocloud.dev/blob"

	"github.com/cockroachdb/pebble/v2"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/gc"
	"github.com/ckpt-dev/ckpt/inspect"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/progress"
	"github.com/ckpt-dev/ckpt/relocate"
	"github.com/ckpt-dev/ckpt/restore"
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

// Step reports one step of the demo, named by Name; the fields that step
// fills are set.
type Step struct {
	Name       string
	Store      *StoreInfo
	Checkpoint *checkpoint.Result
	Job        *inspect.Job
	Verified   *inspect.Checkpoint
	Restore    *restore.Result
	GC         *gc.Result
	Relocate   *relocate.Result
	// Removed lists directories deleted by hand (the original jobs).
	Removed []string
	// Same reports whether restored data equals the data checkpointed.
	Same bool
}

// StoreInfo describes the generated or changed store.
type StoreInfo struct {
	Dir     string
	Keys    int
	Changed int
}

// Layout of the demo directory.
const (
	StoreDir    = "db"
	JobDir      = "jobs/demo"
	LocalDir    = "local"
	RestoredDir = "restored"
	ClaimedDir  = "db-claimed"
	ClaimJobDir = "jobs/claimed"
	MovedJobDir = "jobs/moved"
	FinalDir    = "restored-from-moved"
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
	return lifecycle(ctx, o, loc.Bucket, job, last, step)
}

// lifecycle runs the rest of a checkpoint's life: restore from the local
// copy, restore with claim into a second job and checkpoint it there (a
// reference chain across jobs), gc of the first job, relocation of the
// newest checkpoint, deletion of both original jobs, and a restore from the
// relocated copy.
func lifecycle(ctx context.Context, o Options, b *blob.Bucket, job metadata.Job, last uint64, step func(Step)) error {
	locate := func(key string) string { return "/" + key }
	local := filepath.Join(o.Dir, LocalDir)
	want, err := digest(filepath.Join(o.Dir, StoreDir))
	if err != nil {
		return err
	}
	res, err := doRestore(ctx, b, job, 0, restore.Options{Target: filepath.Join(o.Dir, RestoredDir), LocalDir: local, Locate: locate}, o.Progress)
	if err != nil {
		return err
	}
	got, err := digest(res.Target)
	if err != nil {
		return err
	}
	step(Step{Name: "restore", Restore: res, Same: got == want})

	// A second job continues from the newest checkpoint, with claim: its
	// first checkpoint references the first job's shared files in place.
	claimed := filepath.Join(o.Dir, ClaimedDir)
	res, err = doRestore(ctx, b, job, last, restore.Options{Target: claimed, Claim: true, Locate: locate}, o.Progress)
	if err != nil {
		return err
	}
	step(Step{Name: "restore-claim", Restore: res})
	n := o.Keys / 50
	if err := write(claimed, 0, n, 99); err != nil {
		return err
	}
	loc2, err := storage.Open(ctx, filepath.Join(o.Dir, ClaimJobDir))
	if err != nil {
		return err
	}
	defer loc2.Close()
	_, job2, _ := metadata.ParseLocation(loc2.Prefix)
	s, err := checkpoint.OpenDir("default", claimed)
	if err != nil {
		return err
	}
	src, err := metadata.Read(ctx, b, job.MetadataKey(last))
	if err != nil {
		s.Close()
		return err
	}
	cres, err := checkpoint.Create(ctx, b, job2, []*checkpoint.Store{s}, checkpoint.Options{
		Now: o.Now, Progress: o.Progress,
		Origin: &checkpoint.OriginRef{Dir: job.CheckpointDir(last), JobID: src.JobID, CheckpointID: last, Claim: true},
	})
	s.Close()
	if err != nil {
		return err
	}
	step(Step{Name: "create-claimed", Checkpoint: cres, Store: &StoreInfo{Dir: claimed, Keys: o.Keys, Changed: n}})
	claimedWant, err := digest(claimed)
	if err != nil {
		return err
	}
	chain, err := inspect.ReadCheckpoint(ctx, b, job2, cres.CheckpointID, inspect.Options{Verify: true})
	if err != nil {
		return err
	}
	step(Step{Name: "inspect-claimed", Verified: chain})

	// gc of the first job keeps its newest checkpoint and what the second
	// job references (it learns that from the referrer marker).
	plan, err := gc.NewPlan(ctx, b, []metadata.Job{job}, gc.Options{Policy: gc.Policy{Retain: 1}, Now: o.Now})
	if err != nil {
		return err
	}
	gres, err := plan.Execute(ctx, o.Progress)
	if err != nil {
		return err
	}
	step(Step{Name: "gc", GC: &gres})

	// Relocate the second job's checkpoint: it becomes self-contained.
	loc3, err := storage.Open(ctx, filepath.Join(o.Dir, MovedJobDir))
	if err != nil {
		return err
	}
	defer loc3.Close()
	_, job3, _ := metadata.ParseLocation(loc3.Prefix)
	rplan, err := relocate.NewPlan(ctx, relocate.Source{Bucket: b, Job: job2, IDs: []uint64{cres.CheckpointID}},
		relocate.Destination{Bucket: b, Job: job3}, relocate.Options{Now: o.Now, Progress: o.Progress})
	if err != nil {
		return err
	}
	rres, err := rplan.Execute(ctx, o.Progress)
	if err != nil {
		return err
	}
	step(Step{Name: "relocate", Relocate: rres})

	// Delete both original jobs entirely, then restore from the copy.
	removed := []string{filepath.Join(o.Dir, JobDir), filepath.Join(o.Dir, ClaimJobDir)}
	for _, d := range removed {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	step(Step{Name: "delete-originals", Removed: removed})
	res, err = doRestore(ctx, b, job3, 0, restore.Options{Target: filepath.Join(o.Dir, FinalDir), Locate: locate}, o.Progress)
	if err != nil {
		return err
	}
	got, err = digest(res.Target)
	if err != nil {
		return err
	}
	step(Step{Name: "restore-moved", Restore: res, Same: got == claimedWant})
	if got != claimedWant {
		return fmt.Errorf("the store restored from the relocated checkpoint differs from the one checkpointed")
	}
	return nil
}

func doRestore(ctx context.Context, b *blob.Bucket, job metadata.Job, id uint64, opts restore.Options, pr progress.Reporter) (*restore.Result, error) {
	plan, err := restore.NewPlan(ctx, b, job, id, opts)
	if err != nil {
		return nil, err
	}
	return plan.Execute(ctx, pr)
}

// digest summarises every key and value of the store in dir (opened
// read-only on a copy-free path: the restored directories are the demo's).
func digest(dir string) (string, error) {
	db, err := pebble.Open(dir, &pebble.Options{ReadOnly: true, Logger: quiet{}})
	if err != nil {
		return "", err
	}
	defer db.Close()
	it, err := db.NewIter(nil)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		var l [8]byte
		binary.BigEndian.PutUint64(l[:], uint64(len(it.Key())))
		h.Write(l[:])
		h.Write(it.Key())
		binary.BigEndian.PutUint64(l[:], uint64(len(it.Value())))
		h.Write(l[:])
		h.Write(it.Value())
		n++
	}
	if err := it.Close(); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d keys %x", n, h.Sum(nil)), nil
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
