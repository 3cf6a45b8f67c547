package flinkjob

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"gocloud.dev/blob"

	"github.com/ckpt-dev/ckpt/storage"
)

// Sentinel errors.
var (
	// ErrNotFound: no Flink checkpoint or job at the location.
	ErrNotFound = errors.New("flinkjob: not found")
	// ErrCorrupt: a `_metadata` cannot be read as Flink's (bad magic,
	// truncated, unknown tag, ...; the message names the byte offset).
	ErrCorrupt = errors.New("flinkjob: unreadable _metadata")
	// ErrVerifyFailed: a referenced file is missing, too short or of the
	// wrong size, cannot be resolved, or lies outside the opened bucket.
	ErrVerifyFailed = errors.New("flinkjob: verification failed")
	// ErrOutsideBucket: an absolute path names another scheme, bucket or
	// container than the one opened.
	ErrOutsideBucket = errors.New("outside the opened bucket")
	// ErrBadPath: a path from `_metadata` is malformed or climbs out of its
	// directory.
	ErrBadPath = errors.New("invalid path")
	// ErrDestinationExists: the destination already holds a different
	// checkpoint, or objects that are not part of the relocation.
	ErrDestinationExists = errors.New("flinkjob: destination exists")
	// ErrOverlap: a relocation's destination overlaps its source
	// directory.
	ErrOverlap = errors.New("flinkjob: destination overlaps the source")
	// ErrUnsupported: the checkpoint holds something this package cannot
	// relocate to the destination (see the message).
	ErrUnsupported = errors.New("flinkjob: unsupported")
	// ErrBadPolicy: invalid retention policy or options.
	ErrBadPolicy = errors.New("flinkjob: invalid policy")
	// ErrBlocked: gc deleted nothing because a `_metadata` could not be
	// read (fail closed).
	ErrBlocked = errors.New("flinkjob: gc blocked")
	// ErrPartial: some deletions failed; re-running is safe.
	ErrPartial = errors.New("flinkjob: some deletions failed")
)

// Names of Flink's job directory layout.
const (
	MetadataName = "_metadata"
	SharedDir    = "shared"
	TaskOwnedDir = "taskowned"
	chkPrefix    = "chk-"
)

// Job is a Flink job directory, `<checkpoint-dir>/<jobId>`, as a key prefix
// without leading or trailing "/" ("" for the bucket root).
type Job struct {
	Prefix string
}

func join(prefix string, elems ...string) string {
	if prefix == "" {
		return strings.Join(elems, "/")
	}
	return prefix + "/" + strings.Join(elems, "/")
}

// Dir is the key prefix of every object of the job, with a trailing "/" (""
// for the bucket root).
func (j Job) Dir() string {
	if j.Prefix == "" {
		return ""
	}
	return j.Prefix + "/"
}

// CheckpointDir is the directory key of checkpoint id: `<job>/chk-<id>`.
func (j Job) CheckpointDir(id int64) string { return join(j.Prefix, CheckpointDirName(id)) }

// MetadataKey is the key of checkpoint id's `_metadata`.
func (j Job) MetadataKey(id int64) string {
	return join(j.Prefix, CheckpointDirName(id), MetadataName)
}

// SharedDirKey is the key prefix of the job's shared/ directory, with a
// trailing "/".
func (j Job) SharedDirKey() string { return join(j.Prefix, SharedDir) + "/" }

// TaskOwnedDirKey is the key prefix of the job's taskowned/ directory, with
// a trailing "/".
func (j Job) TaskOwnedDirKey() string { return join(j.Prefix, TaskOwnedDir) + "/" }

// CheckpointDirName returns "chk-<id>".
func CheckpointDirName(id int64) string { return chkPrefix + strconv.FormatInt(id, 10) }

// ParseCheckpointDirName parses "chk-<id>" with a canonical decimal id (no
// sign, no leading zero) that fits an int64.
func ParseCheckpointDirName(name string) (int64, bool) {
	s, ok := strings.CutPrefix(name, chkPrefix)
	if !ok || s == "" || (s[0] == '0' && s != "0") || len(s) > 19 {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil
}

// JobOf returns the job directory holding checkpoint directory dir
// (`<job>/chk-<N>`) and N, or false when dir is not named chk-<N>.
func JobOf(dir string) (Job, int64, bool) {
	parent, base := path.Split(dir)
	id, ok := ParseCheckpointDirName(base)
	if !ok {
		return Job{}, 0, false
	}
	return Job{Prefix: strings.TrimSuffix(parent, "/")}, id, true
}

// DirOf returns the directory key of an object key ("a/b/_metadata" → "a/b").
func DirOf(key string) string {
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		return key[:i]
	}
	return ""
}

// Store is a bucket opened by the caller, with what is needed to tell
// whether an absolute URI from a `_metadata` names one of its objects.
type Store struct {
	// Bucket is the whole bucket; keys are from its root.
	Bucket *blob.Bucket
	// Scheme is the storage scheme: storage.SchemeFile, SchemeMem,
	// SchemeS3, SchemeGCS or SchemeAzure.
	Scheme string
	// Name is the bucket (S3, GCS), container (Azure) or mem name; "" for
	// local files, whose bucket is the whole file system.
	Name string
}

// StoreOf returns the Store of an opened location.
func StoreOf(loc *storage.Location) Store {
	s := Store{Bucket: loc.Bucket, Scheme: loc.Scheme}
	if loc.Scheme != storage.SchemeFile {
		_, rest, _ := strings.Cut(loc.Display, "://")
		end := strings.IndexAny(rest, "/?")
		if end < 0 {
			end = len(rest)
		}
		s.Name = rest[:end]
	}
	return s
}

// SameBucket reports whether s and o name the same bucket.
func (s Store) SameBucket(o Store) bool {
	return s.Scheme == o.Scheme && s.Name == o.Name
}

// uriFamilies maps the schemes Flink writes to the storage scheme serving
// them.
var uriFamilies = map[string]string{
	"file":  storage.SchemeFile,
	"s3":    storage.SchemeS3,
	"s3a":   storage.SchemeS3,
	"s3n":   storage.SchemeS3,
	"s3p":   storage.SchemeS3,
	"gs":    storage.SchemeGCS,
	"wasb":  storage.SchemeAzure,
	"wasbs": storage.SchemeAzure,
	"abfs":  storage.SchemeAzure,
	"abfss": storage.SchemeAzure,
	"mem":   storage.SchemeMem, // ckpt's in-process buckets (tests)
}

// Resolve returns the key of the object a file reference of the
// `_metadata` in directory dir names: p relative to dir when relative is
// set (a RelativeFileStateHandle), otherwise the absolute URI p. It rejects,
// with an error wrapping ErrBadPath, any path that is malformed or would
// leave its directory, and, with an error wrapping ErrOutsideBucket, a URI
// naming another scheme, bucket or container. A URI without a scheme
// ("/abs/path") is taken as a local file, as Flink's default file system
// does. For local files the symbolic links of the file's directory are
// resolved, as storage.Open does for locations. Resolve does not check that
// the object exists.
func (s Store) Resolve(dir, p string, relative bool) (string, error) {
	if relative {
		if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "://") {
			return "", fmt.Errorf("%w: relative path %q looks absolute or is empty", ErrBadPath, p)
		}
		key := p
		if dir != "" {
			key = dir + "/" + p
		}
		if err := checkPath(p); err != nil {
			return "", fmt.Errorf("%w: relative path %q: %v", ErrBadPath, p, err)
		}
		return key, nil
	}
	scheme, authority, upath, err := splitURI(p)
	if err != nil {
		return "", err
	}
	family, known := uriFamilies[scheme]
	if !known {
		return "", fmt.Errorf("%w: %q (scheme %q is not one ckpt reads)", ErrOutsideBucket, p, scheme)
	}
	bucket := authority
	switch family {
	case storage.SchemeFile:
		if authority != "" && authority != "localhost" {
			return "", fmt.Errorf("%w: %q names host %q", ErrOutsideBucket, p, authority)
		}
		bucket = ""
	case storage.SchemeAzure:
		container, _, ok := strings.Cut(authority, "@")
		if !ok {
			return "", fmt.Errorf("%w: %q names no container (want %s://container@account/path)", ErrOutsideBucket, p, scheme)
		}
		bucket = container
	}
	if family != s.Scheme || bucket != s.Name {
		return "", fmt.Errorf("%w: %q", ErrOutsideBucket, p)
	}
	key := strings.TrimPrefix(upath, "/")
	if err := checkPath(key); err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrBadPath, p, err)
	}
	if family == storage.SchemeFile {
		key = realKey(key)
	}
	return key, nil
}

// checkPath rejects paths that are not plain "/"-separated names: empty
// segments, "." and "..", NUL and backslash, invalid UTF-8, and anything
// else storage.CheckKey refuses.
func checkPath(p string) error {
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "":
			return errors.New("empty path segment")
		case ".", "..":
			return fmt.Errorf("%q segment", seg)
		}
	}
	if storage.CheckKey(p) != nil {
		return errors.New("not a valid object key (NUL, backslash, invalid UTF-8 or a reserved name)")
	}
	return nil
}

// splitURI splits an absolute URI into its lower-cased scheme, authority
// and path, without decoding anything (Flink writes paths unescaped).
func splitURI(p string) (scheme, authority, upath string, err error) {
	if strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "//") {
		return "file", "", p, nil
	}
	i := strings.IndexByte(p, ':')
	if i <= 0 || !validScheme(p[:i]) {
		return "", "", "", fmt.Errorf("%w: %q is neither a URI nor an absolute path", ErrBadPath, p)
	}
	scheme, rest := strings.ToLower(p[:i]), p[i+1:]
	if a, ok := strings.CutPrefix(rest, "//"); ok {
		j := strings.IndexByte(a, '/')
		if j < 0 {
			return "", "", "", fmt.Errorf("%w: %q names no object", ErrBadPath, p)
		}
		authority, rest = a[:j], a[j:]
	}
	if !strings.HasPrefix(rest, "/") || strings.ContainsAny(rest, "?#") {
		return "", "", "", fmt.Errorf("%w: %q has no absolute path, or has a query or fragment", ErrBadPath, p)
	}
	return scheme, authority, rest, nil
}

func validScheme(s string) bool {
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// realKey resolves the symbolic links of the longest existing ancestor of
// the directory of the local file key (keys of local files are absolute
// paths without their leading "/").
func realKey(key string) string {
	dir, base := path.Split(key)
	rest := ""
	for cur := "/" + strings.TrimSuffix(dir, "/"); ; {
		if real, err := filepath.EvalSymlinks(cur); err == nil {
			return strings.TrimPrefix(path.Join(filepath.ToSlash(real), rest, base), "/")
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return key
		}
		rest = path.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// URI returns the absolute URI under which Flink reads key of s: like
// "file:/abs/path", "s3://bucket/key" (keeping the S3 scheme of like,
// s3a or s3p for instance, when like is an S3 URI) or "gs://bucket/key". It
// fails for Azure, whose URIs name the storage account, which a Store does
// not know.
func (s Store) URI(key, like string) (string, error) {
	switch s.Scheme {
	case storage.SchemeFile:
		return "file:/" + key, nil
	case storage.SchemeS3:
		scheme := "s3"
		if sc, _, _, err := splitURI(like); err == nil && uriFamilies[sc] == storage.SchemeS3 {
			scheme = sc
		}
		return scheme + "://" + s.Name + "/" + key, nil
	case storage.SchemeGCS, storage.SchemeMem:
		return s.Scheme + "://" + s.Name + "/" + key, nil
	}
	return "", fmt.Errorf("%w: no Flink URI is known for objects of %s://%s (the storage account is not part of the location)", ErrUnsupported, s.Scheme, s.Name)
}

// Where says where a referenced file lies relative to the checkpoint that
// references it.
type Where string

// File places.
const (
	// InCheckpoint: inside the directory of the `_metadata`.
	InCheckpoint Where = "checkpoint"
	// InShared: in the shared/ directory of the checkpoint's job.
	InShared Where = "shared"
	// InTaskOwned: in the taskowned/ directory of the checkpoint's job.
	InTaskOwned Where = "taskowned"
	// InBucket: elsewhere in the opened bucket (another job, an
	// entropy-injected path, ...).
	InBucket Where = "bucket"
	// Outside: outside the opened bucket.
	Outside Where = "outside"
	// Invalid: the path cannot be resolved safely.
	Invalid Where = "invalid"
)

// classify returns where key lies relative to checkpoint directory dir.
func classify(dir, key string) Where {
	if strings.HasPrefix(key, dir+"/") || dir == "" {
		return InCheckpoint
	}
	if job, _, ok := JobOf(dir); ok {
		switch {
		case strings.HasPrefix(key, job.SharedDirKey()):
			return InShared
		case strings.HasPrefix(key, job.TaskOwnedDirKey()):
			return InTaskOwned
		}
	}
	return InBucket
}
