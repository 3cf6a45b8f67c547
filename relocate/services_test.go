package relocate_test

import (
	"context"
	"path/filepath"
	"testing"

	"gocloud.dev/blob"

	"github.com/ckpt-dev/ckpt/inspect"
	"github.com/ckpt-dev/ckpt/internal/testutil"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/relocate"
	"github.com/ckpt-dev/ckpt/storage"
	"github.com/ckpt-dev/ckpt/storage/storagetest"
)

// Relocation across storage services: a chain built on local files is
// relocated to every backend (streamed), then within each backend to
// another job (server-side copy), then from S3 to GCS and Azure. S3, GCS
// and Azure run when CKPT_TEST_*_URL name them (scripts/test-services).
func TestAcrossServices(t *testing.T) {
	backends := storagetest.Backends(t)
	byName := map[string]storagetest.Backend{}
	for _, be := range backends {
		byName[be.Name] = be
	}
	srcLoc := storagetest.Open(t, byName["file"].Sub("src").URL)
	ch := buildChain(t, srcLoc.Bucket, srcLoc.Prefix, small)
	id := ch.bIDs[1]
	want := ch.digest[id]

	check := func(t *testing.T, b *blob.Bucket, job metadata.Job) {
		t.Helper()
		ctx := context.Background()
		r, err := inspect.ReadCheckpoint(ctx, b, job, id, inspect.Options{ReadData: true})
		if err != nil {
			t.Fatal(err)
		}
		if !r.SelfContained {
			t.Fatalf("%s/chk-%d is not self-contained", job.Prefix, id)
		}
		checkSelfContained(t, b, job, id)
		out := filepath.Join(t.TempDir(), "out")
		if err := testutil.Materialize(ctx, b, job, id, "default", out); err != nil {
			t.Fatal(err)
		}
		if got := digest(t, out); got != want {
			t.Fatalf("%s/chk-%d holds %s, want %s", job.Prefix, id, got, want)
		}
	}
	hop := func(t *testing.T, from *storage.Location, fromJob metadata.Job, to *storage.Location, toJob metadata.Job, serverSide bool) {
		t.Helper()
		dst := to.Bucket
		if serverSide {
			dst = from.Bucket
		}
		res := mustRelocate(t, relocate.Source{Bucket: from.Bucket, Job: fromJob, IDs: []uint64{id}},
			relocate.Destination{Bucket: dst, Job: toJob}, relocate.Options{Parallel: 4})
		if res.ServerSide != serverSide || res.FilesCopied != res.Checkpoints[0].Files {
			t.Fatalf("%s → %s: %+v", from.Display, to.Display, res)
		}
		check(t, dst, toJob)
	}

	for _, be := range backends {
		t.Run("file-to-"+be.Name, func(t *testing.T) {
			loc := storagetest.Open(t, be.Sub("hop").URL)
			c := metadata.Job{Prefix: join(loc.Prefix, "c")}
			hop(t, srcLoc, ch.b, loc, c, false)
			hop(t, loc, c, loc, metadata.Job{Prefix: join(loc.Prefix, "d")}, true)
		})
	}
	s3, ok := byName["s3"]
	if !ok {
		return
	}
	s3Loc := storagetest.Open(t, s3.Sub("s3-origin").URL)
	c := metadata.Job{Prefix: join(s3Loc.Prefix, "c")}
	hop(t, srcLoc, ch.b, s3Loc, c, false)
	for _, name := range []string{"gcs", "azure"} {
		be, ok := byName[name]
		if !ok {
			continue
		}
		t.Run("s3-to-"+name, func(t *testing.T) {
			loc := storagetest.Open(t, be.Sub("from-s3").URL)
			hop(t, s3Loc, c, loc, metadata.Job{Prefix: join(loc.Prefix, "c")}, false)
		})
	}
}
