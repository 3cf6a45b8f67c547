package cmd

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra/doc"
)

// The CLI reference in docs/cli is generated from the command tree. Run
// `CKPT_UPDATE_DOCS=1 go test ./cmd -run TestCLIDocs` after changing
// commands or flags.
func TestCLIDocs(t *testing.T) {
	root := NewRootCmd(DefaultFactory())
	root.DisableAutoGenTag = true
	tmp := t.TempDir()
	if err := doc.GenMarkdownTree(root, tmp); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join("..", "docs", "cli")
	if os.Getenv("CKPT_UPDATE_DOCS") != "" {
		os.RemoveAll(want)
		os.MkdirAll(want, 0o755)
		gen, _ := os.ReadDir(tmp)
		for _, e := range gen {
			data, _ := os.ReadFile(filepath.Join(tmp, e.Name()))
			os.WriteFile(filepath.Join(want, e.Name()), data, 0o644)
		}
	}
	gen, _ := os.ReadDir(tmp)
	have, _ := os.ReadDir(want)
	if len(gen) != len(have) {
		t.Fatalf("docs/cli has %d files, the command tree makes %d; run CKPT_UPDATE_DOCS=1 go test ./cmd -run TestCLIDocs", len(have), len(gen))
	}
	for _, e := range gen {
		a, _ := os.ReadFile(filepath.Join(tmp, e.Name()))
		b, err := os.ReadFile(filepath.Join(want, e.Name()))
		if err != nil || !bytes.Equal(a, b) {
			t.Fatalf("docs/cli/%s is stale; run CKPT_UPDATE_DOCS=1 go test ./cmd -run TestCLIDocs", e.Name())
		}
	}
}
