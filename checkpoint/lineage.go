package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// OriginFile is the name of the file ckpt restore writes into a restored
// store directory to record where the store came from. Pebble ignores it;
// Create reads it.
const OriginFile = "CKPT-ORIGIN"

// maxOriginSize bounds the origin file ckpt reads from a store directory.
const maxOriginSize = 64 << 10

// Origin records the checkpoint a store was restored from.
type Origin struct {
	// Location is the source checkpoint directory as a location URL
	// (e.g. "s3://bucket/jobs/a/chk-3", "/backups/jobs/a/chk-3"), never
	// carrying credentials.
	Location     string `json:"location"`
	JobID        string `json:"job_id"`
	CheckpointID uint64 `json:"checkpoint_id"`
	// Claim is true when checkpoints taken from the restored store may
	// reference the source checkpoint's shared files (Flink's CLAIM mode);
	// false (NO_CLAIM) makes the first checkpoint into another job a full
	// one that references nothing of the source.
	Claim bool `json:"claim"`
}

// readOrigin reads dir's origin file; a missing file is no origin.
func readOrigin(dir string) (*Origin, error) {
	path := filepath.Join(dir, OriginFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(data) > maxOriginSize {
		return nil, fmt.Errorf("reading %s: %d bytes is too large for an origin file", path, len(data))
	}
	var o Origin
	if err := json.Unmarshal(data, &o); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return &o, nil
}

// WriteOrigin records in dir (a restored store) where it was restored from,
// so that the next Create from it knows its lineage. It writes the file
// with mode 0644 and fsyncs it.
func WriteOrigin(dir string, o *Origin) error {
	data, err := json.Marshal(o)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, OriginFile)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := writeFileSync(path, data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
