package flink

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// The generated fixtures under ../testdata/flink are written by this
// package's writer from the Metadata values built below, one per version,
// covering every handle type the version can hold. They are committed, so
// that a plain `go test ./...` exercises the codec without the real Flink
// fixtures. Regenerate them with
//
//	go test ./flink/ -run TestGeneratedFixtures -update
var update = flag.Bool("update", false, "rewrite the generated fixtures under ../testdata/flink")

const generatedDir = "../testdata/flink"

// javaTrailer is a stand-in for the Java-serialized CheckpointProperties
// of version 4+: a valid Java serialization stream (header, then
// TC_STRING), which this package keeps opaque.
var javaTrailer = append([]byte{0xAC, 0xED, 0x00, 0x05, 0x74, 0x00, 0x1E}, "ckpt generated: opaque trailer"...)

type generatedCase struct {
	name  string // directory under testdata/flink
	build func() *Metadata
}

func generatedCases() []generatedCase {
	var cases []generatedCase
	for v := int32(MinVersion); v <= MaxVersion; v++ {
		cases = append(cases, generatedCase{
			name:  fmt.Sprintf("v%d-generated-all-handles", v),
			build: func() *Metadata { return allHandles(v) },
		})
	}
	cases = append(cases, generatedCase{name: "v5-generated-incremental-absolute-shared", build: incrementalAbsolute})
	return cases
}

// Strings exercising modified UTF-8: U+0000, an emoji (a surrogate pair),
// two- and three-byte characters, and a lone surrogate (generalized UTF-8).
const (
	nameNULEmoji  = "Map\x00 😀 é€"
	loneSurrogate = "state-\xed\xa0\xbd-lone"
)

// allHandles builds a Metadata holding every handle type version v can
// hold.
func allHandles(v int32) *Metadata {
	m := &Metadata{Version: v, CheckpointID: 1000 + int64(v)}
	m.MasterStates = []MasterState{{Data: (&hb{}).i32(1).str("hook-\xc0\x80").i32(3).raw(1, 2, 3).b}}
	if v >= 4 {
		m.Trailer = javaTrailer
	}
	rel := func(p string, n int64) *FileHandle { return &FileHandle{Path: p, Size: n, Relative: true} }
	abs := func(p string, n int64) *FileHandle { return &FileHandle{Path: p, Size: n} }
	shared := "s3://bücket/ck/0123456789abcdef0123456789abcdef/shared/"

	// Operator 1: operator state of every kind, channel state.
	op1 := &OperatorState{ID: NewOperatorID(0x1f2b5df5a66154ac, -0x59e034d9e6c86d42), Parallelism: 3, MaxParallelism: 128}
	s0 := &SubtaskState{
		Index: 0,
		ManagedOperatorState: &OperatorStateHandle{
			States: []OperatorStateInfo{
				{Name: "split", Mode: SplitDistribute, Offsets: []int64{0, 17, 34}},
				{Name: "union", Mode: Union, Offsets: []int64{51}},
				{Name: "broadcast", Mode: Broadcast, Offsets: []int64{}},
				{Name: loneSurrogate, Mode: Union, Offsets: []int64{60}},
			},
			Delegate: rel("8f1e3c2a-opstate", 80),
		},
		RawOperatorState: &OperatorStateHandle{
			States:   []OperatorStateInfo{{Name: "raw", Mode: SplitDistribute, Offsets: []int64{0}}},
			Delegate: &ByteStreamHandle{Name: "raw-inline", Data: []byte("raw operator bytes")},
		},
	}
	op1.Subtasks = append(op1.Subtasks, s0)
	s1 := &SubtaskState{
		Index: 1,
		ManagedOperatorState: &OperatorStateHandle{
			FileMerging:  true,
			States:       []OperatorStateInfo{{Name: "merged", Mode: SplitDistribute, Offsets: []int64{0, 8}}},
			TaskOwnedDir: "s3://bücket/ck/0123456789abcdef0123456789abcdef/taskowned",
			SharedDir:    "s3://bücket/ck/0123456789abcdef0123456789abcdef/shared/op1",
			Delegate: &SegmentFileHandle{StartPos: 4096, Size: 16, Scope: ScopeExclusive,
				PhysicalPath: "s3://bücket/ck/0123456789abcdef0123456789abcdef/taskowned/merged-0", LogicalFileID: "lf-0"},
		},
		RawOperatorState: &OperatorStateHandle{
			FileMerging: true, Empty: true,
			States:       []OperatorStateInfo{},
			TaskOwnedDir: "s3://bücket/ck/0123456789abcdef0123456789abcdef/taskowned",
			SharedDir:    "s3://bücket/ck/0123456789abcdef0123456789abcdef/shared/op1",
			Delegate:     &EmptySegmentFileHandle{},
		},
	}
	op1.Subtasks = append(op1.Subtasks, s1)
	if v >= 3 {
		s0.InputChannelState = []*ChannelStateHandle{
			{SubtaskIndex: 0, GateOrPartition: 0, ChannelOrSubpartition: 1, Offsets: []int64{0, 128}, Size: 256,
				Delegate: rel("c1a5-unaligned-in", 512)},
			{SubtaskIndex: 0, GateOrPartition: 1, ChannelOrSubpartition: 0, Offsets: []int64{256}, Size: 256,
				Delegate: rel("c1a5-unaligned-in", 512)},
		}
		s0.ResultSubpartitionState = []*ChannelStateHandle{
			{Output: true, SubtaskIndex: 0, GateOrPartition: 2, ChannelOrSubpartition: 3, Offsets: []int64{0}, Size: 9,
				Delegate: &ByteStreamHandle{Name: "out-inline", Data: []byte("in flight")}},
		}
		if v >= 6 {
			s1.InputChannelState = []*ChannelStateHandle{
				{Merged: true, SubtaskIndex: 1, Size: 300, Delegate: rel("c1a6-merged-in", 300),
					SerializedChannelOffsets: []byte{0, 0, 0, 1, 0, 0, 0, 0}},
			}
			s1.ResultSubpartitionState = []*ChannelStateHandle{
				{Output: true, Merged: true, SubtaskIndex: 1, Size: 40,
					Delegate:                 abs("s3://bücket/ck/0123456789abcdef0123456789abcdef/chk-7/c1a6-merged-out", 40),
					SerializedChannelOffsets: []byte{9, 9}},
			}
		}
		// A finished subtask.
		op1.Subtasks = append(op1.Subtasks, &SubtaskState{Index: 2, Finished: true})
		op1.CoordinatorState = &ByteStreamHandle{Name: "coordinator", Data: []byte{0xAC, 0xED, 0, 5, 0x70}}
	} else {
		op1.LegacyChainLength = 1
		for _, s := range op1.Subtasks {
			s.V2Duration = -1
		}
	}
	if v >= 5 {
		op1.Name, op1.UID = nameNULEmoji, "uid-😀"
	}

	// Operator 2: keyed state of every kind.
	op2 := &OperatorState{ID: NewOperatorID(-1, 1), Parallelism: 4, MaxParallelism: 4}
	if v >= 5 {
		op2.Name = "Keyed Aggregate"
	}
	kg := func(tag byte, start int32, offs []int64, d StreamHandle, id string) *KeyGroupsHandle {
		return &KeyGroupsHandle{Tag: tag, Range: KeyGroupRange{start, int32(len(offs))}, Offsets: offs, Delegate: d, ID: id}
	}
	keyed := []KeyedHandle{
		kg(TagKeyGroups, 0, []int64{0}, &ByteStreamHandle{Name: "kg-inline", Data: []byte{1, 2, 3, 4}}, ""),
		kg(TagKeyGroupsV2, 1, []int64{0, 10}, rel("5d2c-keygroups", 20), "kg-v2-id"),
		kg(TagSavepointKeyGroups, 3, []int64{}, abs("hdfs://nn:8020/savepoints/sp-1/kg", 0), ""),
		&IncrementalHandle{
			Tag: TagIncremental, CheckpointID: 5, BackendID: "b9c2e0d4-7a3e-4c8e-9a8f-3d2c1b0a9f8e", Range: KeyGroupRange{0, 1},
			Meta:    rel("meta-legacy", 100),
			Shared:  []HandleAndLocalPath{{LocalPath: "000007.sst", Handle: abs(shared+"legacy-sst", 1000)}},
			Private: []HandleAndLocalPath{{LocalPath: "CURRENT", Handle: &ByteStreamHandle{Name: "current", Data: []byte("MANIFEST-000004\n")}}},
		},
		&IncrementalHandle{
			Tag: TagIncrementalV2, CheckpointID: 6, BackendID: "b9c2e0d4-7a3e-4c8e-9a8f-3d2c1b0a9f8e", Range: KeyGroupRange{1, 1},
			CheckpointedSize: 1234,
			Meta:             rel("meta-v2", 120),
			Shared: []HandleAndLocalPath{
				{LocalPath: "000010.sst", Handle: abs(shared+"sst-10", 2000)},
				{LocalPath: "000011.sst", Handle: &SegmentFileHandle{StartPos: 0, Size: 300, Scope: ScopeShared,
					PhysicalPath: shared + "merged-7", LogicalFileID: "lf-7"}},
				{LocalPath: "000012.sst", Handle: kg(TagKeyGroups, 1, []int64{5}, abs(shared+"nested-kg", 55), "")},
			},
			Private: []HandleAndLocalPath{
				{LocalPath: "MANIFEST-000004", Handle: rel("manifest", 90)},
				{LocalPath: "OPTIONS-000009", Handle: nil},
			},
			ID: "inc-v2-id",
		},
		&ChangelogHandle{
			Tag: TagChangelog, Range: KeyGroupRange{2, 1}, CheckpointedSize: 77,
			Materialized: []KeyedHandle{kg(TagKeyGroupsV2, 2, []int64{0}, rel("mat-kg", 30), "mat-id"), nil},
			NonMaterialized: []KeyedHandle{
				&ChangelogByteIncrementHandle{Range: KeyGroupRange{2, 1}, From: 1, To: 3,
					Changes: []StateChange{{KeyGroup: -1, Data: []byte("meta")}, {KeyGroup: 2, Data: []byte{}}}, ID: "bi-1"},
				&ChangelogFileIncrementHandle{Tag: TagChangelogFileIncrement, Range: KeyGroupRange{2, 1},
					Handles: []OffsetHandle{{Offset: 0, Handle: abs("s3://bücket/changelog/dstl-1", 64)}},
					Size:    64, CheckpointedSize: 64, ID: "fi-legacy"},
			},
			MaterializationID: 4, ID: "cl-legacy",
		},
		&ChangelogHandle{
			Tag: TagChangelogV2, Range: KeyGroupRange{3, 1}, CheckpointedSize: 88,
			Materialized: []KeyedHandle{
				&IncrementalHandle{Tag: TagIncrementalV2, CheckpointID: 3, BackendID: "b2", Range: KeyGroupRange{3, 1},
					Meta:   rel("cl-meta", 10),
					Shared: []HandleAndLocalPath{{LocalPath: "000003.sst", Handle: abs(shared+"cl-sst-3", 300)}},
					ID:     "cl-inc"},
			},
			NonMaterialized: []KeyedHandle{
				&ChangelogFileIncrementHandle{Tag: TagChangelogFileIncrementV2, Range: KeyGroupRange{3, 1},
					Handles: []OffsetHandle{
						{Offset: 0, Handle: abs("s3://bücket/changelog/dstl-2", 128)},
						{Offset: 64, Handle: abs("s3://bücket/changelog/dstl-2", 128)},
					},
					Size: 128, CheckpointedSize: 100, ID: "fi-v2", StorageIdentifier: "filesystem"},
				nil,
			},
			MaterializationID: 5, CheckpointID: 1000 + int64(v), ID: "cl-v2",
		},
	}
	for i := 0; i < len(keyed); i += 2 {
		s := &SubtaskState{Index: int32(i / 2), ManagedKeyedState: keyed[i]}
		if i+1 < len(keyed) {
			s.RawKeyedState = keyed[i+1]
		}
		if v == 2 {
			s.V2Duration = -1
		}
		op2.Subtasks = append(op2.Subtasks, s)
	}
	m.Operators = []*OperatorState{op1, op2}

	// Operator 3: an empty subtask; from version 3 on a fully finished
	// operator follows.
	op3 := &OperatorState{ID: NewOperatorID(3, 3), Parallelism: 1, MaxParallelism: 1,
		Subtasks: []*SubtaskState{{Index: 0}}}
	if v == 2 {
		op2.LegacyChainLength, op3.LegacyChainLength = 1, 1
		op3.Subtasks[0].V2Duration = -1
	}
	if v >= 5 {
		op3.UID = "sink-uid"
	}
	m.Operators = append(m.Operators, op3)
	if v >= 3 {
		op4 := &OperatorState{ID: NewOperatorID(4, 4), Parallelism: 2, MaxParallelism: 2, FullyFinished: true}
		if v >= 5 {
			op4.Name, op4.UID = "Source: finished", "src"
		}
		m.Operators = append(m.Operators, op4)
	}
	return m
}

// incrementalAbsolute builds a version-5 RocksDB incremental checkpoint
// (chk-7) whose shared files are absolute FileStateHandles under the job's
// shared/ directory, its private files and metadata relative, as Flink
// writes them: the input of the relocation test.
func incrementalAbsolute() *Metadata {
	const job = "s3://bucket/ck/5f0c1e9a3b7d4e2f8a6c9b1d0e3f2a4c/"
	m := &Metadata{Version: 5, CheckpointID: 7, MasterStates: []MasterState{}, Trailer: javaTrailer}
	src := &OperatorState{Name: "Source: Kafka", UID: "source", ID: NewOperatorID(11, 12), Parallelism: 1, MaxParallelism: 2,
		Subtasks: []*SubtaskState{{
			ManagedOperatorState: &OperatorStateHandle{
				States:   []OperatorStateInfo{{Name: "offsets", Mode: Union, Offsets: []int64{0}}},
				Delegate: &ByteStreamHandle{Name: job + "chk-7/op-src", Data: []byte("offsets")},
			},
		}}}
	agg := &OperatorState{Name: "Window(Tumbling)", UID: "window", ID: NewOperatorID(21, 22), Parallelism: 2, MaxParallelism: 2}
	for i := int32(0); i < 2; i++ {
		sst := func(n int) string { return fmt.Sprintf("%sshared/%08x-%d-%d", job, 0xdeadbeef+int(i), n, i) }
		agg.Subtasks = append(agg.Subtasks, &SubtaskState{
			Index: i,
			ManagedKeyedState: &IncrementalHandle{
				Tag: TagIncrementalV2, CheckpointID: 7, BackendID: fmt.Sprintf("backend-%d", i), Range: KeyGroupRange{i, 1},
				CheckpointedSize: 4000,
				Meta:             &FileHandle{Path: fmt.Sprintf("meta-%d", i), Size: 300, Relative: true},
				Shared: []HandleAndLocalPath{
					{LocalPath: "000008.sst", Handle: &FileHandle{Path: sst(8), Size: 1500 + int64(i)}},
					{LocalPath: "000012.sst", Handle: &FileHandle{Path: sst(12), Size: 2500 + int64(i)}},
				},
				Private: []HandleAndLocalPath{
					{LocalPath: "MANIFEST-000005", Handle: &FileHandle{Path: fmt.Sprintf("manifest-%d", i), Size: 200, Relative: true}},
					{LocalPath: "CURRENT", Handle: &ByteStreamHandle{Name: "current", Data: []byte("MANIFEST-000005\n")}},
				},
				ID: fmt.Sprintf("handle-%d", i),
			},
			InputChannelState: []*ChannelStateHandle{{SubtaskIndex: i, Offsets: []int64{0}, Size: 10,
				Delegate: &FileHandle{Path: job + "chk-7/unaligned", Size: 20}}},
		})
	}
	m.Operators = []*OperatorState{src, agg}
	return m
}

func TestGeneratedFixtures(t *testing.T) {
	for _, c := range generatedCases() {
		t.Run(c.name, func(t *testing.T) {
			built := c.build()
			data, err := built.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			path := filepath.Join(generatedDir, c.name, "_metadata")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			file, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run: go test ./flink/ -run TestGeneratedFixtures -update)", err)
			}
			if !bytes.Equal(file, data) {
				t.Fatalf("%s is stale: the writer now produces different bytes (first difference at %d); "+
					"if intended, run: go test ./flink/ -run TestGeneratedFixtures -update", path, firstDiff(file, data))
			}
			m, err := Decode(file)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			out, err := m.Encode()
			if err != nil {
				t.Fatalf("re-Encode: %v", err)
			}
			if !bytes.Equal(out, file) {
				t.Fatalf("re-encoded file differs at byte %d", firstDiff(out, file))
			}
			m2, err := Decode(out)
			if err != nil || !reflect.DeepEqual(m, m2) {
				t.Fatalf("Decode(Encode(m)) differs from m (%v)", err)
			}
			if !sameShape(built, m) {
				t.Fatalf("decoded Metadata differs from the one built:\n got %s\nwant %s", dump(m), dump(built))
			}
		})
	}
}

// sameShape compares a built Metadata with a decoded one, treating nil and
// empty slices alike (the decoder always allocates).
func sameShape(a, b *Metadata) bool {
	return reflect.DeepEqual(normalize(reflect.ValueOf(a)).Interface(), normalize(reflect.ValueOf(b)).Interface())
}

// normalize returns a deep copy of v with every empty slice set to nil.
func normalize(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(normalize(v.Elem()))
		return p
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		n := reflect.New(v.Type()).Elem()
		n.Set(normalize(v.Elem()))
		return n
	case reflect.Struct:
		n := reflect.New(v.Type()).Elem()
		for i := range v.NumField() {
			if n.Field(i).CanSet() {
				n.Field(i).Set(normalize(v.Field(i)))
			}
		}
		return n
	case reflect.Slice:
		if v.Len() == 0 {
			return reflect.Zero(v.Type())
		}
		n := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			n.Index(i).Set(normalize(v.Index(i)))
		}
		return n
	}
	return v
}

func TestGeneratedFacts(t *testing.T) {
	for v := int32(MinVersion); v <= MaxVersion; v++ {
		name := fmt.Sprintf("v%d-generated-all-handles", v)
		data, err := os.ReadFile(filepath.Join(generatedDir, name, "_metadata"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := Decode(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.Version != v || m.CheckpointID != 1000+int64(v) {
			t.Errorf("%s: version %d checkpoint %d", name, m.Version, m.CheckpointID)
		}
		s := m.Summary()
		wantOps, wantFinished := 3, 0
		if v >= 3 {
			wantOps, wantFinished = 4, 1
		}
		if s.Operators != wantOps || s.FinishedSubtasks != wantFinished {
			t.Errorf("%s: %d operators, %d finished subtasks", name, s.Operators, s.FinishedSubtasks)
		}
		kinds := []HandleKind{KindByteStream, KindFile, KindRelativeFile, KindSegmentFile, KindEmptySegmentFile,
			KindKeyGroups, KindSavepointKeyGroups, KindIncremental, KindChangelog, KindChangelogByteIncrement,
			KindChangelogFileIncrement, KindOperatorStream, KindFileMergingOperatorStream}
		if v >= 3 {
			kinds = append(kinds, KindInputChannel, KindResultSubpartition)
		}
		if v >= 6 {
			kinds = append(kinds, KindMergedInputChannel, KindMergedResultSubpartition)
		}
		for _, k := range kinds {
			if s.Handles[k] == 0 {
				t.Errorf("%s: no %s", name, k)
			}
		}
		if v >= 5 && (m.Operators[0].Name != nameNULEmoji || m.Operators[0].UID != "uid-😀") {
			t.Errorf("%s: operator name %q uid %q", name, m.Operators[0].Name, m.Operators[0].UID)
		}
		if v >= 5 && !bytes.Contains(data, []byte("Map\xc0\x80 \xed\xa0\xbd\xed\xb8\x80 \xc3\xa9\xe2\x82\xac")) {
			t.Errorf("%s: operator name not in modified UTF-8", name)
		}
		if got := m.Operators[0].Subtasks[0].ManagedOperatorState.States[3].Name; got != loneSurrogate {
			t.Errorf("%s: lone surrogate name %q", name, got)
		}
		if v >= 4 && !bytes.Equal(m.Trailer, javaTrailer) || v < 4 && m.Trailer != nil {
			t.Errorf("%s: trailer % x", name, m.Trailer)
		}
	}
}
