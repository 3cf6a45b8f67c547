package proctest

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ckpt-dev/ckpt/internal/testpebble"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/storage"
)

// storeSpec makes a store of about 60 sstables: enough files that every
// command spends a while on them at CKPT_TEST_OP_DELAY=15ms.
var storeSpec = testpebble.Spec{Keys: 60000, ValueSize: 200, Seed: 7}

var (
	fixtureOnce sync.Once
	fixtureErr  error
	fixtureDB   string // a Pebble store, left as checkpoint 4 saw it
	fixtureJob  string // a job of 4 checkpoints of it, 20 % churn in between
)

// fixture builds, once, a store and a job of four checkpoints of it on
// local files. Tests copy them; they never change them.
func fixture(t testing.TB) (db, job string) {
	t.Helper()
	fixtureOnce.Do(func() {
		fixtureDB = filepath.Join(workDir, "fixture", "db")
		fixtureJob = filepath.Join(workDir, "fixture", "job")
		if fixtureErr = testpebble.Create(testpebble.V2, fixtureDB, storeSpec); fixtureErr != nil {
			return
		}
		for i := 0; i < 4; i++ {
			if i > 0 {
				if fixtureErr = testpebble.Churn(testpebble.V2, fixtureDB, storeSpec, 0.2, uint64(i)); fixtureErr != nil {
					return
				}
			}
			p := start(t, 0, nil, "create", "--db", fixtureDB, "--to", fixtureJob, "-q")
			if code := p.wait(2 * time.Minute); code != 0 {
				fixtureErr = fmt.Errorf("fixture create: exit %d: %s", code, p)
				return
			}
		}
	})
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return fixtureDB, fixtureJob
}

// fileCount is the number of files checkpoint id of the job at loc holds.
func fileCount(t testing.TB, loc *storage.Location, id uint64) int {
	t.Helper()
	c, err := metadata.Read(context.Background(), loc.Bucket, metadata.Job{Prefix: loc.Prefix}.MetadataKey(id))
	if err != nil {
		t.Fatal(err)
	}
	return c.FileCount()
}
