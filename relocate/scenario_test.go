package relocate_test

// Scenario tests: testdata/*.txt in Pebble's datadriven style. Regenerate
// the expected output with
//
//	go test ./relocate/ -run TestScenarios -rewrite
//
// Commands (buckets: "src", the default, and "other"; a location is
// [BUCKET:]PREFIX):
//
//	checkpoint job=J id=N [base=N] [lineage=J/N] [claim]
//	STORE FILE WHERE CONTENT     (one line per file; WHERE is "own" for the
//	                              checkpoint's directory, "shared" for the
//	                              job's shared/, or another job's prefix)
//	    Writes the objects and a `_metadata` by hand (no Pebble).
//	pending job=J id=N            a foreign reservation marker
//	plan src=LOC/chk-N|LOC dst=LOC [all] [id=N] [read-data]
//	relocate src=… dst=… [all] [id=N] [read-data] [crash-at=K]
//	    crash-at crashes the destination bucket at its K-th operation.
//	metadata LOC/chk-N            the `_metadata`, one file per line
//	verify LOC/chk-N              every object's size and checksum
//	ls [LOC]                      keys under LOC
//	put KEY CONTENT               write one object
//	delete LOC                    delete every key under LOC
//	corrupt KEY | remove KEY      alter (same size) or delete one object
//	                              (KEY ending in '*': the first with that prefix)

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/ckpt-dev/ckpt/internal/testutil"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/relocate"
	"github.com/ckpt-dev/ckpt/storage/faultblob"
)

func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		s := &scenario{buckets: map[string]*blob.Bucket{"src": memblob.OpenBucket(nil), "other": memblob.OpenBucket(nil)}}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			out, err := s.run(t, d)
			if errors.Is(err, faultblob.ErrCrashed) {
				// Which of several concurrent requests met the crash
				// first is not deterministic; that it was a crash is.
				return "error: crashed\n"
			}
			if err != nil {
				return "error: " + err.Error() + "\n"
			}
			return out
		})
	})
}

type scenario struct {
	buckets map[string]*blob.Bucket
}

// loc splits "[bucket:]prefix".
func (s *scenario) loc(t *testing.T, l string) (*blob.Bucket, string) {
	name, prefix, ok := strings.Cut(l, ":")
	if !ok {
		name, prefix = "src", l
	}
	b := s.buckets[name]
	if b == nil {
		t.Fatalf("no bucket %q", name)
	}
	return b, strings.Trim(prefix, "/")
}

// object resolves "[bucket:]KEY", where a KEY ending in '*' names the first
// key with that prefix.
func (s *scenario) object(t *testing.T, l string) (*blob.Bucket, string) {
	b, key := s.loc(t, l)
	if p, ok := strings.CutSuffix(key, "*"); ok {
		ks := keys(t, b, p)
		if len(ks) == 0 {
			t.Fatalf("no key starts with %q", p)
		}
		key = ks[0]
	}
	return b, key
}

func jobID(job string) string {
	sum := sha256.Sum256([]byte(job))
	return hex.EncodeToString(sum[:8])
}

func (s *scenario) run(t *testing.T, d *datadriven.TestData) (string, error) {
	ctx := context.Background()
	arg := func(key string) string {
		if !d.HasArg(key) {
			return ""
		}
		var v string
		d.ScanArgs(t, key, &v)
		return v
	}
	num := func(key string) uint64 {
		if !d.HasArg(key) {
			return 0
		}
		var v uint64
		d.ScanArgs(t, key, &v)
		return v
	}
	switch d.Cmd {
	case "checkpoint":
		return s.checkpoint(t, d, arg("job"), num("id"), num("base"), arg("lineage"), d.HasArg("claim"))
	case "pending":
		b, job := s.loc(t, arg("job"))
		j := metadata.Job{Prefix: job}
		return "", b.WriteAll(ctx, j.PendingKey(num("id")), []byte(`{"token":"someone-else","created_at":"2026-11-22T12:00:00Z"}`), nil)
	case "plan", "relocate":
		return s.relocate(t, d, d.Cmd == "plan", arg("src"), arg("dst"), num("id"), d.HasArg("all"), d.HasArg("read-data"), int(num("crash-at")))
	case "metadata":
		b, key := s.loc(t, d.CmdArgs[0].Key)
		_, job, id := metadata.ParseLocation(key)
		c, err := metadata.Read(ctx, b, job.MetadataKey(id))
		if err != nil {
			return "", err
		}
		return describe(c), nil
	case "verify":
		b, key := s.loc(t, d.CmdArgs[0].Key)
		_, job, id := metadata.ParseLocation(key)
		if _, err := testutil.VerifyCheckpoint(ctx, b, job, id); err != nil {
			return "", err
		}
		return "ok\n", nil
	case "ls":
		l := ""
		if len(d.CmdArgs) > 0 {
			l = d.CmdArgs[0].Key
		}
		b, prefix := s.loc(t, l)
		if prefix != "" {
			prefix += "/"
		}
		var out strings.Builder
		for _, k := range keys(t, b, prefix) {
			fmt.Fprintln(&out, k)
		}
		return out.String(), nil
	case "delete":
		b, prefix := s.loc(t, d.CmdArgs[0].Key)
		deleteAll(t, b, prefix+"/")
		return "", nil
	case "put":
		b, key := s.loc(t, d.CmdArgs[0].Key)
		return "", b.WriteAll(ctx, key, []byte(d.CmdArgs[1].Key), nil)
	case "corrupt":
		b, key := s.object(t, d.CmdArgs[0].Key)
		flip(t, b, key)
		return "", nil
	case "remove":
		b, key := s.object(t, d.CmdArgs[0].Key)
		return "", b.Delete(ctx, key)
	}
	t.Fatalf("unknown command %q", d.Cmd)
	return "", nil
}

// checkpoint writes a checkpoint by hand.
func (s *scenario) checkpoint(t *testing.T, d *datadriven.TestData, jobArg string, id, base uint64, lineage string, claim bool) (string, error) {
	ctx := context.Background()
	b, prefix := s.loc(t, jobArg)
	job := metadata.Job{Prefix: prefix}
	dir := job.CheckpointDir(id)
	c := &metadata.Checkpoint{ID: id, JobID: jobID(prefix), CreatedAt: time.Date(2026, 11, 1, 0, 0, int(id), 0, time.UTC), Kind: metadata.KindFull, BaseID: base}
	if lineage != "" {
		i := strings.LastIndexByte(lineage, '/')
		lj, lid := lineage[:i], lineage[i+1:]
		var n uint64
		fmt.Sscan(lid, &n)
		from := metadata.Job{Prefix: lj}.CheckpointDir(n)
		c.Lineage = &metadata.Lineage{Path: metadata.Rel(dir, from), JobID: jobID(lj), CheckpointID: n, Claim: claim}
	}
	stores := map[string]*metadata.Store{}
	for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			t.Fatalf("want STORE FILE WHERE CONTENT: %q", line)
		}
		store, name, where, content := f[0], f[1], f[2], []byte(f[3])
		sum := sha256.Sum256(content)
		sha := hex.EncodeToString(sum[:])
		var key string
		isNew := true
		switch where {
		case "own":
			key = job.PrivateKey(id, store, name)
		case "shared":
			key = job.SharedKey(metadata.SharedName(name, sha))
		default:
			key = metadata.Job{Prefix: where}.SharedKey(metadata.SharedName(name, sha))
			isNew = false
		}
		if ok, _ := b.Exists(ctx, key); ok {
			isNew = false
		} else if err := b.WriteAll(ctx, key, content, nil); err != nil {
			return "", err
		}
		if !isNew {
			c.Kind = metadata.KindIncremental
		}
		st := stores[store]
		if st == nil {
			st = &metadata.Store{Name: store, FormatMajorVersion: 24}
			stores[store] = st
		}
		st.Files = append(st.Files, metadata.File{Name: name, Path: metadata.Rel(dir, key), Size: int64(len(content)), SHA256: sha, New: isNew})
	}
	if base != 0 {
		c.Kind = metadata.KindIncremental
	}
	for _, st := range stores {
		c.Stores = append(c.Stores, *st)
	}
	data, err := metadata.Encode(c)
	if err != nil {
		return "", err
	}
	if err := b.WriteAll(ctx, job.MetadataKey(id), data, nil); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s: %d files, %d bytes\n", dir, c.FileCount(), c.TotalBytes()), nil
}

func (s *scenario) relocate(t *testing.T, d *datadriven.TestData, dry bool, srcArg, dstArg string, id uint64, all, readData bool, crashAt int) (string, error) {
	ctx := context.Background()
	sb, sp := s.loc(t, srcArg)
	db, dp := s.loc(t, dstArg)
	kind, sjob, sid := metadata.ParseLocation(sp)
	src := relocate.Source{Bucket: sb, Job: sjob, All: all}
	if kind == metadata.LocationCheckpoint {
		src.IDs = []uint64{sid}
	}
	if crashAt > 0 {
		inj := &faultblob.Injector{}
		inj.CrashAt(crashAt)
		same := sb == db
		db = faultblob.Wrap(db, inj)
		if same {
			src.Bucket = db
		}
	}
	dst := relocate.Destination{Bucket: db, Job: metadata.Job{Prefix: dp}, ID: id}
	p, err := relocate.NewPlan(ctx, src, dst, relocate.Options{ReadData: readData, Parallel: 1})
	if err != nil {
		return "", err
	}
	var out strings.Builder
	if dry {
		writeResult(&out, p.Result())
		for _, c := range p.Copies() {
			verb := "copy"
			if c.Skip {
				verb = "keep"
			}
			fmt.Fprintf(&out, "%s %s → %s (%d B)\n", verb, c.Src, c.Dst, c.Size)
		}
		return out.String(), nil
	}
	res, err := p.Execute(ctx, nil)
	if err != nil {
		return "", err
	}
	writeResult(&out, res)
	return out.String(), nil
}

func writeResult(w *strings.Builder, r *relocate.Result) {
	how := "streamed"
	if r.ServerSide {
		how = "server-side copy"
	}
	fmt.Fprintf(w, "%d checkpoints, %s: copy %d files (%d B), skip %d files (%d B)\n",
		len(r.Checkpoints), how, r.FilesCopied, r.BytesCopied, r.FilesSkipped, r.BytesSkipped)
	if len(r.Incomplete) > 0 {
		fmt.Fprintf(w, "incomplete, not relocated: %v\n", r.Incomplete)
	}
	for _, c := range r.Checkpoints {
		done := ""
		if c.Done {
			done = " (already done)"
		}
		fmt.Fprintf(w, "chk-%d → %s%s: %d files; copy %d, skip %d\n", c.SourceID, c.Dir, done, c.Files, c.FilesCopied, c.FilesSkipped)
		for _, l := range c.LinksCut {
			switch l.Kind {
			case relocate.LinkLineage:
				fmt.Fprintf(w, "  cut lineage to %s (job %s chk-%d)\n", l.Key, l.JobID, l.CheckpointID)
			case relocate.LinkExternal:
				fmt.Fprintf(w, "  cut %d files (%d B) in %s\n", l.Files, l.Bytes, l.Key)
			}
		}
	}
}

// describe prints a `_metadata` compactly.
func describe(c *metadata.Checkpoint) string {
	var b strings.Builder
	fmt.Fprintf(&b, "chk-%d job %s %s", c.ID, c.JobID, c.Kind)
	if c.BaseID != 0 {
		fmt.Fprintf(&b, " on chk-%d", c.BaseID)
	}
	if l := c.Lineage; l != nil {
		fmt.Fprintf(&b, "; lineage job %s chk-%d claim=%v path=%q", l.JobID, l.CheckpointID, l.Claim, l.Path)
	}
	b.WriteString("\n")
	var lines []string
	for _, s := range c.Stores {
		for _, f := range s.Files {
			n := ""
			if f.New {
				n = " new"
			}
			lines = append(lines, fmt.Sprintf("%s/%s %s %d B%s", s.Name, f.Name, f.Path, f.Size, n))
		}
	}
	sort.Strings(lines)
	b.WriteString(strings.Join(lines, "\n"))
	b.WriteString("\n")
	return b.String()
}
