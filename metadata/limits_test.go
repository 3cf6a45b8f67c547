package metadata_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-dev/ckpt/metadata"
)

// seal wraps a body in the header and a valid checksum trailer, so that
// Decode gets past the checksum to the body.
func seal(body []byte) []byte {
	var b bytes.Buffer
	b.WriteString("ckpt-metadata " + strconv.Itoa(metadata.FormatVersion) + "\n")
	b.Write(body)
	b.WriteByte('\n')
	sum := sha256.Sum256(b.Bytes())
	b.WriteString("sha256 " + hex.EncodeToString(sum[:]) + "\n")
	return b.Bytes()
}

// A _metadata claiming more than MaxFiles files is refused before anything
// is decoded: the refusal allocates (almost) nothing.
func TestTooManyFilesRefusedBeforeDecoding(t *testing.T) {
	body := []byte(`{"stores":[{"files":[` + strings.Repeat(`{"sha256":""},`, metadata.MaxFiles) + `{"sha256":""}]}]}`)
	data := seal(body)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := metadata.Decode(data)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, metadata.ErrCorrupt) || !strings.Contains(err.Error(), "file limit") {
		t.Fatalf("got %v", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Fatalf("refusing allocated %d bytes", n)
	}
}

// Sizes whose sum would overflow are refused by Encode and Decode.
func TestAbsurdTotalSizeRefused(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	c := &metadata.Checkpoint{ID: 1, JobID: "0123456789abcdef", CreatedAt: time.Unix(0, 0), Kind: metadata.KindFull,
		Stores: []metadata.Store{{Name: "default", Files: []metadata.File{
			{Name: "1.sst", Path: "default/1.sst", Size: 1, SHA256: sum},
			{Name: "2.sst", Path: "default/2.sst", Size: 1, SHA256: sum},
		}}}}
	if _, err := metadata.Encode(c); err != nil {
		t.Fatal(err)
	}
	var many []metadata.File
	for i := 0; i < 1100; i++ {
		name := strconv.Itoa(100000+i) + ".sst"
		many = append(many, metadata.File{Name: name, Path: "default/" + name, Size: 1 << 50, SHA256: sum}) // each valid alone
	}
	c.Stores[0].Files = many
	if _, err := metadata.Encode(c); !errors.Is(err, metadata.ErrCorrupt) {
		t.Fatalf("Encode accepted %d files of 1 PiB: %v", len(many), err)
	}
	// The same bytes through Decode.
	body, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := metadata.Decode(seal(body)); !errors.Is(err, metadata.ErrCorrupt) || !strings.Contains(err.Error(), "total") {
		t.Fatalf("Decode: %v", err)
	}
}
