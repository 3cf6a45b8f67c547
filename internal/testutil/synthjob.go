package testutil

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ckpt-dev/ckpt/metadata"
)

// SynthShape is the shape of a synthetic job (see WriteSynthJob).
type SynthShape struct {
	Checkpoints int // checkpoints in the chain
	Files       int // shared files each checkpoint references
	Churn       int // shared files new in each checkpoint after the first
}

// SynthStats counts what WriteSynthJob wrote.
type SynthStats struct {
	Objects   int   // objects written
	Bytes     int64 // their bytes
	Refs      int   // file references in every `_metadata`
	MetaBytes int64 // bytes of every `_metadata`
	// LastRef counts the shared files by the newest checkpoint that
	// references them.
	LastRef map[int]int
	// Checkpoints is the number of checkpoints written.
	Checkpoints int
}

// Deletable is the number of objects a gc that keeps the newest retain
// checkpoints deletes (every object being old enough): each expired
// checkpoint's `_metadata`, `_pending` and 5 private files, and the shared
// files no kept checkpoint references.
func (s SynthStats) Deletable(retain int) int {
	expired := s.Checkpoints - retain
	n := 7 * expired
	for last, count := range s.LastRef {
		if last <= expired {
			n += count
		}
	}
	return n
}

// SynthJobID is the job id of every synthetic job.
const SynthJobID = "0123456789abcdef"

// WriteSynthJob writes, through put (called from up to par goroutines), a
// valid job quickly: an incremental chain of checkpoints of one store
// "default", each referencing shape.Files shared sstables of which
// shape.Churn are new since the previous one, plus 5 private files, its
// `_pending` reservation and its `_metadata`. Objects hold a few bytes whose
// sizes and SHA-256 digests are the ones recorded. It is gc/bench_test.go's
// job generator, shared with the crash and scale tests.
func WriteSynthJob(ctx context.Context, job metadata.Job, shape SynthShape, put func(context.Context, string, []byte) error, par int) (SynthStats, error) {
	st := SynthStats{LastRef: map[int]int{}, Checkpoints: shape.Checkpoints}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(par)
	write := func(key string, data []byte) {
		mu.Lock()
		st.Objects++
		st.Bytes += int64(len(data))
		mu.Unlock()
		g.Go(func() error {
			if err := put(gctx, key, data); err != nil {
				return fmt.Errorf("writing %s: %w", key, err)
			}
			return nil
		})
	}
	rng := rand.New(rand.NewPCG(1, uint64(shape.Files)))
	next := 1 // the next Pebble file number
	newShared := func() metadata.File {
		name := fmt.Sprintf("%06d.sst", next)
		data := []byte(fmt.Sprintf("sstable %d\n", next))
		next++
		sum := sha256.Sum256(data)
		hexSum := hex.EncodeToString(sum[:])
		write(job.SharedKey(metadata.SharedName(name, hexSum)), data)
		return metadata.File{Name: name, Path: "../" + metadata.SharedDir + "/" + metadata.SharedName(name, hexSum),
			Size: int64(len(data)), SHA256: hexSum, New: true}
	}
	live := make([]metadata.File, shape.Files)
	for i := range live {
		live[i] = newShared()
	}
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for id := 1; id <= shape.Checkpoints; id++ {
		at := created.Add(time.Duration(id) * time.Minute)
		if id > 1 {
			for i := range live {
				live[i].New = false
			}
			for _, pos := range rng.Perm(shape.Files)[:shape.Churn] {
				st.LastRef[id-1]++
				live[pos] = newShared()
			}
		}
		files := make([]metadata.File, 0, shape.Files+5)
		files = append(files, live...)
		manifest := next
		next += 3
		for _, name := range []string{
			fmt.Sprintf("MANIFEST-%06d", manifest),
			fmt.Sprintf("OPTIONS-%06d", manifest+1),
			fmt.Sprintf("%06d.log", manifest+2),
			"marker.format-version.000024.024",
			fmt.Sprintf("marker.manifest.000001.MANIFEST-%06d", manifest),
		} {
			data := []byte(fmt.Sprintf("chk-%d %s\n", id, name))
			sum := sha256.Sum256(data)
			write(job.PrivateKey(uint64(id), "default", name), data)
			files = append(files, metadata.File{Name: name, Path: "default/" + name, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), New: true})
		}
		c := &metadata.Checkpoint{ID: uint64(id), JobID: SynthJobID, CreatedAt: at, Kind: metadata.KindFull,
			Stores: []metadata.Store{{Name: "default", FormatMajorVersion: 24, Files: files}}}
		pend := metadata.Pending{Token: fmt.Sprintf("%032x", id), CreatedAt: at.Add(-30 * time.Second)}
		if id > 1 {
			c.Kind, c.BaseID, pend.BaseID = metadata.KindIncremental, uint64(id-1), uint64(id-1)
		}
		meta, err := metadata.Encode(c)
		if err != nil {
			_ = g.Wait()
			return st, err
		}
		pendData, err := json.Marshal(pend)
		if err != nil {
			_ = g.Wait()
			return st, err
		}
		write(job.PendingKey(uint64(id)), pendData)
		write(job.MetadataKey(uint64(id)), meta)
		st.Refs += len(files)
		st.MetaBytes += int64(len(meta))
	}
	st.LastRef[shape.Checkpoints] += len(live)
	return st, g.Wait()
}
