package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ckpt-dev/ckpt/metadata"
)

// maxLineageSize bounds the lineage file ckpt reads from a store directory.
const maxLineageSize = 64 << 10

// readLineage reads dir's lineage file; a missing file is no lineage.
func readLineage(dir string) (*metadata.Lineage, error) {
	path := filepath.Join(dir, LineageFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(data) > maxLineageSize {
		return nil, fmt.Errorf("reading %s: %d bytes is too large for a lineage file", path, len(data))
	}
	var l metadata.Lineage
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return &l, nil
}

// WriteLineage records in dir (a restored store) where it was restored from,
// so that the next Create from it knows its lineage.
func WriteLineage(dir string, l *metadata.Lineage) error {
	data, err := json.Marshal(l)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, LineageFile)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
