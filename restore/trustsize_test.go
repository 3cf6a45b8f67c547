package restore_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-dev/ckpt/internal/testpebble"
	"github.com/ckpt-dev/ckpt/restore"
)

// With TrustSize, local sstables of the right size are taken without being
// read (so a same-size corruption goes through, as documented), private
// files are still checked, and --check still catches the damage.
func TestTrustSizeSkipsReadingLocalSSTables(t *testing.T) {
	f := newFixture(t, testpebble.V2, true)
	f.take(t)
	c := f.meta(t, 1)
	dir := filepath.Join(f.local, "chk-1", "default")
	var sst, manifest string
	for _, x := range c.Stores[0].Files {
		switch {
		case strings.HasSuffix(x.Name, ".sst") && (sst == "" || x.Size > 4096):
			sst = x.Name
		case strings.HasPrefix(x.Name, "MANIFEST"):
			manifest = x.Name
		}
	}
	for _, name := range []string{sst, manifest} {
		p := filepath.Join(dir, name)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		// Replace (not modify: local sstables are hard links of the
		// store's own) with the same size, one byte flipped in the middle.
		data[len(data)/2] ^= 0xff
		os.Remove(p)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	p, r, err := f.restore(t, 1, restore.Options{Target: filepath.Join(t.TempDir(), "r"), LocalDir: f.local, TrustSize: true})
	if err != nil {
		t.Fatal(err)
	}
	source := map[string]restore.Source{}
	for _, x := range p.Files {
		source[x.Name] = x.Source
	}
	if source[sst] != restore.FromLocal || source[manifest] != restore.FromRemote || r.FilesFromRemote != 1 {
		t.Fatalf("with TrustSize the same-size sstable came from %v and the MANIFEST from %v (%d files remote); want local and remote (1)",
			source[sst], source[manifest], r.FilesFromRemote)
	}

	// Without it, both are fetched.
	p, _, err = f.restore(t, 1, restore.Options{Target: filepath.Join(t.TempDir(), "r"), LocalDir: f.local})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range p.Files {
		if (x.Name == sst || x.Name == manifest) && x.Source != restore.FromRemote {
			t.Fatalf("without TrustSize %s came from %v", x.Name, x.Source)
		}
	}

	// --check reads every block and refuses the damaged store.
	target := filepath.Join(t.TempDir(), "r")
	_, _, err = f.restore(t, 1, restore.Options{Target: target, LocalDir: f.local, TrustSize: true, Check: true})
	if err == nil {
		t.Fatal("TrustSize with Check restored a store with a corrupt sstable")
	}
	if !errors.Is(err, restore.ErrVerifyFailed) {
		t.Fatalf("error is not a verification failure: %v", err)
	}
	if _, serr := os.Stat(target); !os.IsNotExist(serr) {
		t.Fatalf("a failed restore left %s: %v", target, serr)
	}
}
