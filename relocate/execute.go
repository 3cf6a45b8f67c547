package relocate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ckpt-dev/ckpt/progress"
	"github.com/ckpt-dev/ckpt/storage"
)

// Execute carries out the plan: it reserves every destination id
// (create-if-absent `_pending`, naming the relocation and its base), copies
// every object that is not already in place and safe from gc, verifies
// every object each checkpoint references at the destination, and only
// then commits each checkpoint, in id order: it checks that its
// reservation is still its own, writes `_metadata` create-if-absent and
// removes the marker. Markers are rewritten every Options.RefreshInterval
// while objects are copied, so that gc sees the relocation alive.
//
// The relocation follows gc's protocol (see package gc) as
// checkpoint.Create does. An object already at the destination is kept
// only if gc cannot collect it before the commit: it was written since the
// reservation was made (a re-run renews its earlier reservation, keeping
// the time it was made, so what the interrupted run copied is kept), or the
// base named by the reservation references it. A private object that
// cannot be kept is replaced (its directory is reserved); a shared one is
// written under a name unique to the reserved directory instead
// (metadata.SharedNameFor), never over an object that may be in use.
//
// pr receives byte progress (checking kept objects with ReadData, copying,
// verifying with ReadData); nil means none. On error nothing unverified is
// committed: an interrupted or failed Execute leaves reserved directories
// and copied objects that the same relocation, run again, reuses and
// finishes (or that gc removes). Checkpoints committed before an error
// (they are committed in id order) stay committed; a re-run finds them
// done. Execute may be called once.
func (p *Plan) Execute(ctx context.Context, pr progress.Reporter) (*Result, error) {
	if p.executed {
		return nil, errors.New("relocate: plan already executed")
	}
	p.executed = true
	if err := p.reserve(ctx); err != nil {
		return nil, err
	}
	stop := p.refresh(ctx)
	// The copies' directory fsyncs (local files) wait for one barrier
	// before the first commit instead of following every object.
	bctx, batch := storage.WithSyncBatch(ctx)
	final, skipped, err := p.transfer(bctx, batch, pr)
	if serr := stop(); err == nil {
		err = serr
	}
	if err == nil {
		if err = batch.Sync(ctx); err != nil {
			err = fmt.Errorf("making the copies durable: %w", err)
		}
	}
	if err != nil {
		return nil, err
	}
	res := p.result(func(c Copy) bool { return skipped.has(c.Dst) })
	for _, u := range p.units {
		if u.leftover {
			_ = p.dst.Bucket.Delete(ctx, u.pendingKey)
		}
		if u.done {
			continue
		}
		if err := p.commit(ctx, u, final); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// reserve writes each destination id's `_pending` marker. A marker of an
// earlier run of this relocation is renewed with the time it was first
// made, unless gc collected it meanwhile: then the id is reserved afresh,
// and what the earlier run wrote is no longer trusted. A marker that
// appeared since planning is ours only if it holds our token (a concurrent
// run of the same relocation, which writes the same bytes).
func (p *Plan) reserve(ctx context.Context) error {
	b := p.dst.Bucket
	now := p.opts.Now().UTC()
	for _, u := range p.units {
		if u.done {
			continue
		}
		if !u.reserved.IsZero() {
			have, err := readSmall(ctx, b, u.pendingKey)
			if err != nil {
				return err
			}
			if have != nil {
				ours, created := ownReservation(have, u.token)
				if !ours {
					return existsError(u.dir, "was reserved by another writer while planning")
				}
				u.reserved = created
				data, err := reservationData(created, u.token, p.base)
				if err == nil {
					err = b.WriteAll(ctx, u.pendingKey, data, nil)
				}
				if err != nil {
					return fmt.Errorf("renewing the reservation of %s: %w", u.dir, storage.Wrap(err))
				}
				continue
			}
			u.reserved = time.Time{}
		}
		data, err := reservationData(now, u.token, p.base)
		if err != nil {
			return err
		}
		err = storage.WriteIfAbsent(ctx, b, u.pendingKey, bytes.NewReader(data), nil)
		if err == nil {
			u.reserved = now
			continue
		}
		if !errors.Is(err, storage.ErrExists) {
			return fmt.Errorf("reserving %s: %w", u.dir, err)
		}
		have, err := readSmall(ctx, b, u.pendingKey)
		if err != nil {
			return err
		}
		ours, created := false, time.Time{}
		if have != nil {
			ours, created = ownReservation(have, u.token)
		}
		if !ours {
			return existsError(u.dir, "was reserved by another writer while planning")
		}
		u.reserved = created
	}
	// gc deletes an expired checkpoint's `_metadata` before it re-reads
	// reservations: now that ours are visible, either gc sees them and
	// keeps the base's files, or the base is gone and vouches for nothing.
	if p.base != 0 {
		key := p.dst.Job.MetadataKey(p.base)
		ok, err := b.Exists(ctx, key)
		if err != nil {
			return fmt.Errorf("checking %s: %w", key, storage.Wrap(err))
		}
		if !ok {
			p.vouched, p.byContent = nil, nil
		}
	}
	return nil
}

// refresh rewrites the markers of the checkpoints still to commit every
// RefreshInterval until the returned function is called; that function
// returns the first refresh error.
func (p *Plan) refresh(ctx context.Context) (stop func() error) {
	done := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		t := time.NewTicker(p.opts.RefreshInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				errc <- nil
				return
			case <-ctx.Done():
				errc <- nil
				return
			case <-t.C:
			}
			for _, u := range p.units {
				if u.done {
					continue
				}
				data, err := reservationData(u.reserved, u.token, p.base)
				if err == nil {
					err = p.dst.Bucket.WriteAll(ctx, u.pendingKey, data, nil)
				}
				if err != nil && ctx.Err() == nil {
					errc <- fmt.Errorf("renewing the reservation of %s: %w", u.dir, storage.Wrap(err))
					return
				}
			}
		}
	}()
	return func() error {
		close(done)
		return <-errc
	}
}

// transfer decides where each object goes and which objects in place to
// keep (checking them with ReadData; a damaged one is replaced, or for a
// shared object written under the alternative name), copies the others and
// verifies the destination. It returns the final key of every object (by
// Copy.Dst) and the objects kept (by Copy.Dst).
//
// Objects kept from an earlier, interrupted run are added to batch, so that
// they are durable before anything commits that references them.
func (p *Plan) transfer(ctx context.Context, batch *storage.SyncBatch, pr progress.Reporter) (final map[string]string, skipped *keySet, err error) {
	present, err := listObjects(ctx, p.dst.Bucket, p.candidateKeys(), p.opts.Parallel)
	if err != nil {
		return nil, nil, err
	}
	final = map[string]string{}
	skipped = &keySet{}
	checked := &keySet{} // final keys read and found whole in this run
	var keep, todo []Copy
	for _, c := range p.copies {
		final[c.Dst] = c.Dst
		if !c.needed {
			skipped.add(c.Dst)
			continue
		}
		key, kept := p.place(c, present)
		final[c.Dst] = key
		if kept {
			keep = append(keep, c)
		} else {
			todo = append(todo, c)
		}
	}
	if p.opts.ReadData {
		bad, err := checksumAll(ctx, p.dst.Bucket, keep, func(c Copy) string { return final[c.Dst] }, p.opts.Parallel, "checking", pr)
		if err != nil {
			return nil, nil, err
		}
		problem := map[string]string{}
		for _, b := range bad {
			problem[b.Key] = b.Problem
		}
		kept := keep[:0]
		for _, c := range keep {
			key := final[c.Dst]
			switch {
			case problem[key] == "":
				kept = append(kept, c)
				checked.add(key)
				continue
			case p.serverSide && c.Src == key: // its own source
				return nil, nil, newVerifyError("source", 1, []Problem{{key, problem[key]}})
			case c.Shared:
				final[c.Dst] = p.altKey(c) // or replace it, if that is what is damaged
			}
			todo = append(todo, c)
		}
		keep = kept
	}
	keptKeys := make([]string, 0, len(keep))
	for _, c := range keep {
		skipped.add(c.Dst)
		keptKeys = append(keptKeys, final[c.Dst])
	}
	if err := batch.Include(ctx, p.dst.Bucket, keptKeys...); err != nil {
		return nil, nil, err
	}
	for i := range todo {
		todo[i].Dst = final[todo[i].Dst]
	}
	if err := p.copyAll(ctx, todo, pr); err != nil {
		return nil, nil, err
	}
	return final, skipped, p.verifyDestination(ctx, final, checked, pr)
}

// copyAll copies every object in todo to its Dst, in parallel, replacing
// whatever is there: a private object lives in a directory this relocation
// reserved, and a shared one is either absent from the destination or goes
// under a name unique to that directory. Streamed objects that differ from
// the source's record are never written; they are reported together
// (ErrVerifyFailed).
func (p *Plan) copyAll(ctx context.Context, todo []Copy, pr progress.Reporter) error {
	var total int64
	for _, c := range todo {
		total += c.Size
	}
	progress.Start(pr, "copying", total)
	defer progress.Done(pr)
	var mu sync.Mutex
	var problems []Problem
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.Parallel)
	for _, c := range todo {
		g.Go(func() error {
			if p.serverSide {
				if err := p.dst.Bucket.Copy(gctx, c.Dst, c.Src, nil); err != nil {
					return fmt.Errorf("copying %s to %s: %w", c.Src, c.Dst, storage.Wrap(err))
				}
				progress.Add(pr, c.Size)
				return nil
			}
			err := stream(gctx, p.src.Bucket, p.dst.Bucket, c, pr)
			if errors.Is(err, errMismatch) {
				mu.Lock()
				defer mu.Unlock()
				problems = append(problems, Problem{c.Src, err.Error()})
				return nil
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return newVerifyError("source", len(todo), problems)
}

// verifyDestination checks every object a checkpoint still to commit
// references, at its final key: its size by listing, and with ReadData its
// checksum (unless this run already read it whole).
func (p *Plan) verifyDestination(ctx context.Context, final map[string]string, checked *keySet, pr progress.Reporter) error {
	var need []Copy
	var keys []string
	for _, c := range p.copies {
		if c.needed {
			c.Dst = final[c.Dst]
			need = append(need, c)
			keys = append(keys, c.Dst)
		}
	}
	present, err := listObjects(ctx, p.dst.Bucket, keys, p.opts.Parallel)
	if err != nil {
		return err
	}
	var problems []Problem
	var read []Copy
	for _, c := range need {
		o, ok := present[c.Dst]
		switch {
		case !ok:
			problems = append(problems, Problem{c.Dst, "missing"})
		case o.size != c.Size:
			problems = append(problems, Problem{c.Dst, fmt.Sprintf("size %d, expected %d", o.size, c.Size)})
		case p.opts.ReadData && !checked.has(c.Dst):
			read = append(read, c)
		}
	}
	if len(read) > 0 {
		bad, err := checksumAll(ctx, p.dst.Bucket, read, func(c Copy) string { return c.Dst }, p.opts.Parallel, "verifying", pr)
		if err != nil {
			return err
		}
		problems = append(problems, bad...)
	}
	return newVerifyError("destination", len(need), problems)
}

// commit checks that u's reservation is still its own, writes u's
// `_metadata` create-if-absent and removes the marker. An identical
// checkpoint committed meanwhile (a concurrent run of the same relocation)
// is success.
func (p *Plan) commit(ctx context.Context, u *unit, final map[string]string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b := p.dst.Bucket
	have, err := readSmall(ctx, b, u.pendingKey)
	if err != nil {
		return err
	}
	if ours, _ := ownReservation(have, u.token); have == nil || !ours {
		// gc took the relocation for abandoned and may have collected
		// objects the checkpoint needs.
		return fmt.Errorf("%w: %s is gone or not ours", ErrReservationLost, u.pendingKey)
	}
	data, err := u.render(func(k string) string { return final[k] })
	if err != nil {
		return fmt.Errorf("committing %s: %w", u.metaKey, err)
	}
	err = storage.WriteIfAbsent(ctx, b, u.metaKey, bytes.NewReader(data), nil)
	if errors.Is(err, storage.ErrExists) {
		have, rerr := readSmall(ctx, b, u.metaKey)
		if rerr != nil {
			return rerr
		}
		if have == nil || !u.matches(have) {
			return existsError(u.metaKey, "was committed by another writer")
		}
		err = nil
	}
	if err != nil {
		return fmt.Errorf("committing %s: %w", u.metaKey, err)
	}
	// Committed; a marker left behind is harmless (gc removes it).
	_ = b.Delete(context.WithoutCancel(ctx), u.pendingKey)
	return nil
}
