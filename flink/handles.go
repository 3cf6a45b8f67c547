package flink

import (
	"fmt"
)

// This file holds the state handles: the stream handles that say where
// bytes live (inline, in a file, in a segment of a merged file), the keyed
// handles of keyed state backends, operator state handles and the channel
// state handles of unaligned checkpoints, with their readers and writers.

// Handle tags as written in _metadata (MetadataV2V3SerializerBase).
const (
	TagNull                      byte = 0
	TagByteStream                byte = 1  // ByteStreamStateHandle
	TagFile                      byte = 2  // FileStateHandle
	TagKeyGroups                 byte = 3  // KeyGroupsStateHandle, legacy (no id); also usable as a stream handle
	TagOperatorStream            byte = 4  // OperatorStreamStateHandle
	TagIncremental               byte = 5  // IncrementalRemoteKeyedStateHandle, legacy
	TagRelativeFile              byte = 6  // RelativeFileStateHandle
	TagSavepointKeyGroups        byte = 7  // KeyGroupsSavepointStateHandle
	TagChangelog                 byte = 8  // ChangelogStateBackendHandle, legacy
	TagChangelogByteIncrement    byte = 9  // InMemoryChangelogStateHandle
	TagChangelogFileIncrement    byte = 10 // ChangelogStateHandleStreamImpl, legacy
	TagIncrementalV2             byte = 11 // IncrementalRemoteKeyedStateHandle
	TagKeyGroupsV2               byte = 12 // KeyGroupsStateHandle
	TagChangelogFileIncrementV2  byte = 13 // ChangelogStateHandleStreamImpl
	TagChangelogV2               byte = 14 // ChangelogStateBackendHandle
	TagSegmentFile               byte = 15 // SegmentFileStateHandle (file merging)
	TagEmptySegmentFile          byte = 16 // EmptySegmentFileStateHandle
	TagFileMergingOperatorStream byte = 17 // FileMergingOperatorStreamStateHandle
)

// Channel state handle tags, written before each channel handle from
// version 6 on (ChannelStateHandleSerializerV2).
const (
	ChannelTagInput        byte = 1 // InputChannelStateHandle
	ChannelTagOutput       byte = 2 // ResultSubpartitionStateHandle
	ChannelTagMergedInput  byte = 3 // MergedInputChannelStateHandle
	ChannelTagMergedOutput byte = 4 // MergedResultSubpartitionStateHandle
)

// HandleKind names the kind of a state handle. Its String method returns the
// name of the Flink class the handle stands for.
type HandleKind uint8

// Handle kinds.
const (
	KindByteStream                HandleKind = iota + 1 // ByteStreamStateHandle: bytes inline in _metadata
	KindFile                                            // FileStateHandle: absolute path
	KindRelativeFile                                    // RelativeFileStateHandle: path relative to the _metadata directory
	KindSegmentFile                                     // SegmentFileStateHandle: a segment of a merged file
	KindEmptySegmentFile                                // EmptySegmentFileStateHandle: placeholder, no file
	KindKeyGroups                                       // KeyGroupsStateHandle
	KindSavepointKeyGroups                              // KeyGroupsSavepointStateHandle
	KindIncremental                                     // IncrementalRemoteKeyedStateHandle
	KindChangelog                                       // ChangelogStateBackendHandle
	KindChangelogByteIncrement                          // InMemoryChangelogStateHandle
	KindChangelogFileIncrement                          // ChangelogStateHandleStreamImpl
	KindOperatorStream                                  // OperatorStreamStateHandle
	KindFileMergingOperatorStream                       // FileMergingOperatorStreamStateHandle
	KindInputChannel                                    // InputChannelStateHandle
	KindResultSubpartition                              // ResultSubpartitionStateHandle
	KindMergedInputChannel                              // MergedInputChannelStateHandle
	KindMergedResultSubpartition                        // MergedResultSubpartitionStateHandle
)

var kindNames = [...]string{
	KindByteStream:                "ByteStreamStateHandle",
	KindFile:                      "FileStateHandle",
	KindRelativeFile:              "RelativeFileStateHandle",
	KindSegmentFile:               "SegmentFileStateHandle",
	KindEmptySegmentFile:          "EmptySegmentFileStateHandle",
	KindKeyGroups:                 "KeyGroupsStateHandle",
	KindSavepointKeyGroups:        "KeyGroupsSavepointStateHandle",
	KindIncremental:               "IncrementalRemoteKeyedStateHandle",
	KindChangelog:                 "ChangelogStateBackendHandle",
	KindChangelogByteIncrement:    "InMemoryChangelogStateHandle",
	KindChangelogFileIncrement:    "ChangelogStateHandleStreamImpl",
	KindOperatorStream:            "OperatorStreamStateHandle",
	KindFileMergingOperatorStream: "FileMergingOperatorStreamStateHandle",
	KindInputChannel:              "InputChannelStateHandle",
	KindResultSubpartition:        "ResultSubpartitionStateHandle",
	KindMergedInputChannel:        "MergedInputChannelStateHandle",
	KindMergedResultSubpartition:  "MergedResultSubpartitionStateHandle",
}

// String returns the Flink class name of the kind.
func (k HandleKind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("HandleKind(%d)", uint8(k))
}

// Handle is any state handle. A nil Handle (or a nil pointer) stands for
// Flink's null handle, written as tag 0 where the format allows one.
type Handle interface {
	// Kind returns the kind of handle.
	Kind() HandleKind
	// StateSize returns the size Flink reports for the handle
	// (StateObject.getStateSize): the recorded size for file and segment
	// handles, the inline length for byte streams, the sum over the parts
	// for composite handles.
	StateSize() int64
	isHandle()
}

// StreamHandle is a StreamStateHandle: *ByteStreamHandle, *FileHandle,
// *SegmentFileHandle, *EmptySegmentFileHandle, or *KeyGroupsHandle with
// Tag TagKeyGroups.
type StreamHandle interface {
	Handle
	isStream()
}

// KeyedHandle is a KeyedStateHandle: *KeyGroupsHandle, *IncrementalHandle,
// *ChangelogHandle, *ChangelogByteIncrementHandle or
// *ChangelogFileIncrementHandle.
type KeyedHandle interface {
	Handle
	isKeyed()
}

// ByteStreamHandle is a ByteStreamStateHandle (tag 1): state stored inline in
// _metadata. Layout: utf name, i32 length, bytes.
type ByteStreamHandle struct {
	Name string
	Data []byte
}

// FileHandle is a FileStateHandle (tag 2, Relative false) or a
// RelativeFileStateHandle (tag 6, Relative true). The two are one Go type so
// that a path can be rewritten from absolute to relative and back in place:
// the tag and field order written follow Relative.
//
// Tag 2 layout: i64 size, utf path (an absolute URI such as
// s3://bucket/ck/<job>/shared/<uuid>). Tag 6 layout: utf relativePath, i64
// size; Flink resolves the relative path against the directory holding
// _metadata.
type FileHandle struct {
	Path     string
	Size     int64
	Relative bool
}

// SegmentScope is the CheckpointedStateScope of a segment file handle.
type SegmentScope int32

// Segment scopes.
const (
	ScopeExclusive SegmentScope = 0
	ScopeShared    SegmentScope = 1
)

// String returns "exclusive" or "shared".
func (s SegmentScope) String() string {
	switch s {
	case ScopeExclusive:
		return "exclusive"
	case ScopeShared:
		return "shared"
	}
	return fmt.Sprintf("SegmentScope(%d)", int32(s))
}

// SegmentFileHandle is a SegmentFileStateHandle (tag 15, file merging since
// Flink 1.20): Size bytes at StartPos of the physical file PhysicalPath,
// always an absolute path. Layout: i64 start, i64 size, i32 scope, utf
// physicalPath, utf logicalFileId.
type SegmentFileHandle struct {
	StartPos      int64
	Size          int64
	Scope         SegmentScope
	PhysicalPath  string
	LogicalFileID string
}

// EmptySegmentFileHandle is an EmptySegmentFileStateHandle (tag 16), a
// placeholder without a file. It has no fields.
type EmptySegmentFileHandle struct{}

// KeyGroupRange is a range of key groups as stored: first key group and
// number of key groups.
type KeyGroupRange struct {
	Start int32
	Count int32
}

// KeyGroupsHandle is a KeyGroupsStateHandle (tag 12, or legacy tag 3 without
// ID) or a KeyGroupsSavepointStateHandle (tag 7, without ID): the offset of
// each key group of Range in the stream Delegate. Layout: i32 start, i32
// count, i64 offset × count, StreamStateHandle, then utf id for tag 12.
//
// Flink also accepts a tag-3 handle where a stream handle is expected; such
// a handle is a StreamHandle too.
type KeyGroupsHandle struct {
	Tag      byte // TagKeyGroups, TagKeyGroupsV2 or TagSavepointKeyGroups
	Range    KeyGroupRange
	Offsets  []int64 // one per key group; len(Offsets) must equal Range.Count
	Delegate StreamHandle
	ID       string // tag 12 only
}

// HandleAndLocalPath is one file of an incremental handle: the handle of the
// uploaded copy and the name of the local file (a RocksDB file name such as
// 000010.sst, MANIFEST-000004, CURRENT, OPTIONS-000009; a StateHandleID in
// old files).
type HandleAndLocalPath struct {
	LocalPath string
	Handle    StreamHandle
}

// IncrementalHandle is an IncrementalRemoteKeyedStateHandle (tag 11, or
// legacy tag 5 without CheckpointedSize and ID), the handle of the RocksDB
// backend's incremental and native snapshots. (Flink's
// IncrementalLocalKeyedStateHandle, the task-local copy, is never written to
// _metadata.)
//
// Layout: i64 checkpointId, utf backendId, i32 start, i32 count, [tag 11: i64
// checkpointedSize], StreamStateHandle meta, shared list, private list, [tag
// 11: utf id]; a list is i32 n × (utf localPath, StreamStateHandle).
type IncrementalHandle struct {
	Tag              byte // TagIncremental or TagIncrementalV2
	CheckpointID     int64
	BackendID        string
	Range            KeyGroupRange
	CheckpointedSize int64 // tag 11 only
	Meta             StreamHandle
	Shared           []HandleAndLocalPath
	Private          []HandleAndLocalPath
	ID               string // tag 11 only
}

// ChangelogHandle is a ChangelogStateBackendHandle (tag 14, or legacy tag 8
// without CheckpointID) of the changelog state backend: the materialized
// keyed state plus the changelog written since. Layout: i32 start, i32
// count, i64 checkpointedSize, i32 n × KeyedStateHandle, i32 m ×
// KeyedStateHandle, i64 materializationId, [tag 14: i64 checkpointId], utf id.
type ChangelogHandle struct {
	Tag              byte // TagChangelog or TagChangelogV2
	Range            KeyGroupRange
	CheckpointedSize int64
	// Materialized holds any keyed handles; nil entries are kept (Flink
	// skips them when reading).
	Materialized []KeyedHandle
	// NonMaterialized holds *ChangelogByteIncrementHandle and
	// *ChangelogFileIncrementHandle values, or nil entries.
	NonMaterialized   []KeyedHandle
	MaterializationID int64
	CheckpointID      int64 // tag 14 only
	ID                string
}

// StateChange is one change of an in-memory changelog handle.
type StateChange struct {
	KeyGroup int32 // -1 (StateChange.META_KEY_GROUP) for metadata changes
	Data     []byte
}

// ChangelogByteIncrementHandle is an InMemoryChangelogStateHandle (tag 9):
// changelog entries stored inline. Layout: i32 start, i32 count, i64 from,
// i64 to, i32 n × (i32 keyGroup, i32 len, bytes), utf id.
type ChangelogByteIncrementHandle struct {
	Range   KeyGroupRange
	From    int64
	To      int64
	Changes []StateChange
	ID      string
}

// OffsetHandle is a stream handle with the offset of the changelog inside it.
type OffsetHandle struct {
	Offset int64
	Handle StreamHandle
}

// ChangelogFileIncrementHandle is a ChangelogStateHandleStreamImpl (tag 13,
// or legacy tag 10 without StorageIdentifier): changelog stored in files.
// Layout: i32 start, i32 count, i32 n × (i64 offset, StreamStateHandle), i64
// size, i64 checkpointedSize, utf id, [tag 13: utf storageIdentifier].
type ChangelogFileIncrementHandle struct {
	Tag               byte // TagChangelogFileIncrement or TagChangelogFileIncrementV2
	Range             KeyGroupRange
	Handles           []OffsetHandle
	Size              int64
	CheckpointedSize  int64
	ID                string
	StorageIdentifier string // tag 13 only
}

// DistributionMode is the redistribution mode of a named operator state.
type DistributionMode int8

// Distribution modes (OperatorStateHandle.Mode).
const (
	SplitDistribute DistributionMode = 0
	Union           DistributionMode = 1
	Broadcast       DistributionMode = 2
)

// String returns the Flink name of the mode.
func (m DistributionMode) String() string {
	switch m {
	case SplitDistribute:
		return "SPLIT_DISTRIBUTE"
	case Union:
		return "UNION"
	case Broadcast:
		return "BROADCAST"
	}
	return fmt.Sprintf("DistributionMode(%d)", int8(m))
}

// OperatorStateInfo is one named state of an operator state handle: its
// mode and the offsets of its partitions in the stream.
type OperatorStateInfo struct {
	Name    string
	Mode    DistributionMode
	Offsets []int64
}

// OperatorStateHandle is an OperatorStreamStateHandle (tag 4) or, with
// FileMerging set, a FileMergingOperatorStreamStateHandle (tag 17).
//
// Layout: i32 n × (utf name, i8 mode, i32 k, i64 offset × k), then for tag 17
// utf taskOwnedDir, utf sharedDir, bool isEmpty, then the StreamStateHandle
// (for tag 17 a segment handle, tag 15 or 16).
type OperatorStateHandle struct {
	FileMerging  bool
	States       []OperatorStateInfo // in file order
	TaskOwnedDir string              // tag 17 only
	SharedDir    string              // tag 17 only
	Empty        bool                // tag 17 only: EmptyFileMergingOperatorStreamStateHandle
	Delegate     StreamHandle
}

// ChannelStateHandle is the in-flight data of one input channel or result
// subpartition of an unaligned checkpoint.
//
// Unmerged (versions 3 to 6; tag 1 or 2 first in version 6): i32
// subtaskIndex, i32 GateOrPartition, i32 ChannelOrSubpartition, i32 n, i64
// offset × n, i64 size, StreamStateHandle. Merged (version 6, tag 3 or 4):
// i32 subtaskIndex, i64 size, StreamStateHandle, i32 n, bytes(n).
type ChannelStateHandle struct {
	// Output is false for input channel handles, true for result
	// subpartition handles; it must match the list holding the handle.
	Output bool
	// Merged marks a version-6 merged handle, which has
	// SerializedChannelOffsets instead of the channel info and offsets.
	Merged       bool
	SubtaskIndex int32
	// GateOrPartition and ChannelOrSubpartition are the InputChannelInfo
	// (gate index, input channel index) or the ResultSubpartitionInfo
	// (partition index, subpartition index). Unmerged handles only.
	GateOrPartition       int32
	ChannelOrSubpartition int32
	Offsets               []int64 // unmerged only
	Size                  int64
	Delegate              StreamHandle
	// SerializedChannelOffsets is opaque (merged only).
	SerializedChannelOffsets []byte
}

func (*ByteStreamHandle) isHandle()             {}
func (*FileHandle) isHandle()                   {}
func (*SegmentFileHandle) isHandle()            {}
func (*EmptySegmentFileHandle) isHandle()       {}
func (*KeyGroupsHandle) isHandle()              {}
func (*IncrementalHandle) isHandle()            {}
func (*ChangelogHandle) isHandle()              {}
func (*ChangelogByteIncrementHandle) isHandle() {}
func (*ChangelogFileIncrementHandle) isHandle() {}
func (*OperatorStateHandle) isHandle()          {}
func (*ChannelStateHandle) isHandle()           {}

func (*ByteStreamHandle) isStream()       {}
func (*FileHandle) isStream()             {}
func (*SegmentFileHandle) isStream()      {}
func (*EmptySegmentFileHandle) isStream() {}
func (*KeyGroupsHandle) isStream()        {}

func (*KeyGroupsHandle) isKeyed()              {}
func (*IncrementalHandle) isKeyed()            {}
func (*ChangelogHandle) isKeyed()              {}
func (*ChangelogByteIncrementHandle) isKeyed() {}
func (*ChangelogFileIncrementHandle) isKeyed() {}

// Kind implements Handle.
func (*ByteStreamHandle) Kind() HandleKind { return KindByteStream }

// Kind implements Handle: KindFile or KindRelativeFile.
func (h *FileHandle) Kind() HandleKind {
	if h.Relative {
		return KindRelativeFile
	}
	return KindFile
}

// Kind implements Handle.
func (*SegmentFileHandle) Kind() HandleKind { return KindSegmentFile }

// Kind implements Handle.
func (*EmptySegmentFileHandle) Kind() HandleKind { return KindEmptySegmentFile }

// Kind implements Handle: KindSavepointKeyGroups for tag 7, KindKeyGroups
// otherwise.
func (h *KeyGroupsHandle) Kind() HandleKind {
	if h.Tag == TagSavepointKeyGroups {
		return KindSavepointKeyGroups
	}
	return KindKeyGroups
}

// Kind implements Handle.
func (*IncrementalHandle) Kind() HandleKind { return KindIncremental }

// Kind implements Handle.
func (*ChangelogHandle) Kind() HandleKind { return KindChangelog }

// Kind implements Handle.
func (*ChangelogByteIncrementHandle) Kind() HandleKind { return KindChangelogByteIncrement }

// Kind implements Handle.
func (*ChangelogFileIncrementHandle) Kind() HandleKind { return KindChangelogFileIncrement }

// Kind implements Handle.
func (h *OperatorStateHandle) Kind() HandleKind {
	if h.FileMerging {
		return KindFileMergingOperatorStream
	}
	return KindOperatorStream
}

// Kind implements Handle.
func (h *ChannelStateHandle) Kind() HandleKind {
	switch {
	case h.Output && h.Merged:
		return KindMergedResultSubpartition
	case h.Output:
		return KindResultSubpartition
	case h.Merged:
		return KindMergedInputChannel
	}
	return KindInputChannel
}

// sizeOf returns the state size of a possibly nil handle.
func sizeOf(h Handle) int64 {
	if isNil(h) {
		return 0
	}
	return h.StateSize()
}

// isNil reports whether h is nil or a nil pointer.
func isNil(h Handle) bool {
	switch v := h.(type) {
	case nil:
		return true
	case *ByteStreamHandle:
		return v == nil
	case *FileHandle:
		return v == nil
	case *SegmentFileHandle:
		return v == nil
	case *EmptySegmentFileHandle:
		return v == nil
	case *KeyGroupsHandle:
		return v == nil
	case *IncrementalHandle:
		return v == nil
	case *ChangelogHandle:
		return v == nil
	case *ChangelogByteIncrementHandle:
		return v == nil
	case *ChangelogFileIncrementHandle:
		return v == nil
	case *OperatorStateHandle:
		return v == nil
	case *ChannelStateHandle:
		return v == nil
	}
	return false
}

// StateSize implements Handle: the inline length.
func (h *ByteStreamHandle) StateSize() int64 { return int64(len(h.Data)) }

// StateSize implements Handle: the recorded size.
func (h *FileHandle) StateSize() int64 { return h.Size }

// StateSize implements Handle: the segment length.
func (h *SegmentFileHandle) StateSize() int64 { return h.Size }

// StateSize implements Handle: 0.
func (*EmptySegmentFileHandle) StateSize() int64 { return 0 }

// StateSize implements Handle: the delegate's size.
func (h *KeyGroupsHandle) StateSize() int64 { return sizeOf(h.Delegate) }

// StateSize implements Handle: metadata plus shared plus private files.
func (h *IncrementalHandle) StateSize() int64 {
	n := sizeOf(h.Meta)
	for _, e := range h.Shared {
		n += sizeOf(e.Handle)
	}
	for _, e := range h.Private {
		n += sizeOf(e.Handle)
	}
	return n
}

// StateSize implements Handle: materialized plus non-materialized parts.
func (h *ChangelogHandle) StateSize() int64 {
	var n int64
	for _, k := range h.Materialized {
		n += sizeOf(k)
	}
	for _, k := range h.NonMaterialized {
		n += sizeOf(k)
	}
	return n
}

// StateSize implements Handle: the total length of the changes.
func (h *ChangelogByteIncrementHandle) StateSize() int64 {
	var n int64
	for _, c := range h.Changes {
		n += int64(len(c.Data))
	}
	return n
}

// StateSize implements Handle: the recorded size.
func (h *ChangelogFileIncrementHandle) StateSize() int64 { return h.Size }

// StateSize implements Handle: the delegate's size.
func (h *OperatorStateHandle) StateSize() int64 { return sizeOf(h.Delegate) }

// StateSize implements Handle: the recorded size.
func (h *ChannelStateHandle) StateSize() int64 { return h.Size }

// ---------------------------------------------------------------------------
// Reading

func readRange(r *reader, what string) (KeyGroupRange, error) {
	start, err := r.i32(what)
	if err != nil {
		return KeyGroupRange{}, err
	}
	n, err := r.i32(what)
	if err != nil {
		return KeyGroupRange{}, err
	}
	return KeyGroupRange{Start: start, Count: n}, nil
}

func readOffsets(r *reader, what string) ([]int64, error) {
	n, err := r.count(what, 8)
	if err != nil {
		return nil, err
	}
	return readLongs(r, n, what)
}

func readLongs(r *reader, n int, what string) ([]int64, error) {
	out := make([]int64, n)
	for i := range out {
		v, err := r.i64(what)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// readStream reads a StreamStateHandle; tag 0 gives nil.
func readStream(r *reader, what string) (StreamHandle, error) {
	off := r.off
	tag, err := r.u8(what)
	if err != nil {
		return nil, err
	}
	switch tag {
	case TagNull:
		return nil, nil
	case TagByteStream:
		h := &ByteStreamHandle{}
		if h.Name, err = r.utf("byte stream handle name"); err != nil {
			return nil, err
		}
		if h.Data, err = r.byteArray("byte stream handle data"); err != nil {
			return nil, err
		}
		return h, nil
	case TagFile:
		h := &FileHandle{}
		if h.Size, err = r.i64("file handle size"); err != nil {
			return nil, err
		}
		if h.Path, err = r.utf("file handle path"); err != nil {
			return nil, err
		}
		return h, nil
	case TagRelativeFile:
		h := &FileHandle{Relative: true}
		if h.Path, err = r.utf("relative file handle path"); err != nil {
			return nil, err
		}
		if h.Size, err = r.i64("relative file handle size"); err != nil {
			return nil, err
		}
		return h, nil
	case TagKeyGroups:
		if err := r.enter("key group handle"); err != nil {
			return nil, err
		}
		defer r.leave()
		return readKeyGroups(r, tag)
	case TagSegmentFile:
		h := &SegmentFileHandle{}
		if h.StartPos, err = r.i64("segment file handle start"); err != nil {
			return nil, err
		}
		if h.Size, err = r.i64("segment file handle size"); err != nil {
			return nil, err
		}
		soff := r.off
		scope, err := r.i32("segment file handle scope")
		if err != nil {
			return nil, err
		}
		if scope != int32(ScopeExclusive) && scope != int32(ScopeShared) {
			return nil, r.errAt(soff, ErrInvalid, "invalid segment file scope %d at offset %d", scope, soff)
		}
		h.Scope = SegmentScope(scope)
		if h.PhysicalPath, err = r.utf("segment file handle path"); err != nil {
			return nil, err
		}
		if h.LogicalFileID, err = r.utf("segment file handle logical file id"); err != nil {
			return nil, err
		}
		return h, nil
	case TagEmptySegmentFile:
		return &EmptySegmentFileHandle{}, nil
	}
	return nil, r.errAt(off, ErrUnknownTag, "unknown stream state handle tag %d at offset %d (%s)", tag, off, what)
}

func readKeyGroups(r *reader, tag byte) (*KeyGroupsHandle, error) {
	h := &KeyGroupsHandle{Tag: tag}
	var err error
	if h.Range, err = readRange(r, "key group handle key group range"); err != nil {
		return nil, err
	}
	if h.Range.Count < 0 {
		return nil, r.errAt(r.off-4, ErrInvalid, "negative key group count %d at offset %d", h.Range.Count, r.off-4)
	}
	if int64(h.Range.Count) > int64(r.remaining()/8) {
		return nil, r.errAt(r.off-4, ErrLimit, "key group count %d at offset %d exceeds what the remaining %d bytes can hold",
			h.Range.Count, r.off-4, r.remaining())
	}
	if h.Offsets, err = readLongs(r, int(h.Range.Count), "key group offset"); err != nil {
		return nil, err
	}
	if h.Delegate, err = readStream(r, "key group handle delegate"); err != nil {
		return nil, err
	}
	if tag == TagKeyGroupsV2 {
		if h.ID, err = r.utf("key group handle id"); err != nil {
			return nil, err
		}
	}
	return h, nil
}

func readHandleList(r *reader, shared bool) ([]HandleAndLocalPath, error) {
	countWhat, what := "incremental handle private state count", "incremental handle private state"
	if shared {
		countWhat, what = "incremental handle shared state count", "incremental handle shared state"
	}
	n, err := r.count(countWhat, 3)
	if err != nil {
		return nil, err
	}
	out := make([]HandleAndLocalPath, n)
	for i := range out {
		if out[i].LocalPath, err = r.utf(what); err != nil {
			return nil, err
		}
		if out[i].Handle, err = readStream(r, what); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readKeyed reads a KeyedStateHandle; tag 0 gives nil.
func readKeyed(r *reader, what string) (KeyedHandle, error) {
	off := r.off
	tag, err := r.u8(what)
	if err != nil {
		return nil, err
	}
	if tag == TagNull {
		return nil, nil
	}
	if err := r.enter("keyed state handle"); err != nil {
		return nil, err
	}
	defer r.leave()
	switch tag {
	case TagKeyGroups, TagKeyGroupsV2, TagSavepointKeyGroups:
		return readKeyGroups(r, tag)
	case TagIncremental, TagIncrementalV2:
		return readIncremental(r, tag)
	case TagChangelog, TagChangelogV2:
		return readChangelog(r, tag)
	case TagChangelogByteIncrement:
		return readByteIncrement(r)
	case TagChangelogFileIncrement, TagChangelogFileIncrementV2:
		return readFileIncrement(r, tag)
	}
	return nil, r.errAt(off, ErrUnknownTag, "unknown keyed state handle tag %d at offset %d (%s)", tag, off, what)
}

func readIncremental(r *reader, tag byte) (*IncrementalHandle, error) {
	h := &IncrementalHandle{Tag: tag}
	var err error
	if h.CheckpointID, err = r.i64("incremental handle checkpoint id"); err != nil {
		return nil, err
	}
	if h.BackendID, err = r.utf("incremental handle backend id"); err != nil {
		return nil, err
	}
	if h.Range, err = readRange(r, "incremental handle key group range"); err != nil {
		return nil, err
	}
	if tag == TagIncrementalV2 {
		if h.CheckpointedSize, err = r.i64("incremental handle checkpointed size"); err != nil {
			return nil, err
		}
	}
	if h.Meta, err = readStream(r, "incremental handle metadata"); err != nil {
		return nil, err
	}
	if h.Shared, err = readHandleList(r, true); err != nil {
		return nil, err
	}
	if h.Private, err = readHandleList(r, false); err != nil {
		return nil, err
	}
	if tag == TagIncrementalV2 {
		if h.ID, err = r.utf("incremental handle id"); err != nil {
			return nil, err
		}
	}
	return h, nil
}

func readChangelog(r *reader, tag byte) (*ChangelogHandle, error) {
	h := &ChangelogHandle{Tag: tag}
	var err error
	if h.Range, err = readRange(r, "changelog handle key group range"); err != nil {
		return nil, err
	}
	if h.CheckpointedSize, err = r.i64("changelog handle checkpointed size"); err != nil {
		return nil, err
	}
	n, err := r.count("changelog materialized handle count", 1)
	if err != nil {
		return nil, err
	}
	h.Materialized = make([]KeyedHandle, n)
	for i := range h.Materialized {
		if h.Materialized[i], err = readKeyed(r, "changelog materialized handle"); err != nil {
			return nil, err
		}
	}
	n, err = r.count("changelog non-materialized handle count", 1)
	if err != nil {
		return nil, err
	}
	h.NonMaterialized = make([]KeyedHandle, n)
	for i := range h.NonMaterialized {
		off := r.off
		k, err := readKeyed(r, "changelog non-materialized handle")
		if err != nil {
			return nil, err
		}
		if !isChangelogIncrement(k) {
			return nil, r.errAt(off, ErrInvalid, "non-materialized changelog part at offset %d is a %s, not a changelog increment",
				off, k.Kind())
		}
		h.NonMaterialized[i] = k
	}
	if h.MaterializationID, err = r.i64("changelog handle materialization id"); err != nil {
		return nil, err
	}
	if tag == TagChangelogV2 {
		if h.CheckpointID, err = r.i64("changelog handle checkpoint id"); err != nil {
			return nil, err
		}
	}
	if h.ID, err = r.utf("changelog handle id"); err != nil {
		return nil, err
	}
	return h, nil
}

// isChangelogIncrement reports whether k may sit in the non-materialized part
// of a changelog handle (Flink casts it to ChangelogStateHandle).
func isChangelogIncrement(k KeyedHandle) bool {
	switch k.(type) {
	case nil, *ChangelogByteIncrementHandle, *ChangelogFileIncrementHandle:
		return true
	}
	return isNil(k)
}

func readByteIncrement(r *reader) (*ChangelogByteIncrementHandle, error) {
	h := &ChangelogByteIncrementHandle{}
	var err error
	if h.Range, err = readRange(r, "changelog byte increment handle key group range"); err != nil {
		return nil, err
	}
	if h.From, err = r.i64("changelog byte increment handle from"); err != nil {
		return nil, err
	}
	if h.To, err = r.i64("changelog byte increment handle to"); err != nil {
		return nil, err
	}
	n, err := r.count("changelog change count", 8)
	if err != nil {
		return nil, err
	}
	h.Changes = make([]StateChange, n)
	for i := range h.Changes {
		if h.Changes[i].KeyGroup, err = r.i32("changelog change key group"); err != nil {
			return nil, err
		}
		if h.Changes[i].Data, err = r.byteArray("changelog change"); err != nil {
			return nil, err
		}
	}
	if h.ID, err = r.utf("changelog byte increment handle id"); err != nil {
		return nil, err
	}
	return h, nil
}

func readFileIncrement(r *reader, tag byte) (*ChangelogFileIncrementHandle, error) {
	h := &ChangelogFileIncrementHandle{Tag: tag}
	var err error
	if h.Range, err = readRange(r, "changelog file increment handle key group range"); err != nil {
		return nil, err
	}
	n, err := r.count("changelog file increment handle count", 9)
	if err != nil {
		return nil, err
	}
	h.Handles = make([]OffsetHandle, n)
	for i := range h.Handles {
		if h.Handles[i].Offset, err = r.i64("changelog file increment offset"); err != nil {
			return nil, err
		}
		if h.Handles[i].Handle, err = readStream(r, "changelog file increment handle"); err != nil {
			return nil, err
		}
	}
	if h.Size, err = r.i64("changelog file increment size"); err != nil {
		return nil, err
	}
	if h.CheckpointedSize, err = r.i64("changelog file increment checkpointed size"); err != nil {
		return nil, err
	}
	if h.ID, err = r.utf("changelog file increment id"); err != nil {
		return nil, err
	}
	if tag == TagChangelogFileIncrementV2 {
		if h.StorageIdentifier, err = r.utf("changelog file increment storage identifier"); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// readOperatorStateHandle reads an OperatorStateHandle that a preceding
// i32 1 announced; Flink's writer never announces a null handle, so tag 0 is
// rejected here.
func readOperatorStateHandle(r *reader, what string) (*OperatorStateHandle, error) {
	off := r.off
	tag, err := r.u8(what)
	if err != nil {
		return nil, err
	}
	switch tag {
	case TagOperatorStream, TagFileMergingOperatorStream:
	case TagNull:
		return nil, r.errAt(off, ErrInvalid, "null %s announced as present at offset %d", what, off)
	default:
		return nil, r.errAt(off, ErrUnknownTag, "unknown operator state handle tag %d at offset %d", tag, off)
	}
	h := &OperatorStateHandle{FileMerging: tag == TagFileMergingOperatorStream}
	n, err := r.count("operator state count", 7)
	if err != nil {
		return nil, err
	}
	h.States = make([]OperatorStateInfo, n)
	for i := range h.States {
		s := &h.States[i]
		if s.Name, err = r.utf("operator state name"); err != nil {
			return nil, err
		}
		moff := r.off
		mode, err := r.u8("operator state distribution mode")
		if err != nil {
			return nil, err
		}
		if mode > byte(Broadcast) {
			return nil, r.errAt(moff, ErrInvalid, "invalid operator state distribution mode %d at offset %d", int8(mode), moff)
		}
		s.Mode = DistributionMode(mode)
		if s.Offsets, err = readOffsets(r, "operator state partition offset count"); err != nil {
			return nil, err
		}
	}
	if h.FileMerging {
		if h.TaskOwnedDir, err = r.utf("task-owned directory"); err != nil {
			return nil, err
		}
		if h.SharedDir, err = r.utf("shared directory"); err != nil {
			return nil, err
		}
		if h.Empty, err = r.boolean("file-merging empty flag"); err != nil {
			return nil, err
		}
	}
	doff := r.off
	if h.Delegate, err = readStream(r, "operator state delegate"); err != nil {
		return nil, err
	}
	if h.FileMerging && !isSegment(h.Delegate) {
		return nil, r.errAt(doff, ErrInvalid, "file-merging operator state handle at offset %d has no segment file delegate", doff)
	}
	return h, nil
}

func isSegment(h StreamHandle) bool {
	switch v := h.(type) {
	case *SegmentFileHandle:
		return v != nil
	case *EmptySegmentFileHandle:
		return v != nil
	}
	return false
}

func readChannel(r *reader, version int32, output bool) (*ChannelStateHandle, error) {
	h := &ChannelStateHandle{Output: output}
	what, offsetsWhat := "input channel state handle", "input channel state offset count"
	if output {
		what, offsetsWhat = "result subpartition state handle", "result subpartition state offset count"
	}
	if version >= 6 {
		off := r.off
		tag, err := r.u8(what)
		if err != nil {
			return nil, err
		}
		switch {
		case !output && tag == ChannelTagInput, output && tag == ChannelTagOutput:
		case !output && tag == ChannelTagMergedInput, output && tag == ChannelTagMergedOutput:
			h.Merged = true
		default:
			return nil, r.errAt(off, ErrUnknownTag, "unknown %s tag %d at offset %d", what, tag, off)
		}
	}
	var err error
	if h.SubtaskIndex, err = r.i32(what); err != nil {
		return nil, err
	}
	if h.Merged {
		if h.Size, err = r.i64(what); err != nil {
			return nil, err
		}
		if h.Delegate, err = readStream(r, what); err != nil {
			return nil, err
		}
		if h.SerializedChannelOffsets, err = r.byteArray(what); err != nil {
			return nil, err
		}
		return h, nil
	}
	if h.GateOrPartition, err = r.i32(what); err != nil {
		return nil, err
	}
	if h.ChannelOrSubpartition, err = r.i32(what); err != nil {
		return nil, err
	}
	if h.Offsets, err = readOffsets(r, offsetsWhat); err != nil {
		return nil, err
	}
	if h.Size, err = r.i64(what); err != nil {
		return nil, err
	}
	if h.Delegate, err = readStream(r, what); err != nil {
		return nil, err
	}
	return h, nil
}

// ---------------------------------------------------------------------------
// Writing

// encoder carries the writer and the nesting depth while encoding.
type encoder struct {
	w     writer
	depth int
}

func (e *encoder) enter(what string) error {
	if e.depth >= maxDepth {
		return fmt.Errorf("flink: %s nested deeper than %d levels", what, maxDepth)
	}
	e.depth++
	return nil
}

func (e *encoder) leave() { e.depth-- }

func (e *encoder) rng(k KeyGroupRange) {
	e.w.i32(k.Start)
	e.w.i32(k.Count)
}

func (e *encoder) longs(v []int64, what string) error {
	if err := e.w.count(len(v), what); err != nil {
		return err
	}
	for _, x := range v {
		e.w.i64(x)
	}
	return nil
}

func (e *encoder) stream(h StreamHandle, what string) error {
	if isNil(h) {
		e.w.u8(TagNull)
		return nil
	}
	switch h := h.(type) {
	case *ByteStreamHandle:
		e.w.u8(TagByteStream)
		if err := e.w.utf(h.Name, "byte stream handle name"); err != nil {
			return err
		}
		return e.w.byteArray(h.Data, "byte stream handle")
	case *FileHandle:
		if h.Relative {
			e.w.u8(TagRelativeFile)
			if err := e.w.utf(h.Path, "relative file handle path"); err != nil {
				return err
			}
			e.w.i64(h.Size)
			return nil
		}
		e.w.u8(TagFile)
		e.w.i64(h.Size)
		return e.w.utf(h.Path, "file handle path")
	case *KeyGroupsHandle:
		if h.Tag != TagKeyGroups {
			return fmt.Errorf("flink: %s: a key group handle used as a stream handle must have tag %d, not %d",
				what, TagKeyGroups, h.Tag)
		}
		if err := e.enter("key group handle"); err != nil {
			return err
		}
		defer e.leave()
		return e.keyGroups(h)
	case *SegmentFileHandle:
		if h.Scope != ScopeExclusive && h.Scope != ScopeShared {
			return fmt.Errorf("flink: %s: invalid segment file scope %d", what, h.Scope)
		}
		e.w.u8(TagSegmentFile)
		e.w.i64(h.StartPos)
		e.w.i64(h.Size)
		e.w.i32(int32(h.Scope))
		if err := e.w.utf(h.PhysicalPath, "segment file handle path"); err != nil {
			return err
		}
		return e.w.utf(h.LogicalFileID, "segment file handle logical file id")
	case *EmptySegmentFileHandle:
		e.w.u8(TagEmptySegmentFile)
		return nil
	}
	return fmt.Errorf("flink: %s: unsupported stream handle type %T", what, h)
}

// keyGroups writes a key group handle; the caller has entered a nesting level.
func (e *encoder) keyGroups(h *KeyGroupsHandle) error {
	if h.Range.Count < 0 || int(h.Range.Count) != len(h.Offsets) {
		return fmt.Errorf("flink: key group handle has %d offsets for a range of %d key groups",
			len(h.Offsets), h.Range.Count)
	}
	if h.Tag != TagKeyGroupsV2 && h.ID != "" {
		return fmt.Errorf("flink: key group handle with tag %d cannot store id %q", h.Tag, h.ID)
	}
	e.w.u8(h.Tag)
	e.rng(h.Range)
	for _, o := range h.Offsets {
		e.w.i64(o)
	}
	if err := e.stream(h.Delegate, "key group handle delegate"); err != nil {
		return err
	}
	if h.Tag == TagKeyGroupsV2 {
		return e.w.utf(h.ID, "key group handle id")
	}
	return nil
}

func (e *encoder) handleList(list []HandleAndLocalPath, what string) error {
	if err := e.w.count(len(list), what); err != nil {
		return err
	}
	for _, x := range list {
		if err := e.w.utf(x.LocalPath, what); err != nil {
			return err
		}
		if err := e.stream(x.Handle, what); err != nil {
			return err
		}
	}
	return nil
}

func (e *encoder) keyed(h KeyedHandle, what string) error {
	if isNil(h) {
		e.w.u8(TagNull)
		return nil
	}
	if err := e.enter("keyed state handle"); err != nil {
		return err
	}
	defer e.leave()
	switch h := h.(type) {
	case *KeyGroupsHandle:
		switch h.Tag {
		case TagKeyGroups, TagKeyGroupsV2, TagSavepointKeyGroups:
		default:
			return fmt.Errorf("flink: %s: invalid key group handle tag %d", what, h.Tag)
		}
		return e.keyGroups(h)
	case *IncrementalHandle:
		return e.incremental(h, what)
	case *ChangelogHandle:
		return e.changelog(h, what)
	case *ChangelogByteIncrementHandle:
		e.w.u8(TagChangelogByteIncrement)
		e.rng(h.Range)
		e.w.i64(h.From)
		e.w.i64(h.To)
		if err := e.w.count(len(h.Changes), "changelog changes"); err != nil {
			return err
		}
		for _, c := range h.Changes {
			e.w.i32(c.KeyGroup)
			if err := e.w.byteArray(c.Data, "changelog change"); err != nil {
				return err
			}
		}
		return e.w.utf(h.ID, "changelog byte increment handle id")
	case *ChangelogFileIncrementHandle:
		return e.fileIncrement(h, what)
	}
	return fmt.Errorf("flink: %s: unsupported keyed handle type %T", what, h)
}

func (e *encoder) incremental(h *IncrementalHandle, what string) error {
	v2 := h.Tag == TagIncrementalV2
	if !v2 && h.Tag != TagIncremental {
		return fmt.Errorf("flink: %s: invalid incremental handle tag %d", what, h.Tag)
	}
	if !v2 && (h.CheckpointedSize != 0 || h.ID != "") {
		return fmt.Errorf("flink: %s: legacy incremental handle (tag %d) cannot store a checkpointed size or id", what, h.Tag)
	}
	e.w.u8(h.Tag)
	e.w.i64(h.CheckpointID)
	if err := e.w.utf(h.BackendID, "incremental handle backend id"); err != nil {
		return err
	}
	e.rng(h.Range)
	if v2 {
		e.w.i64(h.CheckpointedSize)
	}
	if err := e.stream(h.Meta, "incremental handle metadata"); err != nil {
		return err
	}
	if err := e.handleList(h.Shared, "incremental handle shared state"); err != nil {
		return err
	}
	if err := e.handleList(h.Private, "incremental handle private state"); err != nil {
		return err
	}
	if v2 {
		return e.w.utf(h.ID, "incremental handle id")
	}
	return nil
}

func (e *encoder) changelog(h *ChangelogHandle, what string) error {
	v2 := h.Tag == TagChangelogV2
	if !v2 && h.Tag != TagChangelog {
		return fmt.Errorf("flink: %s: invalid changelog handle tag %d", what, h.Tag)
	}
	if !v2 && h.CheckpointID != 0 {
		return fmt.Errorf("flink: %s: legacy changelog handle (tag %d) cannot store a checkpoint id", what, h.Tag)
	}
	e.w.u8(h.Tag)
	e.rng(h.Range)
	e.w.i64(h.CheckpointedSize)
	if err := e.w.count(len(h.Materialized), "changelog materialized handles"); err != nil {
		return err
	}
	for _, k := range h.Materialized {
		if err := e.keyed(k, "changelog materialized handle"); err != nil {
			return err
		}
	}
	if err := e.w.count(len(h.NonMaterialized), "changelog non-materialized handles"); err != nil {
		return err
	}
	for _, k := range h.NonMaterialized {
		if !isChangelogIncrement(k) {
			return fmt.Errorf("flink: %s: non-materialized changelog part is a %s, not a changelog increment", what, k.Kind())
		}
		if err := e.keyed(k, "changelog non-materialized handle"); err != nil {
			return err
		}
	}
	e.w.i64(h.MaterializationID)
	if v2 {
		e.w.i64(h.CheckpointID)
	}
	return e.w.utf(h.ID, "changelog handle id")
}

func (e *encoder) fileIncrement(h *ChangelogFileIncrementHandle, what string) error {
	v2 := h.Tag == TagChangelogFileIncrementV2
	if !v2 && h.Tag != TagChangelogFileIncrement {
		return fmt.Errorf("flink: %s: invalid changelog file increment handle tag %d", what, h.Tag)
	}
	if !v2 && h.StorageIdentifier != "" {
		return fmt.Errorf("flink: %s: legacy changelog file increment handle (tag %d) cannot store a storage identifier", what, h.Tag)
	}
	e.w.u8(h.Tag)
	e.rng(h.Range)
	if err := e.w.count(len(h.Handles), "changelog file increment handles"); err != nil {
		return err
	}
	for _, x := range h.Handles {
		e.w.i64(x.Offset)
		if err := e.stream(x.Handle, "changelog file increment handle"); err != nil {
			return err
		}
	}
	e.w.i64(h.Size)
	e.w.i64(h.CheckpointedSize)
	if err := e.w.utf(h.ID, "changelog file increment id"); err != nil {
		return err
	}
	if v2 {
		return e.w.utf(h.StorageIdentifier, "changelog file increment storage identifier")
	}
	return nil
}

func (e *encoder) operatorStateHandle(h *OperatorStateHandle) error {
	if h.FileMerging {
		e.w.u8(TagFileMergingOperatorStream)
	} else {
		if h.TaskOwnedDir != "" || h.SharedDir != "" || h.Empty {
			return fmt.Errorf("flink: operator state handle without file merging cannot store directories or the empty flag")
		}
		e.w.u8(TagOperatorStream)
	}
	if err := e.w.count(len(h.States), "operator states"); err != nil {
		return err
	}
	for _, s := range h.States {
		if err := e.w.utf(s.Name, "operator state name"); err != nil {
			return err
		}
		if s.Mode < SplitDistribute || s.Mode > Broadcast {
			return fmt.Errorf("flink: operator state %q has invalid distribution mode %d", s.Name, s.Mode)
		}
		e.w.u8(byte(s.Mode))
		if err := e.longs(s.Offsets, "operator state partition offsets"); err != nil {
			return err
		}
	}
	if h.FileMerging {
		if err := e.w.utf(h.TaskOwnedDir, "task-owned directory"); err != nil {
			return err
		}
		if err := e.w.utf(h.SharedDir, "shared directory"); err != nil {
			return err
		}
		e.w.boolean(h.Empty)
		if !isSegment(h.Delegate) {
			return fmt.Errorf("flink: file-merging operator state handle needs a segment file delegate, not %T", h.Delegate)
		}
	}
	return e.stream(h.Delegate, "operator state delegate")
}

func (e *encoder) channel(h *ChannelStateHandle, version int32, output bool) error {
	what := "input channel state handle"
	if output {
		what = "result subpartition state handle"
	}
	if h.Output != output {
		return fmt.Errorf("flink: %s list holds a handle with Output=%v", what, h.Output)
	}
	if version >= 6 {
		switch {
		case h.Merged && output:
			e.w.u8(ChannelTagMergedOutput)
		case h.Merged:
			e.w.u8(ChannelTagMergedInput)
		case output:
			e.w.u8(ChannelTagOutput)
		default:
			e.w.u8(ChannelTagInput)
		}
	} else if h.Merged {
		return fmt.Errorf("flink: merged %s needs metadata version 6, not %d", what, version)
	}
	e.w.i32(h.SubtaskIndex)
	if h.Merged {
		if h.GateOrPartition != 0 || h.ChannelOrSubpartition != 0 || len(h.Offsets) != 0 {
			return fmt.Errorf("flink: merged %s cannot store channel info or offsets", what)
		}
		e.w.i64(h.Size)
		if err := e.stream(h.Delegate, what); err != nil {
			return err
		}
		return e.w.byteArray(h.SerializedChannelOffsets, what)
	}
	if len(h.SerializedChannelOffsets) != 0 {
		return fmt.Errorf("flink: unmerged %s cannot store serialized channel offsets", what)
	}
	e.w.i32(h.GateOrPartition)
	e.w.i32(h.ChannelOrSubpartition)
	if err := e.longs(h.Offsets, what); err != nil {
		return err
	}
	e.w.i64(h.Size)
	return e.stream(h.Delegate, what)
}
