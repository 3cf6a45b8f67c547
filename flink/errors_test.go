package flink

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// corpus returns the hand-made vectors and the generated fixtures.
func corpus(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, v := range handmade {
		data, _ := v.build()
		out["handmade-"+v.name] = data
	}
	for _, c := range generatedCases() {
		data, err := os.ReadFile(filepath.Join(generatedDir, c.name, "_metadata"))
		if err != nil {
			t.Fatal(err)
		}
		out[c.name] = data
	}
	return out
}

// checkDecodeError asserts that err is a *DecodeError of the given class,
// prefixed "flink: " and naming its offset.
func checkDecodeError(t *testing.T, err error, kind error) *DecodeError {
	t.Helper()
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *DecodeError", err, err)
	}
	if kind != nil && !errors.Is(err, kind) {
		t.Fatalf("error %q is not %v", err, kind)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "flink: ") || !strings.Contains(msg, fmt.Sprintf("offset %d", de.Offset)) {
		t.Fatalf("error %q does not name offset %d", msg, de.Offset)
	}
	return de
}

func TestTruncatedEverywhere(t *testing.T) {
	files := corpus(t)
	if os.Getenv(fixturesEnv) != "" {
		for _, f := range sharedFixtures(t) {
			files[f.name] = f.data
		}
	}
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			m, err := Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			// Truncation inside the opaque trailer cannot be detected
			// past its 4-byte Java serialization header.
			limit := len(data)
			if m.Version >= 4 {
				limit = len(data) - len(m.Trailer) + 4
			}
			for n := range limit {
				_, err := Decode(data[:n])
				if err == nil {
					t.Fatalf("Decode of the first %d bytes succeeded", n)
				}
				de := checkDecodeError(t, err, nil)
				if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrLimit) {
					t.Fatalf("truncated at %d: unexpected error class: %v", n, err)
				}
				if de.Offset > n {
					t.Fatalf("truncated at %d: error offset %d beyond the end", n, de.Offset)
				}
				if errors.Is(err, ErrTruncated) && !strings.Contains(err.Error(), "unexpected end of data at offset") {
					t.Fatalf("truncated at %d: message %q", n, err)
				}
			}
		})
	}
}

func TestHeaderErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		data []byte
		kind error
		msg  string
	}{
		{"empty", nil, ErrTruncated, "flink: unexpected end of data at offset 0 reading magic number"},
		{"short magic", []byte{0x49, 0x60}, ErrTruncated, "flink: unexpected end of data at offset 0 reading magic number"},
		{"bad magic", []byte("PK\x03\x04\x00\x00\x00\x02"), ErrNotMetadata,
			"flink: not a checkpoint metadata file: magic 0x504b0304 at offset 0, want 0x4960672d"},
		{"no version", []byte{0x49, 0x60, 0x67, 0x2d, 0}, ErrTruncated, "flink: unexpected end of data at offset 4 reading version"},
		{"version 0", (&hb{}).header(0, 1).b, ErrUnsupportedVersion, "flink: unsupported metadata version 0 at offset 4 (supported: 2 to 6)"},
		{"version 1", (&hb{}).header(1, 1).b, ErrUnsupportedVersion, "flink: unsupported metadata version 1 at offset 4 (supported: 2 to 6)"},
		{"version 7", (&hb{}).header(7, 1).b, ErrUnsupportedVersion, "flink: unsupported metadata version 7 at offset 4 (supported: 2 to 6)"},
		{"version -1", (&hb{}).header(-1, 1).b, ErrUnsupportedVersion, "flink: unsupported metadata version -1 at offset 4 (supported: 2 to 6)"},
		{"negative checkpoint", (&hb{}).header(3, -5).i32(0).i32(0).b, ErrInvalid, "flink: negative checkpoint id -5 at offset 8"},
		{"absurd operators", (&hb{}).header(2, 1).i32(0).i32(0x7fffffff).b, ErrLimit,
			"flink: operator count 2147483647 at offset 20 exceeds what the remaining 0 bytes can hold"},
		{"absurd masters", (&hb{}).header(2, 1).i32(0x7fffffff).raw(make([]byte, 16)...).b, ErrLimit,
			"flink: master state count 2147483647 at offset 16 exceeds what the remaining 16 bytes can hold"},
		{"negative operators", (&hb{}).header(3, 1).i32(0).i32(-1).b, ErrInvalid, "flink: negative operator count -1 at offset 20"},
		{"bad master magic", (&hb{}).header(3, 1).i32(1).u32(0xdeadbeef).i32(1).raw(0).i32(0).b, ErrInvalid,
			"flink: bad master state magic number 0xdeadbeef at offset 20"},
		{"empty master", (&hb{}).header(3, 1).i32(1).u32(MasterStateMagic).i32(0).i32(0).b, ErrInvalid,
			"flink: empty master state at offset 24"},
		{"absurd master length", (&hb{}).header(3, 1).i32(1).u32(MasterStateMagic).i32(0x7fffffff).i32(0).b, ErrTruncated,
			"flink: unexpected end of data at offset 28 reading master state"},
		{"v4 without trailer", (&hb{}).header(4, 1).i32(0).i32(0).b, ErrTruncated,
			"flink: unexpected end of data at offset 24 reading checkpoint properties (Java serialization header)"},
		{"v4 bad trailer", (&hb{}).header(4, 1).i32(0).i32(0).raw(1, 2, 3, 4).b, ErrInvalid,
			"flink: checkpoint properties at offset 24 do not start with the Java serialization header AC ED 00 05"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(c.data)
			checkDecodeError(t, err, c.kind)
			if err.Error() != c.msg {
				t.Fatalf("error\n %q\nwant\n %q", err, c.msg)
			}
		})
	}
}

// patch returns a copy of data with the bytes at off replaced.
func patch(data []byte, off int, b ...byte) []byte {
	out := bytes.Clone(data)
	copy(out[off:], b)
	return out
}

// subtaskV2 assembles a version 2 file with one operator and one subtask
// whose body (after index, duration and legacy count) is body.
func subtaskV2(body ...byte) []byte {
	return (&hb{}).header(2, 1).i32(0).i32(1).raw(opID(1, 2).b...).i32(1).i32(1).i32(1).
		i32(1).i32(0).i64(-1).i32(0).raw(body...).b
}

// subtaskV6 does the same for version 6, with an empty name and uid, no
// coordinator state, and the trailer header after the body.
func subtaskV6(body ...byte) []byte {
	return (&hb{}).header(6, 1).i32(0).i32(1).str("").str("").raw(opID(1, 2).b...).i32(1).i32(1).i8(0).
		i32(1).i32(0).raw(body...).raw(0xAC, 0xED, 0, 5).b
}

// subtask bodies start at this offset in subtaskV2 and subtaskV6 files.
const (
	bodyV2 = 16 + 4 + 4 + 16 + 4 + 4 + 4 + 4 + 4 + 8 + 4
	bodyV6 = 16 + 4 + 4 + 2 + 2 + 16 + 4 + 4 + 1 + 4 + 4
)

func TestBodyErrors(t *testing.T) {
	none := []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0} // no operator state, no keyed state
	pad := make([]byte, 32)                      // so that counts are not rejected as too large first
	kgFile := (&hb{}).i8(3).i32(0).i32(1).i64(0).i8(2).i64(5).str("f").b
	for _, c := range []struct {
		name string
		data []byte
		kind error
		msg  string
	}{
		{"ok v2", subtaskV2(none...), nil, ""},
		{"ok v6", subtaskV6(append(none, 0, 0, 0, 0, 0, 0, 0, 0)...), nil, ""},
		{"unknown keyed tag", subtaskV2(0, 0, 0, 0, 0, 0, 0, 0, 42, 0), ErrUnknownTag,
			fmt.Sprintf("flink: unknown keyed state handle tag 42 at offset %d (managed keyed state handle)", bodyV2+8)},
		{"unknown raw keyed tag", subtaskV2(0, 0, 0, 0, 0, 0, 0, 0, 0, 18), ErrUnknownTag,
			fmt.Sprintf("flink: unknown keyed state handle tag 18 at offset %d (raw keyed state handle)", bodyV2+9)},
		{"unknown operator tag", subtaskV2(append([]byte{0, 0, 0, 1, 5}, pad...)...), ErrUnknownTag,
			fmt.Sprintf("flink: unknown operator state handle tag 5 at offset %d", bodyV2+4)},
		{"unknown stream tag", subtaskV2(append([]byte{0, 0, 0, 0, 0, 0, 0, 0}, patch(kgFile, 17, 99)...)...), ErrUnknownTag,
			fmt.Sprintf("flink: unknown stream state handle tag 99 at offset %d (key group handle delegate)", bodyV2+8+17)},
		{"keyed tag as stream", subtaskV2(append([]byte{0, 0, 0, 0, 0, 0, 0, 0}, patch(kgFile, 17, 12)...)...), ErrUnknownTag,
			fmt.Sprintf("flink: unknown stream state handle tag 12 at offset %d (key group handle delegate)", bodyV2+8+17)},
		{"flag 2", subtaskV2(append([]byte{0, 0, 0, 2}, pad...)...), ErrInvalid,
			fmt.Sprintf("flink: invalid managed operator state flag 2 at offset %d (Flink writes 0 or 1)", bodyV2)},
		{"present but null", subtaskV2(append([]byte{0, 0, 0, 1, 0}, pad...)...), ErrInvalid,
			fmt.Sprintf("flink: null managed operator state handle announced as present at offset %d", bodyV2+4)},
		{"bad mode", subtaskV2(append([]byte{0, 0, 0, 1, 4, 0, 0, 0, 1, 0, 1, 'x', 3}, make([]byte, 20)...)...), ErrInvalid,
			fmt.Sprintf("flink: invalid operator state distribution mode 3 at offset %d", bodyV2+12)},
		{"absurd key groups", subtaskV2(0, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0, 0, 0, 0x10, 0, 0, 0, 1, 2), ErrLimit,
			fmt.Sprintf("flink: key group count 268435456 at offset %d exceeds what the remaining 2 bytes can hold", bodyV2+13)},
		{"negative key groups", subtaskV2(0, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff), ErrInvalid,
			fmt.Sprintf("flink: negative key group count -1 at offset %d", bodyV2+13)},
		{"absurd string", subtaskV2(append([]byte{0, 0, 0, 0, 0, 0, 0, 0}, (&hb{}).i8(11).i64(1).raw(0xff, 0xff, 'a').b...)...), ErrTruncated,
			fmt.Sprintf("flink: unexpected end of data at offset %d reading incremental handle backend id", bodyV2+8+11)},
		{"raw nul in string", subtaskV2(append([]byte{0, 0, 0, 0, 0, 0, 0, 0}, (&hb{}).i8(11).i64(1).raw(0, 2, 'a', 0).b...)...), ErrInvalid,
			fmt.Sprintf("flink: raw NUL byte (writeUTF encodes U+0000 as C0 80) in incremental handle backend id at offset %d", bodyV2+8+12)},
		{"bad segment scope", subtaskV2(append([]byte{0, 0, 0, 1, 4, 0, 0, 0, 0}, (&hb{}).i8(15).i64(0).i64(1).i32(2).b...)...), ErrInvalid,
			fmt.Sprintf("flink: invalid segment file scope 2 at offset %d", bodyV2+9+17)},
		{"file merging without segment", subtaskV2(append([]byte{0, 0, 0, 1, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0}, (&hb{}).i8(2).i64(1).str("f").b...)...), ErrInvalid,
			fmt.Sprintf("flink: file-merging operator state handle at offset %d has no segment file delegate", bodyV2+14)},
		{"file merging bad boolean", subtaskV2(append([]byte{0, 0, 0, 1, 17, 0, 0, 0, 0, 0, 0, 0, 0, 7}, 16)...), ErrInvalid,
			fmt.Sprintf("flink: invalid boolean 7 in file-merging empty flag at offset %d", bodyV2+13)},
		{"changelog with wrong delta", subtaskV2(append([]byte{0, 0, 0, 0, 0, 0, 0, 0}, (&hb{}).i8(14).i32(0).i32(1).i64(0).i32(0).i32(1).raw(kgFile...).b...)...), ErrInvalid,
			fmt.Sprintf("flink: non-materialized changelog part at offset %d is a KeyGroupsStateHandle, not a changelog increment", bodyV2+8+25)},
		{"negative changes", subtaskV2(append([]byte{0, 0, 0, 0, 0, 0, 0, 0}, (&hb{}).i8(9).i32(0).i32(1).i64(0).i64(0).i32(-3).b...)...), ErrInvalid,
			fmt.Sprintf("flink: negative changelog change count -3 at offset %d", bodyV2+8+25)},
		{"negative byte array", subtaskV2(append([]byte{0, 0, 0, 0, 0, 0, 0, 0}, (&hb{}).i8(3).i32(0).i32(0).i8(1).str("").i32(-1).b...)...), ErrInvalid,
			fmt.Sprintf("flink: negative byte stream handle data length -1 at offset %d", bodyV2+8+12)},
		{"v6 unknown input tag", subtaskV6(append(append(none, 0, 0, 0, 1, 2), pad...)...), ErrUnknownTag,
			fmt.Sprintf("flink: unknown input channel state handle tag 2 at offset %d", bodyV6+14)},
		{"v6 unknown output tag", subtaskV6(append(append(none, 0, 0, 0, 0, 0, 0, 0, 1, 3), pad...)...), ErrUnknownTag,
			fmt.Sprintf("flink: unknown result subpartition state handle tag 3 at offset %d", bodyV6+18)},
		{"v6 absurd channels", subtaskV6(append(none, 0x7f, 0xff, 0xff, 0xff)...), ErrLimit,
			fmt.Sprintf("flink: input channel state handle count 2147483647 at offset %d exceeds what the remaining 4 bytes can hold", bodyV6+10)},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := Decode(c.data)
			if c.kind == nil {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				out, err := m.Encode()
				if err != nil || !bytes.Equal(out, c.data) {
					t.Fatalf("round trip: %v", err)
				}
				return
			}
			checkDecodeError(t, err, c.kind)
			if err.Error() != c.msg {
				t.Fatalf("error\n %q\nwant\n %q", err, c.msg)
			}
		})
	}
}

func TestOperatorErrors(t *testing.T) {
	v3 := func(coord []byte, n int32) []byte {
		return (&hb{}).header(3, 1).i32(0).i32(1).raw(opID(1, 2).b...).i32(1).i32(1).raw(coord...).i32(n).b
	}
	for _, c := range []struct {
		name string
		data []byte
		kind error
		msg  string
	}{
		{"coordinator is a file", v3((&hb{}).i8(2).i64(1).str("f").b, 0), ErrInvalid,
			"flink: operator coordinator state at offset 48 is a FileStateHandle, not inline bytes"},
		{"finished with coordinator", v3((&hb{}).i8(1).str("").i32(0).b, -1), ErrInvalid,
			"flink: fully finished operator 00000000000000010000000000000002 at offset 55 has coordinator state"},
		{"subtask count -2", v3([]byte{0}, -2), ErrInvalid, "flink: negative operator subtask count -2 at offset 49"},
		{"absurd subtasks", v3([]byte{0}, 1<<30), ErrLimit,
			"flink: operator subtask count 1073741824 at offset 49 exceeds what the remaining 0 bytes can hold"},
		{"v2 legacy states", (&hb{}).header(2, 1).i32(0).i32(1).raw(opID(1, 2).b...).i32(1).i32(1).i32(1).
			i32(1).i32(0).i64(-1).i32(1).raw(make([]byte, 16)...).b, ErrInvalid,
			"flink: subtask at offset 68 has 1 legacy states (Flink <= 1.1), which Flink no longer reads"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(c.data)
			checkDecodeError(t, err, c.kind)
			if err.Error() != c.msg {
				t.Fatalf("error\n %q\nwant\n %q", err, c.msg)
			}
		})
	}
}

func TestNestingBound(t *testing.T) {
	// Key-group handles used as stream handles, nested 100 deep.
	inner := (&hb{}).i8(0).b
	for range 100 {
		inner = append((&hb{}).i8(3).i32(0).i32(0).b, inner...)
	}
	data := subtaskV2(append([]byte{0, 0, 0, 0, 0, 0, 0, 0}, append(inner, 0)...)...)
	_, err := Decode(data)
	de := checkDecodeError(t, err, ErrLimit)
	if !strings.Contains(err.Error(), "nested deeper than 32 levels") {
		t.Fatalf("error %v", err)
	}
	if de.Offset > len(data) {
		t.Fatalf("offset %d", de.Offset)
	}
	// Changelog handles nested in changelog handles.
	var cl []byte
	for range 100 {
		cl = append(cl, (&hb{}).i8(8).i32(0).i32(1).i64(0).i32(1).b...)
	}
	_, err = Decode(subtaskV2(append([]byte{0, 0, 0, 0, 0, 0, 0, 0}, cl...)...))
	checkDecodeError(t, err, ErrLimit)

	// Nesting within the bound decodes and encodes.
	inner = (&hb{}).i8(0).b
	for range 31 {
		inner = append((&hb{}).i8(3).i32(0).i32(0).b, inner...)
	}
	data = subtaskV2(append([]byte{0, 0, 0, 0, 0, 0, 0, 0}, append(inner, 0)...)...)
	m, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := m.Encode(); err != nil || !bytes.Equal(out, data) {
		t.Fatalf("Encode: %v", err)
	}
}

func TestAbsurdCountsDoNotAllocate(t *testing.T) {
	inputs := [][]byte{
		(&hb{}).header(2, 1).i32(0).i32(0x7fffffff).b,
		(&hb{}).header(5, 1).i32(0x7fffffff).b,
		(&hb{}).header(6, 1).i32(0).i32(1).str("").str("").raw(opID(1, 2).b...).i32(1).i32(1).i8(0).i32(0x7fffffff).b,
		subtaskV2(0, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff),
		subtaskV2(append([]byte{0, 0, 0, 0, 0, 0, 0, 0}, (&hb{}).i8(3).i32(0).i32(0).i8(1).str("").i32(0x7fffffff).b...)...),
		subtaskV2(append([]byte{0, 0, 0, 0, 0, 0, 0, 0}, (&hb{}).i8(11).i64(1).str("").i32(0).i32(1).i64(0).i8(0).i32(0x7fffffff).b...)...),
	}
	for i, in := range inputs {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := Decode(in)
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Fatalf("input %d decoded", i)
		}
		if d := after.TotalAlloc - before.TotalAlloc; d > 64<<10 {
			t.Errorf("input %d (%d bytes): Decode allocated %d bytes before failing: %v", i, len(in), d, err)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	base := func() *Metadata { return allHandles(6) }
	for _, c := range []struct {
		name   string
		mutate func(m *Metadata)
	}{
		{"version 1", func(m *Metadata) { m.Version = 1 }},
		{"version 7", func(m *Metadata) { m.Version = 7 }},
		{"negative checkpoint", func(m *Metadata) { m.CheckpointID = -1 }},
		{"no trailer", func(m *Metadata) { m.Trailer = nil }},
		{"bad trailer", func(m *Metadata) { m.Trailer = []byte("junk") }},
		{"empty master state", func(m *Metadata) { m.MasterStates[0].Data = nil }},
		{"nil operator", func(m *Metadata) { m.Operators[0] = nil }},
		{"nil subtask", func(m *Metadata) { m.Operators[0].Subtasks[0] = nil }},
		{"name in v4", func(m *Metadata) { m.Version = 4 }},
		{"merged channel in v5", func(m *Metadata) {
			m.Version = 5
		}},
		{"long name", func(m *Metadata) { m.Operators[0].Name = strings.Repeat("x", 65536) }},
		{"invalid utf-8", func(m *Metadata) { m.Operators[0].UID = "\xff" }},
		{"split surrogate pair", func(m *Metadata) { m.Operators[0].UID = "\xed\xa0\xbd\xed\xb8\x80" }},
		{"finished with state", func(m *Metadata) { m.Operators[0].Subtasks[2].RawKeyedState = &ChangelogByteIncrementHandle{} }},
		{"finished negative", func(m *Metadata) { m.Operators[0].Subtasks[2].Index = -3 }},
		{"negative index", func(m *Metadata) { m.Operators[0].Subtasks[0].Index = -3 }},
		{"fully finished with subtasks", func(m *Metadata) { m.Operators[3].Subtasks = m.Operators[2].Subtasks }},
		{"fully finished with coordinator", func(m *Metadata) { m.Operators[3].CoordinatorState = &ByteStreamHandle{} }},
		{"legacy chain length in v6", func(m *Metadata) { m.Operators[0].LegacyChainLength = 1 }},
		{"duration in v6", func(m *Metadata) { m.Operators[0].Subtasks[0].V2Duration = -1 }},
		{"bad mode", func(m *Metadata) { m.Operators[0].Subtasks[0].ManagedOperatorState.States[0].Mode = 3 }},
		{"file merging over file", func(m *Metadata) {
			m.Operators[0].Subtasks[1].ManagedOperatorState.Delegate = &FileHandle{Path: "x"}
		}},
		{"dirs without file merging", func(m *Metadata) { m.Operators[0].Subtasks[0].ManagedOperatorState.SharedDir = "x" }},
		{"bad scope", func(m *Metadata) {
			m.Operators[0].Subtasks[1].ManagedOperatorState.Delegate.(*SegmentFileHandle).Scope = 5
		}},
		{"channel in wrong list", func(m *Metadata) { m.Operators[0].Subtasks[0].InputChannelState[0].Output = true }},
		{"nil channel", func(m *Metadata) { m.Operators[0].Subtasks[0].InputChannelState[0] = nil }},
		{"merged with offsets", func(m *Metadata) { m.Operators[0].Subtasks[1].InputChannelState[0].Offsets = []int64{1} }},
		{"unmerged with serialized offsets", func(m *Metadata) {
			m.Operators[0].Subtasks[0].InputChannelState[0].SerializedChannelOffsets = []byte{1}
		}},
		{"key group count mismatch", func(m *Metadata) { m.Operators[1].Subtasks[0].ManagedKeyedState.(*KeyGroupsHandle).Range.Count = 9 }},
		{"key group bad tag", func(m *Metadata) { m.Operators[1].Subtasks[0].ManagedKeyedState.(*KeyGroupsHandle).Tag = 11 }},
		{"legacy key group with id", func(m *Metadata) { m.Operators[1].Subtasks[0].ManagedKeyedState.(*KeyGroupsHandle).ID = "x" }},
		{"key groups v2 as stream", func(m *Metadata) {
			m.Operators[1].Subtasks[2].ManagedKeyedState.(*IncrementalHandle).Shared[2].Handle.(*KeyGroupsHandle).Tag = TagKeyGroupsV2
		}},
		{"incremental bad tag", func(m *Metadata) { m.Operators[1].Subtasks[1].RawKeyedState.(*IncrementalHandle).Tag = 3 }},
		{"legacy incremental with id", func(m *Metadata) { m.Operators[1].Subtasks[1].RawKeyedState.(*IncrementalHandle).ID = "x" }},
		{"changelog bad tag", func(m *Metadata) { m.Operators[1].Subtasks[2].RawKeyedState.(*ChangelogHandle).Tag = 9 }},
		{"legacy changelog with checkpoint", func(m *Metadata) {
			m.Operators[1].Subtasks[2].RawKeyedState.(*ChangelogHandle).CheckpointID = 1
		}},
		{"changelog wrong delta", func(m *Metadata) {
			cl := m.Operators[1].Subtasks[2].RawKeyedState.(*ChangelogHandle)
			cl.NonMaterialized[0] = &KeyGroupsHandle{Tag: TagKeyGroups}
		}},
		{"file increment bad tag", func(m *Metadata) {
			m.Operators[1].Subtasks[3].ManagedKeyedState.(*ChangelogHandle).NonMaterialized[0].(*ChangelogFileIncrementHandle).Tag = 3
		}},
		{"legacy file increment with storage", func(m *Metadata) {
			m.Operators[1].Subtasks[2].RawKeyedState.(*ChangelogHandle).NonMaterialized[1].(*ChangelogFileIncrementHandle).StorageIdentifier = "x"
		}},
		{"too deep", func(m *Metadata) {
			var h StreamHandle = &FileHandle{Path: "x"}
			for range 40 {
				h = &KeyGroupsHandle{Tag: TagKeyGroups, Delegate: h}
			}
			m.Operators[0].Subtasks[0].RawOperatorState.Delegate = h
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := base()
			c.mutate(m)
			out, err := m.Encode()
			if err == nil {
				t.Fatalf("Encode succeeded (%d bytes)", len(out))
			}
			if !strings.HasPrefix(err.Error(), "flink: ") {
				t.Fatalf("error %q lacks the flink: prefix", err)
			}
		})
	}
}

// TestAllocationAmplification decodes valid inputs made of the cheapest
// elements of each list (a finished subtask takes 4 bytes, a nil changelog
// part 1 byte, ...) and checks that Decode allocates at most 48 bytes per
// input byte, the bound doc.go promises.
func TestAllocationAmplification(t *testing.T) {
	const n = 20000
	repeat := func(b []byte, k int) []byte { return bytes.Repeat(b, k) }
	v2body := func(keyed []byte) []byte { return subtaskV2(append(make([]byte, 8), append(keyed, 0)...)...) }
	inputs := map[string][]byte{
		"finished subtasks": (&hb{}).header(3, 1).i32(0).i32(1).raw(opID(1, 2).b...).i32(1).i32(1).i8(0).
			i32(n).raw(repeat((&hb{}).i32(-1).b, n)...).b,
		"empty operators": (&hb{}).header(3, 1).i32(0).i32(n).
			raw(repeat((&hb{}).raw(opID(1, 2).b...).i32(1).i32(1).i8(0).i32(0).b, n)...).b,
		"nil changelog parts": v2body((&hb{}).i8(14).i32(0).i32(1).i64(0).i32(n).raw(make([]byte, n)...).
			i32(0).i64(0).i64(0).str("").b),
		"empty shared entries": v2body((&hb{}).i8(11).i64(1).str("").i32(0).i32(1).i64(0).i8(0).
			i32(n).raw(repeat([]byte{0, 0, 0}, n)...).i32(0).str("").b),
		"empty operator states": subtaskV2(append((&hb{}).i32(1).i8(4).i32(n).
			raw(repeat([]byte{0, 0, 0, 0, 0, 0, 0}, n)...).i8(0).i32(0).b, 0, 0)...),
		"nested empty key groups": v2body(append((&hb{}).i8(11).i64(1).str("").i32(0).i32(1).i64(0).i8(0).i32(n).b,
			append(repeat((&hb{}).str("").i8(3).i32(0).i32(0).i8(1).str("").i32(0).b, n), (&hb{}).i32(0).str("").b...)...)),
		"merged channels": (&hb{}).header(6, 1).i32(0).i32(1).str("").str("").raw(opID(1, 2).b...).i32(1).i32(1).i8(0).
			i32(1).i32(0).raw(make([]byte, 10)...).
			i32(n).raw(repeat((&hb{}).i8(3).i32(0).i64(0).i8(0).i32(0).b, n)...).i32(0).raw(0xAC, 0xED, 0, 5).b,
	}
	for name, in := range inputs {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m, err := Decode(in)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ratio := float64(after.TotalAlloc-before.TotalAlloc) / float64(len(in))
		t.Logf("%s: %d bytes in, %.1f bytes allocated per byte", name, len(in), ratio)
		if ratio > 48 {
			t.Errorf("%s: %.1f bytes allocated per input byte", name, ratio)
		}
		runtime.KeepAlive(m)
	}
}
