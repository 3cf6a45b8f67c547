package metadata

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Object and directory names of the layout.
const (
	// MetadataName is the name of the object that commits a checkpoint.
	MetadataName = "_metadata"
	// PendingName is the marker a creator writes (create-if-absent) to
	// reserve a checkpoint id before uploading into its directory.
	PendingName = "_pending"
	// SharedDir holds the job's immutable, content-named shared files.
	SharedDir = "shared"
	// ReferrersDir holds one marker per other job whose checkpoints
	// reference this job's shared files (see Referrer).
	ReferrersDir = "_referrers"
	// checkpointPrefix starts every checkpoint directory name.
	checkpointPrefix = "chk-"
)

// Job is a job location: a key prefix in a bucket ("" for the bucket root).
// It holds `chk-<N>/` directories and `shared/`.
type Job struct {
	// Prefix is the job's key prefix, without leading or trailing '/'.
	Prefix string
}

func join(prefix string, elems ...string) string {
	if prefix == "" {
		return strings.Join(elems, "/")
	}
	return prefix + "/" + strings.Join(elems, "/")
}

// Dir is the key prefix under which every object of the job lives, with a
// trailing '/' ("" for the bucket root).
func (j Job) Dir() string {
	if j.Prefix == "" {
		return ""
	}
	return j.Prefix + "/"
}

// CheckpointDir is the directory key of checkpoint id (no trailing '/').
func (j Job) CheckpointDir(id uint64) string {
	return join(j.Prefix, CheckpointDirName(id))
}

// MetadataKey is the key of checkpoint id's `_metadata`.
func (j Job) MetadataKey(id uint64) string {
	return join(j.Prefix, CheckpointDirName(id), MetadataName)
}

// PendingKey is the key of checkpoint id's reservation marker.
func (j Job) PendingKey(id uint64) string {
	return join(j.Prefix, CheckpointDirName(id), PendingName)
}

// PrivateKey is the key of a store's private (non-shared) file in checkpoint
// id: `chk-<id>/<store>/<name>`.
func (j Job) PrivateKey(id uint64, store, name string) string {
	return join(j.Prefix, CheckpointDirName(id), store, name)
}

// SharedKey is the key of a shared file named name.
func (j Job) SharedKey(name string) string {
	return join(j.Prefix, SharedDir, name)
}

// ReferrerKey is the key of the marker recording that the job with id
// jobID references this job's shared files.
func (j Job) ReferrerKey(jobID string) string {
	return join(j.Prefix, ReferrersDir, jobID)
}

// ReferrersDirKey is the key prefix of the job's referrer markers, with a
// trailing '/'.
func (j Job) ReferrersDirKey() string {
	return join(j.Prefix, ReferrersDir) + "/"
}

// SharedDirKey is the key prefix of the job's shared directory, with a
// trailing '/'.
func (j Job) SharedDirKey() string {
	return join(j.Prefix, SharedDir) + "/"
}

// CheckpointDirName returns "chk-<id>".
func CheckpointDirName(id uint64) string {
	return checkpointPrefix + strconv.FormatUint(id, 10)
}

// ParseCheckpointDirName parses "chk-<id>" (a trailing '/' is allowed). It
// accepts only canonical decimal ids greater than zero.
func ParseCheckpointDirName(name string) (uint64, bool) {
	name = strings.TrimSuffix(name, "/")
	s, ok := strings.CutPrefix(name, checkpointPrefix)
	if !ok || s == "" || s[0] == '0' || len(s) > 19 {
		return 0, false
	}
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false
	}
	return id, true
}

// SharedName is the name of a shared object for a store file name with the
// given SHA-256 hex digest: the file's stem, a dash, the first 32 hex digits
// (128 bits) of the digest, and the file's extension, e.g.
// "000123-9f86d081884c7d659a2feaa0c55ad015.sst". Two histories that reuse a
// Pebble file number for different content get different names, and the
// same content gets the same name.
func SharedName(fileName, sha256Hex string) string {
	stem, ext := fileName, ""
	if i := strings.LastIndexByte(fileName, '.'); i > 0 {
		stem, ext = fileName[:i], fileName[i:]
	}
	return stem + "-" + sha256Hex[:32] + ext
}

// SharedNameFor is the name a checkpoint uses for a shared file when the
// object named SharedName exists already and is not vouched for by the
// checkpoint it builds on: "<stem>-<hash>-c<id><ext>", unique to checkpoint
// id of the job.
func SharedNameFor(fileName, sha256Hex string, id uint64) string {
	n := SharedName(fileName, sha256Hex)
	stem, ext := n, ""
	if i := strings.LastIndexByte(n, '.'); i > 0 {
		stem, ext = n[:i], n[i:]
	}
	return stem + "-c" + strconv.FormatUint(id, 10) + ext
}

// ErrOutsideRoot is returned by Resolve for a path that climbs above the
// storage root.
var ErrOutsideRoot = errors.New("metadata: path escapes the storage root")

// Resolve returns the object key that rel (a path relative to directory key
// dir) names. It rejects invalid paths and paths that climb above the root.
func Resolve(dir, rel string) (string, error) {
	if err := CheckRelPath(rel); err != nil {
		return "", fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	segs := []string{}
	if dir != "" {
		segs = strings.Split(strings.Trim(dir, "/"), "/")
	}
	for _, s := range strings.Split(rel, "/") {
		if s == ".." {
			if len(segs) == 0 {
				return "", fmt.Errorf("%w: %w: %q from %q", ErrCorrupt, ErrOutsideRoot, rel, dir)
			}
			segs = segs[:len(segs)-1]
			continue
		}
		segs = append(segs, s)
	}
	return strings.Join(segs, "/"), nil
}

// Rel returns the relative path from directory key dir to key, the inverse of
// Resolve: Resolve(dir, Rel(dir, key)) == key.
func Rel(dir, key string) string {
	d := splitKey(dir)
	k := splitKey(key)
	i := 0
	for i < len(d) && i < len(k)-1 && d[i] == k[i] {
		i++
	}
	var out []string
	for range d[i:] {
		out = append(out, "..")
	}
	out = append(out, k[i:]...)
	return strings.Join(out, "/")
}

// RelDir returns the relative path from directory key from to directory key
// to ("a/b" → "a/c/d" is "../c/d"; "." when they are the same).
func RelDir(from, to string) string {
	f, t := splitKey(from), splitKey(to)
	i := 0
	for i < len(f) && i < len(t) && f[i] == t[i] {
		i++
	}
	var out []string
	for range f[i:] {
		out = append(out, "..")
	}
	out = append(out, t[i:]...)
	if len(out) == 0 {
		return "."
	}
	return strings.Join(out, "/")
}

func splitKey(k string) []string {
	k = strings.Trim(k, "/")
	if k == "" {
		return nil
	}
	return strings.Split(k, "/")
}

// LocationKind says what a location prefix names.
type LocationKind int

// Location kinds.
const (
	// LocationJob is a job directory.
	LocationJob LocationKind = iota
	// LocationCheckpoint is a checkpoint directory (or its `_metadata`).
	LocationCheckpoint
)

// ParseLocation classifies a key prefix: "…/chk-<N>" or
// "…/chk-<N>/_metadata" is a checkpoint of the job above it; anything else is
// a job. For a checkpoint it returns the job and the id.
func ParseLocation(prefix string) (LocationKind, Job, uint64) {
	p := strings.Trim(prefix, "/")
	p = strings.TrimSuffix(p, "/"+MetadataName)
	if p == MetadataName {
		p = ""
	}
	dir, base := path.Split(p)
	if id, ok := ParseCheckpointDirName(base); ok {
		return LocationCheckpoint, Job{Prefix: strings.TrimSuffix(dir, "/")}, id
	}
	return LocationJob, Job{Prefix: p}, 0
}

// JobOfSharedKey returns the job prefix that owns a shared object key
// ("a/b/shared/x.sst" → "a/b"), and false if key is not in a shared
// directory.
func JobOfSharedKey(key string) (string, bool) {
	dir := path.Dir(key)
	if path.Base(dir) != SharedDir {
		return "", false
	}
	job := path.Dir(dir)
	if job == "." {
		job = ""
	}
	return job, true
}
