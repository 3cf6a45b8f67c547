package inspect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ckpt-dev/ckpt/internal/objcheck"

	"gocloud.dev/blob"
	"golang.org/x/sync/errgroup"

	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/progress"
	"github.com/ckpt-dev/ckpt/storage"
)

// ErrVerifyFailed means at least one referenced file is missing, has the
// wrong size or the wrong checksum, or a `_metadata` is corrupt.
var ErrVerifyFailed = errors.New("inspect: verification failed")

// MaxChain bounds how many lineage links are followed.
const MaxChain = 64

// Options select how deep inspection goes.
type Options struct {
	// Verify checks that every referenced file exists with its size.
	Verify bool
	// ReadData also reads every file and checks its SHA-256 (implies Verify).
	ReadData bool
	// Parallel bounds concurrent storage requests (8 if 0).
	Parallel int
	// Progress receives verification progress (files, or bytes with
	// ReadData).
	Progress progress.Reporter
}

// Where says where a referenced file lives relative to the checkpoint.
type Where string

// File locations.
const (
	// InCheckpoint: inside the checkpoint's own directory.
	InCheckpoint Where = "checkpoint"
	// InShared: in the job's shared/ directory.
	InShared Where = "shared"
	// External: outside the job (another job's shared/, after a restore
	// with claim): the checkpoint is not self-contained.
	External Where = "external"
)

// File is one referenced file.
type File struct {
	Store  string
	Name   string
	Path   string // as written in _metadata
	Key    string // resolved object key
	Size   int64
	SHA256 string
	New    bool
	Where  Where
	// OwnerJob is the job prefix that holds an external file.
	OwnerJob string
	// Problem is empty for a good (or unverified) file, otherwise what is
	// wrong: "missing", "size …", "checksum mismatch", "unreadable: …".
	Problem string
}

// Link is one step of a checkpoint's lineage: the checkpoint it was
// restored from.
type Link struct {
	Key          string // the source checkpoint's directory key
	JobID        string
	CheckpointID uint64
	Claim        bool
	// Exists is false if the source checkpoint's _metadata can no longer be
	// read (the chain is cut there).
	Exists bool
}

// StoreSummary totals one store.
type StoreSummary struct {
	Name               string
	FormatMajorVersion uint64
	Files              int
	Bytes              int64
}

// Checkpoint is the report on one checkpoint.
type Checkpoint struct {
	Key            string // checkpoint directory key
	ID             uint64
	JobID          string
	CreatedAt      time.Time
	Kind           metadata.Kind
	BaseID         uint64
	Lineage        *metadata.Lineage
	Stores         []StoreSummary
	Files          []File
	TotalBytes     int64
	NewBytes       int64
	InheritedBytes int64
	SelfContained  bool
	// ExternalJobs lists the job prefixes whose shared files are referenced.
	ExternalJobs []string
	Chain        []Link
	Verified     bool // Verify or ReadData ran
	DataChecked  bool // ReadData ran
	Problems     int
}

// ReadCheckpoint reads and reports on checkpoint id of job, verifying it as
// opts say. If verification finds problems the report is returned together
// with an error wrapping ErrVerifyFailed. A missing checkpoint is
// metadata.ErrNotFound; unreadable metadata wraps metadata.ErrCorrupt.
func ReadCheckpoint(ctx context.Context, b *blob.Bucket, job metadata.Job, id uint64, opts Options) (*Checkpoint, error) {
	c, err := metadata.Read(ctx, b, job.MetadataKey(id))
	if err != nil {
		return nil, err
	}
	r := describe(job, c)
	r.Chain = chain(ctx, b, r.Key, c)
	if opts.Verify || opts.ReadData {
		if err := verify(ctx, b, r, opts); err != nil {
			return r, err
		}
		if r.Problems > 0 {
			return r, fmt.Errorf("%w: %d of %d files of %s are bad", ErrVerifyFailed, r.Problems, len(r.Files), r.Key)
		}
	}
	return r, nil
}

func describe(job metadata.Job, c *metadata.Checkpoint) *Checkpoint {
	dir := job.CheckpointDir(c.ID)
	r := &Checkpoint{
		Key: dir, ID: c.ID, JobID: c.JobID, CreatedAt: c.CreatedAt, Kind: c.Kind,
		BaseID: c.BaseID, Lineage: c.Lineage, SelfContained: true,
	}
	ext := map[string]bool{}
	for _, s := range c.Stores {
		sum := StoreSummary{Name: s.Name, FormatMajorVersion: s.FormatMajorVersion, Files: len(s.Files)}
		for _, f := range s.Files {
			key, _ := metadata.Resolve(dir, f.Path) // validated by metadata.Read
			fr := File{Store: s.Name, Name: f.Name, Path: f.Path, Key: key, Size: f.Size, SHA256: f.SHA256, New: f.New}
			switch {
			case strings.HasPrefix(key, dir+"/"):
				fr.Where = InCheckpoint
			case strings.HasPrefix(key, job.SharedDirKey()):
				fr.Where = InShared
			default:
				fr.Where = External
				r.SelfContained = false
				owner, ok := metadata.JobOfSharedKey(key)
				if !ok {
					owner = metadata.DirOf(key)
				}
				fr.OwnerJob = owner
				ext[owner] = true
			}
			sum.Bytes += f.Size
			r.TotalBytes += f.Size
			if f.New {
				r.NewBytes += f.Size
			} else {
				r.InheritedBytes += f.Size
			}
			r.Files = append(r.Files, fr)
		}
		r.Stores = append(r.Stores, sum)
	}
	for j := range ext {
		r.ExternalJobs = append(r.ExternalJobs, j)
	}
	sort.Strings(r.ExternalJobs)
	return r
}

// chain follows lineage links from checkpoint c (at directory key dir).
func chain(ctx context.Context, b *blob.Bucket, dir string, c *metadata.Checkpoint) []Link {
	var out []Link
	seen := map[string]bool{dir: true}
	for c != nil && c.Lineage != nil && len(out) < MaxChain {
		l := c.Lineage
		link := Link{JobID: l.JobID, CheckpointID: l.CheckpointID, Claim: l.Claim}
		c = nil
		if l.Path != "" {
			if key, err := metadata.Resolve(dir, l.Path); err == nil && !seen[key] {
				seen[key] = true
				link.Key = key
				src, err := metadata.Read(ctx, b, key+"/"+metadata.MetadataName)
				if err == nil {
					link.Exists = true
					c, dir = src, key
				}
			}
		}
		out = append(out, link)
	}
	return out
}

// verify checks r's files: existence and size by listing each directory
// that holds referenced files once (not one request per file), and with
// ReadData the content of each file.
func verify(ctx context.Context, b *blob.Bucket, r *Checkpoint, opts Options) error {
	r.Verified = true
	par := opts.Parallel
	if par <= 0 {
		par = 8
	}
	var dirList []string
	dirs := map[string]map[string]int64{}
	for _, f := range r.Files {
		d := metadata.DirOf(f.Key)
		if _, ok := dirs[d]; !ok {
			dirs[d] = nil
			dirList = append(dirList, d)
		}
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(par)
	for _, d := range dirList {
		g.Go(func() error {
			sizes, err := listSizes(gctx, b, d)
			if err != nil {
				return err
			}
			mu.Lock()
			dirs[d] = sizes
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i := range r.Files {
		f := &r.Files[i]
		size, ok := dirs[metadata.DirOf(f.Key)][f.Key]
		switch {
		case !ok:
			f.Problem = "missing"
		case size != f.Size:
			f.Problem = fmt.Sprintf("size %d, expected %d", size, f.Size)
		}
	}
	if opts.ReadData {
		r.DataChecked = true
		if err := checkData(ctx, b, r, par, opts.Progress); err != nil {
			return err
		}
	}
	for _, f := range r.Files {
		if f.Problem != "" {
			r.Problems++
		}
	}
	return nil
}

func listSizes(ctx context.Context, b *blob.Bucket, dir string) (map[string]int64, error) {
	prefix := dir + "/"
	if dir == "" {
		prefix = ""
	}
	out := map[string]int64{}
	it := b.List(&blob.ListOptions{Prefix: prefix, Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", prefix, storage.Wrap(err))
		}
		if !obj.IsDir {
			out[obj.Key] = obj.Size
		}
	}
}

func checkData(ctx context.Context, b *blob.Bucket, r *Checkpoint, par int, pr progress.Reporter) error {
	var total int64
	for _, f := range r.Files {
		if f.Problem == "" {
			total += f.Size
		}
	}
	progress.Start(pr, "reading", total)
	defer progress.Done(pr)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(par)
	for i := range r.Files {
		f := &r.Files[i]
		if f.Problem != "" {
			continue
		}
		g.Go(func() error {
			problem, err := objcheck.Check(gctx, b, f.Key, f.Size, f.SHA256, pr)
			if err != nil {
				return err
			}
			f.Problem = problem
			return nil
		})
	}
	return g.Wait()
}
