package flinkjob_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"

	"github.com/ckpt-dev/ckpt/flink"
	"github.com/ckpt-dev/ckpt/flinkjob"
	"github.com/ckpt-dev/ckpt/storage"
)

// javaTrailer stands in for the Java-serialized CheckpointProperties that
// ends every version 4+ _metadata (a Java serialization stream holding a
// string); the codec keeps it opaque.
var javaTrailer = append([]byte{0xAC, 0xED, 0x00, 0x05, 0x74, 0x00, 0x0C}, "ckpt testing"...)

// world is a bucket holding Flink job directories built with the codec's
// writer, and a clock that can be moved past gc's min-age.
type world struct {
	t      testing.TB
	ctx    context.Context
	loc    *storage.Location
	s      flinkjob.Store
	offset time.Duration
}

// newFileWorld opens a fresh directory, whose objects get the world's
// clock as modification time.
func newFileWorld(t testing.TB) *world {
	return openWorld(t, t.TempDir())
}

// newWorld opens a fresh mem bucket.
func newWorld(t testing.TB) *world {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	return openWorld(t, "mem://flinkjob-"+hex.EncodeToString(rnd[:]))
}

func openWorld(t testing.TB, url string) *world {
	loc, err := storage.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = loc.Close() })
	return &world{t: t, ctx: context.Background(), loc: loc, s: flinkjob.StoreOf(loc)}
}

func (w *world) now() time.Time { return time.Now().Add(w.offset) }

// key turns a path relative to the location into a bucket key.
func (w *world) key(rel string) string {
	if w.loc.Prefix == "" {
		return rel
	}
	return w.loc.Prefix + "/" + rel
}

// content is the deterministic content of an object.
func content(key string, n int) []byte {
	return bytes.Repeat([]byte(key+";"), n)[:n]
}

// rel turns a bucket key into a path relative to the location.
func (w *world) rel(key string) string {
	if w.loc.Prefix == "" {
		return key
	}
	return strings.TrimPrefix(key, w.loc.Prefix+"/")
}

// put writes an object; in a file bucket its modification time is set to
// the world's clock.
func (w *world) put(key string, data []byte) {
	w.t.Helper()
	if err := w.loc.Bucket.WriteAll(w.ctx, key, data, nil); err != nil {
		w.t.Fatal(err)
	}
	if w.loc.Scheme == storage.SchemeFile {
		if err := os.Chtimes("/"+key, w.now(), w.now()); err != nil {
			w.t.Fatal(err)
		}
	}
}

func (w *world) exists(key string) bool {
	ok, err := w.loc.Bucket.Exists(w.ctx, key)
	if err != nil {
		w.t.Fatal(err)
	}
	return ok
}

// ensure writes key with its deterministic content unless it exists, and
// returns its size.
func (w *world) ensure(key string, size int) int64 {
	if a, err := w.loc.Bucket.Attributes(w.ctx, key); err == nil {
		return a.Size
	}
	w.put(key, content(key, size))
	return int64(size)
}

func (w *world) uri(key string) string {
	u, err := w.s.URI(key, "")
	if err != nil {
		w.t.Fatal(err)
	}
	return u
}

// spec describes a checkpoint to write.
type spec struct {
	job     string   // job directory, relative to the location
	id      int64    //
	shared  []string // names in <job>/shared/, absolute handles
	private []string // names in chk-<id>/, relative handles
	abs     []string // other objects (relative to the location), absolute handles
	// segments: names in <job>/shared/ holding two segments each
	segments []string
	size     int
}

// metadataFor builds the _metadata of s with the codec's writer: a source
// operator with inline operator state and a keyed operator whose subtask
// holds an incremental RocksDB handle (shared files absolute, private files
// relative) and, for segments, file-merging operator state.
func (w *world) metadataFor(s spec) *flink.Metadata {
	if s.size == 0 {
		s.size = 100
	}
	jobKey := w.key(s.job)
	dirKey := jobKey + "/" + flinkjob.CheckpointDirName(s.id)
	inc := &flink.IncrementalHandle{Tag: flink.TagIncrementalV2, CheckpointID: s.id, BackendID: "backend",
		Range: flink.KeyGroupRange{Start: 0, Count: 128}, CheckpointedSize: 1, ID: fmt.Sprintf("handle-%d", s.id)}
	meta := "meta"
	inc.Meta = &flink.FileHandle{Path: meta, Size: w.ensure(dirKey+"/"+meta, s.size), Relative: true}
	for i, n := range s.shared {
		k := jobKey + "/shared/" + n
		inc.Shared = append(inc.Shared, flink.HandleAndLocalPath{LocalPath: fmt.Sprintf("%06d.sst", i),
			Handle: &flink.FileHandle{Path: w.uri(k), Size: w.ensure(k, s.size)}})
	}
	for _, n := range s.abs {
		k := w.key(n)
		inc.Shared = append(inc.Shared, flink.HandleAndLocalPath{LocalPath: n,
			Handle: &flink.FileHandle{Path: w.uri(k), Size: w.ensure(k, s.size)}})
	}
	for _, n := range s.private {
		inc.Private = append(inc.Private, flink.HandleAndLocalPath{LocalPath: n,
			Handle: &flink.FileHandle{Path: n, Size: w.ensure(dirKey+"/"+n, s.size), Relative: true}})
	}
	keyed := &flink.SubtaskState{Index: 0, ManagedKeyedState: inc}
	for _, n := range s.segments {
		k := jobKey + "/shared/" + n
		w.ensure(k, 2*s.size)
		for i := range 2 {
			keyed.InputChannelState = append(keyed.InputChannelState, &flink.ChannelStateHandle{
				SubtaskIndex: 0, Offsets: []int64{0}, Size: int64(s.size),
				Delegate: &flink.SegmentFileHandle{StartPos: int64(i * s.size), Size: int64(s.size), Scope: flink.ScopeShared,
					PhysicalPath: w.uri(k), LogicalFileID: fmt.Sprintf("%s-%d", n, i)},
			})
		}
	}
	return &flink.Metadata{
		Version: 5, CheckpointID: s.id, MasterStates: []flink.MasterState{}, Trailer: javaTrailer,
		Operators: []*flink.OperatorState{
			{ID: flink.NewOperatorID(1, 2), Name: "Source: test", UID: "source", Parallelism: 1, MaxParallelism: 128,
				Subtasks: []*flink.SubtaskState{{Index: 0, ManagedOperatorState: &flink.OperatorStateHandle{
					States:   []flink.OperatorStateInfo{{Name: "offsets", Mode: flink.Union, Offsets: []int64{0}}},
					Delegate: &flink.ByteStreamHandle{Name: "inline", Data: []byte("offset=42")},
				}}}},
			{ID: flink.NewOperatorID(3, 4), Name: "Window", UID: "window", Parallelism: 1, MaxParallelism: 128,
				Subtasks: []*flink.SubtaskState{keyed}},
		},
	}
}

// checkpoint writes the files of s and then its _metadata.
func (w *world) checkpoint(s spec) []byte {
	w.t.Helper()
	data, err := w.metadataFor(s).Encode()
	if err != nil {
		w.t.Fatal(err)
	}
	w.put(w.key(s.job)+"/"+flinkjob.CheckpointDirName(s.id)+"/_metadata", data)
	return data
}

// ls lists every object under the location prefix rel, one per line,
// relative to the location.
func (w *world) ls(rel string) string {
	prefix := w.key(rel)
	if rel != "" {
		prefix += "/"
	}
	var keys []string
	it := w.loc.Bucket.List(&blob.ListOptions{Prefix: prefix})
	for {
		o, err := it.Next(w.ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			w.t.Fatal(err)
		}
		keys = append(keys, w.rel(o.Key))
	}
	sort.Strings(keys)
	return strings.Join(keys, "\n")
}
