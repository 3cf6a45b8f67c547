package checkpoint_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
	"gocloud.dev/blob/memblob"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/metadata"
)

// An application that keeps its Pebble store open checkpoints it live:
// FromDB takes a Pebble checkpoint into a scratch directory (hard links) and
// Create uploads it incrementally. A real application would open its job
// location with storage.Open("s3://bucket/jobs/app") instead of memblob.
func ExampleFromDB() {
	ctx := context.Background()
	tmp, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(tmp)

	db, err := pebble.Open(filepath.Join(tmp, "db"), &pebble.Options{Logger: quietLog{}})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	bucket := memblob.OpenBucket(nil)
	job := metadata.Job{Prefix: "jobs/app"}

	for round := 1; round <= 2; round++ {
		_ = db.Set([]byte(fmt.Sprintf("key-%d", round)), []byte("value"), pebble.Sync)
		store, err := checkpoint.FromDB(db, "default", filepath.Join(tmp, "scratch"))
		if err != nil {
			log.Fatal(err)
		}
		res, err := checkpoint.Create(ctx, bucket, job, []*checkpoint.Store{store}, checkpoint.Options{})
		store.Close() // removes the scratch directory
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("chk-%d %s\n", res.CheckpointID, res.Kind)
	}
	// Output:
	// chk-1 full
	// chk-2 incremental
}
