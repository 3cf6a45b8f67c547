package relocate

// Planning for ckpt's own `_metadata` format: the only part of the package
// that knows it. It turns source checkpoints into units (the `_metadata` to
// commit and the objects it references) for the format-independent
// execution.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ckpt-dev/ckpt/metadata"
)

// planCkpt plans the relocation of cps (checkpoints of srcJob) into dstJob,
// where source checkpoint id gets destination id dstID(id).
//
// Decisions recorded in the new `_metadata`:
//   - Every file is referenced by a relative path inside dstJob: shared
//     files (those the source keeps in any job's shared/) under shared/ by
//     content name, others under chk-<N>/<store>/.
//   - New is recomputed within the relocated set, in id order: a file is
//     new in the first relocated checkpoint that references it (private
//     files always are). It depends only on the source checkpoints, so a
//     re-run plans the same bytes.
//   - Kind is incremental if some file is not new, else full; BaseID is
//     kept if the base is relocated too (and the checkpoint is
//     incremental), else 0.
//   - Lineage keeps its job id, checkpoint id and claim flag; its path is
//     rewritten if it names a checkpoint relocated along, and otherwise
//     dropped (a cut link): nothing in the new `_metadata` names a place
//     outside the destination job.
//   - ID, JobID, CreatedAt and the stores are kept.
func planCkpt(srcJob metadata.Job, cps []*metadata.Checkpoint, dstJob metadata.Job, dstID func(uint64) uint64) ([]*unit, error) {
	sort.Slice(cps, func(i, j int) bool { return cps[i].ID < cps[j].ID })
	inSet := map[uint64]bool{}
	for _, c := range cps {
		inSet[c.ID] = true
	}
	seen := map[string]bool{} // destination keys referenced by earlier checkpoints
	var units []*unit
	for _, c := range cps {
		srcDir := srcJob.CheckpointDir(c.ID)
		id := dstID(c.ID)
		dir := dstJob.CheckpointDir(id)
		n := &metadata.Checkpoint{ID: id, JobID: c.JobID, CreatedAt: c.CreatedAt, Kind: metadata.KindFull}
		u := &unit{srcID: c.ID, id: id, dir: dir, metaKey: dstJob.MetadataKey(id), pendingKey: dstJob.PendingKey(id)}
		external := map[string]*Link{}
		canonical := map[[2]string]string{} // (store, file) → destination key
		reused := false
		for _, s := range c.Stores {
			ns := metadata.Store{Name: s.Name, FormatMajorVersion: s.FormatMajorVersion}
			for _, f := range s.Files {
				key, err := metadata.Resolve(srcDir, f.Path)
				if err != nil {
					return nil, fmt.Errorf("reading %s: store %q file %q: %w", srcJob.MetadataKey(c.ID), s.Name, f.Name, err)
				}
				owner, shared := metadata.JobOfSharedKey(key)
				shared = shared && !strings.HasPrefix(key, srcDir+"/")
				dst := dstJob.PrivateKey(id, s.Name, f.Name)
				if shared {
					dst = dstJob.SharedKey(metadata.SharedName(f.Name, f.SHA256))
					if owner != srcJob.Prefix {
						l := external[owner]
						if l == nil {
							l = &Link{Kind: LinkExternal, Key: owner}
							external[owner] = l
						}
						l.Files++
						l.Bytes += f.Size
					}
				}
				isNew := !seen[dst]
				seen[dst] = true
				reused = reused || !isNew
				ns.Files = append(ns.Files, metadata.File{
					Name: f.Name, Path: metadata.Rel(dir, dst), Size: f.Size, SHA256: f.SHA256, New: isNew,
				})
				canonical[[2]string{s.Name, f.Name}] = dst
				u.refs = append(u.refs, Copy{Src: key, Dst: dst, Size: f.Size, SHA256: f.SHA256, Shared: shared, name: f.Name})
				u.files++
				u.bytes += f.Size
			}
			n.Stores = append(n.Stores, ns)
		}
		if reused {
			n.Kind = metadata.KindIncremental
			if c.BaseID != 0 && inSet[c.BaseID] {
				n.BaseID = dstID(c.BaseID)
			}
		}
		if l := c.Lineage; l != nil {
			nl := *l
			if l.Path != "" {
				nl.Path = ""
				from, err := metadata.Resolve(srcDir, l.Path)
				kind, job, lid := metadata.ParseLocation(from)
				if err == nil && kind == metadata.LocationCheckpoint && job == srcJob && inSet[lid] && from == srcJob.CheckpointDir(lid) {
					nl.Path = metadata.RelDir(dir, dstJob.CheckpointDir(dstID(lid)))
				} else {
					if err != nil {
						from = ""
					}
					u.links = append(u.links, Link{Kind: LinkLineage, Key: from, JobID: l.JobID, CheckpointID: l.CheckpointID})
				}
			}
			n.Lineage = &nl
		}
		for _, l := range external {
			u.links = append(u.links, *l)
		}
		sort.Slice(u.links, func(i, j int) bool {
			a, b := u.links[i], u.links[j]
			return a.Kind > b.Kind || a.Kind == b.Kind && a.Key < b.Key
		})
		if _, err := metadata.Encode(n); err != nil { // validates; sorts n
			return nil, fmt.Errorf("relocating %s: %w", srcJob.CheckpointDir(c.ID), err)
		}
		want := identity(n)
		u.token = "relocation-" + want
		u.matches = func(existing []byte) bool {
			c, err := metadata.Decode(existing)
			return err == nil && identity(c) == want
		}
		u.render = func(keyOf func(string) string) ([]byte, error) {
			out := *n
			out.Stores = make([]metadata.Store, len(n.Stores))
			for i, s := range n.Stores {
				out.Stores[i] = s
				out.Stores[i].Files = make([]metadata.File, len(s.Files))
				for j, f := range s.Files {
					f.Path = metadata.Rel(dir, keyOf(canonical[[2]string{s.Name, f.Name}]))
					out.Stores[i].Files[j] = f
				}
			}
			return metadata.Encode(&out)
		}
		units = append(units, u)
	}
	sort.Slice(units, func(i, j int) bool { return units[i].id < units[j].id })
	return units, nil
}

// identity is a digest of what makes a relocated checkpoint the same one:
// its id, job id, creation time, stores, and files with their sizes and
// checksums. It leaves out where the files are (a run may have to write a
// shared file under an alternative name) and what only describes history
// (New, Kind, BaseID, Lineage), so that a run planned from a slightly
// different set of source checkpoints still recognises its own work. c's
// stores and files must be sorted (as Encode and Decode leave them).
func identity(c *metadata.Checkpoint) string {
	h := sha256.New()
	fmt.Fprintf(h, "ckpt relocation 1\n%d\n%s\n%s\n", c.ID, c.JobID, c.CreatedAt.UTC().Format(time.RFC3339Nano))
	for _, s := range c.Stores {
		fmt.Fprintf(h, "store %s %d\n", s.Name, s.FormatMajorVersion)
		for _, f := range s.Files {
			fmt.Fprintf(h, "file %s %d %s\n", f.Name, f.Size, f.SHA256)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// reservationData is the content of the `_pending` marker a relocation
// writes: its token, when the reservation was made (gc keeps the job's
// shared objects written since, while the marker is fresh), the base whose
// files it may keep (0: none), and no claim path (the checkpoint will
// reference only its own job).
func reservationData(created time.Time, token string, base uint64) ([]byte, error) {
	return json.Marshal(metadata.Pending{Token: token, CreatedAt: created.UTC(), BaseID: base})
}

// ownReservation reports whether a `_pending` marker holds token, and when
// that reservation was made.
func ownReservation(data []byte, token string) (bool, time.Time) {
	var p metadata.Pending
	if json.Unmarshal(data, &p) != nil || p.Token != token || p.CreatedAt.IsZero() {
		return false, time.Time{}
	}
	return true, p.CreatedAt
}
