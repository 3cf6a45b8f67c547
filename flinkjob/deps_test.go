package flinkjob_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps flinkjob a core package: it reads and writes
// storage through *blob.Bucket, and knows nothing of the command line, of
// terminals, or of ckpt's own checkpoint format.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/spf13/", "github.com/schollz/", "golang.org/x/term",
			"github.com/ckpt-dev/ckpt/metadata", "github.com/ckpt-dev/ckpt/cmd", "github.com/ckpt-dev/ckpt/gc",
			"github.com/ckpt-dev/ckpt/relocate", "github.com/ckpt-dev/ckpt/inspect"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("flinkjob depends on %s", dep)
			}
		}
	}
}
