package metadata

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// FormatVersion is the `_metadata` format version this package writes, and
// the newest it reads.
const FormatVersion = 1

// magic starts every ckpt `_metadata` object, followed by the decimal format
// version and a newline.
const magic = "ckpt-metadata "

// MaxSize bounds the size of a `_metadata` object that Decode accepts
// (a checkpoint of several million files fits well below it).
const MaxSize = 1 << 30

// MaxFiles bounds the number of files (over all stores) of a checkpoint that
// Decode and Encode accept. Decode counts them in the raw bytes before it
// decodes anything, so an object claiming more never costs the memory of
// decoding them. A checkpoint of 1,000,000 files decodes in about 0.5 GiB.
const MaxFiles = 4_000_000

// MaxTotalSize bounds the sum of a checkpoint's file sizes (1 EiB), so that
// totals never overflow an int64.
const MaxTotalSize = 1 << 60

// Errors returned by Decode and the readers built on it.
var (
	// ErrCorrupt means the bytes are not a valid `_metadata` (bad magic,
	// checksum mismatch, malformed body, invalid field).
	ErrCorrupt = errors.New("metadata: corrupt")
	// ErrNewerVersion means the object was written by a newer ckpt.
	ErrNewerVersion = errors.New("metadata: written by a newer version of ckpt")
)

// Kind says whether a checkpoint reuses files of an earlier one.
type Kind string

// Checkpoint kinds.
const (
	KindFull        Kind = "full"
	KindIncremental Kind = "incremental"
)

// Checkpoint is the decoded content of one `_metadata` object.
type Checkpoint struct {
	// ID is the checkpoint id, the N of its `chk-<N>` directory; ids of a job
	// increase monotonically.
	ID uint64 `json:"checkpoint_id"`
	// JobID identifies the job (the history of one store set); it is carried
	// from checkpoint to checkpoint.
	JobID string `json:"job_id"`
	// CreatedAt is when the checkpoint was taken (UTC).
	CreatedAt time.Time `json:"created_at"`
	// Kind is full or incremental.
	Kind Kind `json:"kind"`
	// BaseID is the id of the checkpoint whose files this one reused
	// (incremental only; 0 if none).
	BaseID uint64 `json:"base_checkpoint_id,omitempty"`
	// Lineage says where the stores were restored from, if they were.
	Lineage *Lineage `json:"lineage,omitempty"`
	// Stores are the Pebble stores in the checkpoint, sorted by name.
	Stores []Store `json:"stores"`
}

// Lineage records the checkpoint a store set was restored from.
type Lineage struct {
	// Path is the source checkpoint directory, relative to this checkpoint's
	// directory (e.g. "../../other-job/chk-3"); empty if unknown.
	Path string `json:"path,omitempty"`
	// JobID and CheckpointID identify the source checkpoint.
	JobID        string `json:"job_id"`
	CheckpointID uint64 `json:"checkpoint_id"`
	// Claim is true when the restored store may keep referencing the source
	// checkpoint's shared files (Flink's CLAIM mode).
	Claim bool `json:"claim,omitempty"`
}

// Store describes one named Pebble store of a checkpoint.
type Store struct {
	// Name is unique within the checkpoint; see ValidStoreName.
	Name string `json:"name"`
	// FormatMajorVersion is the store's Pebble format major version.
	FormatMajorVersion uint64 `json:"format_major_version"`
	// Files are every file the store needs, sorted by Name.
	Files []File `json:"files"`
}

// File is one file of a store.
type File struct {
	// Name is the file's name inside the Pebble store directory
	// (e.g. "000123.sst", "MANIFEST-000012"): a single path element.
	Name string `json:"name"`
	// Path locates the object relative to the directory holding `_metadata`
	// ("default/MANIFEST-000012", "../shared/000123-….sst",
	// "../../other-job/shared/…").
	Path string `json:"path"`
	// Size in bytes.
	Size int64 `json:"size"`
	// SHA256 is the lower-case hex SHA-256 of the content.
	SHA256 string `json:"sha256"`
	// New is true when this checkpoint uploaded the file (false: reused).
	New bool `json:"new,omitempty"`
}

// Referrer is the content of a referrer marker `<job>/_referrers/<id>`: a
// job whose checkpoints (may) reference the marked job's shared files, so
// that gc of the marked job checks them before deleting anything.
type Referrer struct {
	// Path is the referring job's location relative to the marked job's
	// directory (e.g. "../job-b").
	Path string `json:"path"`
	// JobID is the referring job's id.
	JobID string `json:"job_id"`
}

// Pending is the content of a `chk-<N>/_pending` reservation marker: what an
// in-flight checkpoint may reference before it commits.
type Pending struct {
	// Token is random, unique to the creator that holds the reservation.
	Token     string    `json:"token"`
	CreatedAt time.Time `json:"created_at"`
	// BaseID is the checkpoint of the same job whose files it reuses.
	BaseID uint64 `json:"base_checkpoint_id,omitempty"`
	// ClaimPath is the checkpoint directory (relative to the job's
	// directory) whose shared files it may reference after a restore with
	// claim.
	ClaimPath string `json:"claim_path,omitempty"`
}

// TotalBytes is the sum of the sizes of every file of every store.
func (c *Checkpoint) TotalBytes() int64 {
	var n int64
	for _, s := range c.Stores {
		for _, f := range s.Files {
			n += f.Size
		}
	}
	return n
}

// FileCount is the number of files of every store.
func (c *Checkpoint) FileCount() int {
	n := 0
	for _, s := range c.Stores {
		n += len(s.Files)
	}
	return n
}

// Encode validates c and returns its `_metadata` bytes. The output is
// deterministic: stores and files are sorted by name first (c is modified to
// be in that order).
func Encode(c *Checkpoint) ([]byte, error) {
	sort.Slice(c.Stores, func(i, j int) bool { return c.Stores[i].Name < c.Stores[j].Name })
	for i := range c.Stores {
		fs := c.Stores[i].Files
		sort.Slice(fs, func(a, b int) bool { return fs[a].Name < fs[b].Name })
	}
	c.CreatedAt = c.CreatedAt.UTC()
	if err := validate(c); err != nil {
		return nil, err
	}
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("metadata: encoding: %w", err)
	}
	var b bytes.Buffer
	b.WriteString(magic)
	b.WriteString(strconv.Itoa(FormatVersion))
	b.WriteByte('\n')
	b.Write(body)
	b.WriteByte('\n')
	sum := sha256.Sum256(b.Bytes())
	b.WriteString("sha256 ")
	b.WriteString(hex.EncodeToString(sum[:]))
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// IsMetadata reports whether prefix starts like a ckpt `_metadata` object.
func IsMetadata(prefix []byte) bool {
	return bytes.HasPrefix(prefix, []byte(magic))
}

// Decode parses and validates `_metadata` bytes. It never panics. Errors wrap
// ErrCorrupt or ErrNewerVersion.
func Decode(data []byte) (*Checkpoint, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes is over the %d-byte limit", ErrCorrupt, len(data), MaxSize)
	}
	if !bytes.HasPrefix(data, []byte(magic)) {
		return nil, fmt.Errorf("%w: not a ckpt _metadata (bad magic)", ErrCorrupt)
	}
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 {
		return nil, fmt.Errorf("%w: truncated header", ErrCorrupt)
	}
	verText := string(data[len(magic):nl])
	ver, err := strconv.Atoi(verText)
	if err != nil || ver < 1 || strconv.Itoa(ver) != verText {
		return nil, fmt.Errorf("%w: bad format version %q", ErrCorrupt, verText)
	}
	if ver > FormatVersion {
		return nil, fmt.Errorf("%w: format version %d (this ckpt reads up to %d; upgrade ckpt)", ErrNewerVersion, ver, FormatVersion)
	}
	// Trailer: "sha256 <64 hex>\n" covering everything before it.
	const trailerLen = len("sha256 ") + 64 + 1
	if len(data) < nl+1+trailerLen || data[len(data)-1] != '\n' {
		return nil, fmt.Errorf("%w: truncated (no checksum trailer)", ErrCorrupt)
	}
	cut := len(data) - trailerLen
	trailer := data[cut:]
	if !bytes.HasPrefix(trailer, []byte("sha256 ")) || cut < 1 || data[cut-1] != '\n' {
		return nil, fmt.Errorf("%w: truncated (no checksum trailer)", ErrCorrupt)
	}
	want, err := hex.DecodeString(string(trailer[len("sha256 ") : len(trailer)-1]))
	if err != nil {
		return nil, fmt.Errorf("%w: malformed checksum trailer", ErrCorrupt)
	}
	got := sha256.Sum256(data[:cut])
	if !bytes.Equal(want, got[:]) {
		return nil, fmt.Errorf("%w: checksum mismatch (truncated or altered)", ErrCorrupt)
	}
	body := data[nl+1 : cut-1]
	// Every file has exactly one "sha256" key, and a quote inside a JSON
	// string is escaped, so this counts files (or more, for a body that is
	// invalid anyway) without decoding or allocating.
	if n := bytes.Count(body, []byte(`"sha256":`)); n > MaxFiles {
		return nil, fmt.Errorf("%w: %d files is over the %d-file limit", ErrCorrupt, n, MaxFiles)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var c Checkpoint
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: body: %v", ErrCorrupt, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after body", ErrCorrupt)
	}
	if err := validate(&c); err != nil {
		return nil, err
	}
	c.CreatedAt = c.CreatedAt.UTC()
	// Only the canonical encoding is accepted (no reordered, re-cased or
	// extra keys, no other spacing, lower-case trailer): the same content
	// always has the same bytes, and a hand-edited file is refused.
	again, err := Encode(&c)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, data) {
		return nil, fmt.Errorf("%w: not in canonical form", ErrCorrupt)
	}
	return &c, nil
}

// maxFileSize bounds a single file's recorded size (1 PiB).
const maxFileSize = 1 << 50

func validate(c *Checkpoint) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	if c.ID == 0 {
		return bad("checkpoint id 0")
	}
	if !validJobID(c.JobID) {
		return bad("invalid job id %q", c.JobID)
	}
	if c.Kind != KindFull && c.Kind != KindIncremental {
		return bad("invalid kind %q", c.Kind)
	}
	if c.Kind == KindFull && c.BaseID != 0 {
		return bad("full checkpoint with a base checkpoint")
	}
	if c.BaseID >= c.ID && c.BaseID != 0 {
		return bad("base checkpoint %d is not older than %d", c.BaseID, c.ID)
	}
	if c.Lineage != nil {
		if c.Lineage.Path != "" {
			if err := CheckRelPath(c.Lineage.Path); err != nil {
				return bad("lineage: %v", err)
			}
		}
		if !validJobID(c.Lineage.JobID) || c.Lineage.CheckpointID == 0 {
			return bad("lineage: invalid source job or checkpoint id")
		}
	}
	if len(c.Stores) == 0 {
		return bad("no stores")
	}
	var files int
	var total int64
	for i, s := range c.Stores {
		if err := ValidStoreName(s.Name); err != nil {
			return bad("%v", err)
		}
		if i > 0 && c.Stores[i-1].Name >= s.Name {
			return bad("stores not sorted or duplicate store %q", s.Name)
		}
		if len(s.Files) == 0 {
			return bad("store %q has no files", s.Name)
		}
		for j, f := range s.Files {
			if err := ValidFileName(f.Name); err != nil {
				return bad("store %q: %v", s.Name, err)
			}
			if j > 0 && s.Files[j-1].Name >= f.Name {
				return bad("store %q: files not sorted or duplicate file %q", s.Name, f.Name)
			}
			if err := CheckRelPath(f.Path); err != nil {
				return bad("store %q file %q: %v", s.Name, f.Name, err)
			}
			if f.Size < 0 || f.Size > maxFileSize {
				return bad("store %q file %q: invalid size %d", s.Name, f.Name, f.Size)
			}
			if files++; files > MaxFiles {
				return bad("over %d files", MaxFiles)
			}
			if total += f.Size; total > MaxTotalSize {
				return bad("files total over %d bytes", int64(MaxTotalSize))
			}
			if !validSHA256(f.SHA256) {
				return bad("store %q file %q: invalid sha256 %q", s.Name, f.Name, f.SHA256)
			}
		}
	}
	return nil
}

func validJobID(s string) bool {
	if len(s) < 8 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

func validSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// ValidStoreName checks a store name: 1–64 characters from [A-Za-z0-9._-],
// not starting with '.' or '_' (names starting with '_' are reserved for
// ckpt's own objects such as `_metadata`).
func ValidStoreName(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("invalid store name %q: must be 1 to 64 characters", s)
	}
	if s[0] == '.' || s[0] == '_' || s[0] == '-' {
		return fmt.Errorf("invalid store name %q: must not start with %q", s, s[0])
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("invalid store name %q: only letters, digits, '.', '_' and '-' are allowed", s)
		}
	}
	return nil
}

// ValidFileName checks a store file name: a single path element of at most
// 255 bytes, printable ASCII without '/', '\\', and not "." or "..".
func ValidFileName(s string) error {
	if s == "" || s == "." || s == ".." || len(s) > 255 {
		return fmt.Errorf("invalid file name %q", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '/' || c == '\\' {
			return fmt.Errorf("invalid file name %q", s)
		}
	}
	return nil
}

// CheckRelPath checks the syntax of a path relative to a `_metadata`
// directory: '/'-separated, not absolute, no empty or "." segments, ".."
// only as leading segments, every other segment a valid file name, and at
// most 4096 bytes. Whether it stays inside the storage root is Resolve's job.
func CheckRelPath(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	if len(p) > 4096 {
		return errors.New("path too long")
	}
	if p[0] == '/' {
		return fmt.Errorf("absolute path %q", p)
	}
	segs := strings.Split(p, "/")
	up := true
	for _, s := range segs {
		if s == ".." {
			if !up {
				return fmt.Errorf("path %q has '..' after a name", p)
			}
			continue
		}
		up = false
		if s == "" || s == "." {
			return fmt.Errorf("path %q has an empty or '.' segment", p)
		}
		if err := ValidFileName(s); err != nil {
			return fmt.Errorf("path %q: %v", p, err)
		}
	}
	if up {
		return fmt.Errorf("path %q names no file", p)
	}
	return nil
}
