package flink

import (
	"fmt"
	"strings"
)

// This file holds the traversal of a decoded Metadata: Walk over every
// handle with its location, FileRefs over every handle naming a file (with a
// setter to rewrite the path in place), and summary helpers.

// Slot names where in a subtask (or operator) a top-level handle sits.
type Slot string

// Slots.
const (
	SlotCoordinator        Slot = "coordinator"         // OperatorState.CoordinatorState
	SlotManagedOperator    Slot = "managed-operator"    // SubtaskState.ManagedOperatorState
	SlotRawOperator        Slot = "raw-operator"        // SubtaskState.RawOperatorState
	SlotManagedKeyed       Slot = "managed-keyed"       // SubtaskState.ManagedKeyedState
	SlotRawKeyed           Slot = "raw-keyed"           // SubtaskState.RawKeyedState
	SlotInputChannel       Slot = "input-channel"       // SubtaskState.InputChannelState
	SlotResultSubpartition Slot = "result-subpartition" // SubtaskState.ResultSubpartitionState
)

// Role names how a nested handle hangs off its parent.
type Role string

// Roles.
const (
	RoleDelegate        Role = "delegate"         // the stream of a key group, operator state or channel handle
	RoleMetadata        Role = "metadata"         // IncrementalHandle.Meta
	RoleShared          Role = "shared"           // IncrementalHandle.Shared[i]
	RolePrivate         Role = "private"          // IncrementalHandle.Private[i]
	RoleMaterialized    Role = "materialized"     // ChangelogHandle.Materialized[i]
	RoleNonMaterialized Role = "non-materialized" // ChangelogHandle.NonMaterialized[i]
	RoleChangelog       Role = "changelog"        // ChangelogFileIncrementHandle.Handles[i]
)

// Step is one level of nesting: the handle reached is the Role (Index-th,
// for lists) of a Parent handle.
type Step struct {
	Parent HandleKind
	Role   Role
	// Index is the position in the parent's list for shared, private,
	// materialized, non-materialized and changelog roles; 0 otherwise.
	Index int
	// LocalPath is the local file name for shared and private roles.
	LocalPath string
}

// Location says where a handle sits in a Metadata.
type Location struct {
	OperatorIndex int
	OperatorID    OperatorID
	// SubtaskIndex is the subtask's index (not its position in the list),
	// or -1 for the coordinator state.
	SubtaskIndex int32
	Slot         Slot
	// ChannelIndex is the position in the channel list for the channel
	// slots; 0 otherwise.
	ChannelIndex int
	// Steps lead from the slot's top-level handle down to the handle;
	// empty for the top-level handle itself.
	Steps []Step
}

// Clone returns a copy of l that does not share Steps.
func (l Location) Clone() Location {
	l.Steps = append([]Step(nil), l.Steps...)
	return l
}

// Role returns the role of the innermost step, or "" for a top-level handle.
func (l Location) Role() Role {
	if len(l.Steps) == 0 {
		return ""
	}
	return l.Steps[len(l.Steps)-1].Role
}

// String describes the location for humans, e.g.
// "operator 9dc1cc7fa0f80dd05a6c4a0f2b5a8b12 subtask 0 managed-keyed >
// IncrementalRemoteKeyedStateHandle.shared[3](000010.sst)".
func (l Location) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "operator %s", l.OperatorID)
	if l.SubtaskIndex >= 0 {
		fmt.Fprintf(&b, " subtask %d", l.SubtaskIndex)
	}
	b.WriteString(" ")
	b.WriteString(string(l.Slot))
	if l.Slot == SlotInputChannel || l.Slot == SlotResultSubpartition {
		fmt.Fprintf(&b, "[%d]", l.ChannelIndex)
	}
	for _, s := range l.Steps {
		fmt.Fprintf(&b, " > %s.%s", s.Parent, s.Role)
		switch s.Role {
		case RoleShared, RolePrivate, RoleMaterialized, RoleNonMaterialized, RoleChangelog:
			fmt.Fprintf(&b, "[%d]", s.Index)
		}
		if s.LocalPath != "" {
			fmt.Fprintf(&b, "(%s)", s.LocalPath)
		}
	}
	return b.String()
}

// Walk calls fn for every non-nil handle in m, parents before the handles
// they hold, in file order. The Location (and its Steps) is only valid
// during the call; use Location.Clone to keep it. Master states and the
// trailer are opaque and hold no handles.
func (m *Metadata) Walk(fn func(loc *Location, h Handle)) {
	w := walker{fn: fn}
	for i, op := range m.Operators {
		if op == nil {
			continue
		}
		w.loc = Location{OperatorIndex: i, OperatorID: op.ID, SubtaskIndex: -1}
		if op.CoordinatorState != nil {
			w.loc.Slot = SlotCoordinator
			w.handle(op.CoordinatorState)
		}
		for _, s := range op.Subtasks {
			if s == nil {
				continue
			}
			w.loc.SubtaskIndex = s.Index
			w.loc.ChannelIndex = 0
			if s.ManagedOperatorState != nil {
				w.loc.Slot = SlotManagedOperator
				w.handle(s.ManagedOperatorState)
			}
			if s.RawOperatorState != nil {
				w.loc.Slot = SlotRawOperator
				w.handle(s.RawOperatorState)
			}
			w.loc.Slot = SlotManagedKeyed
			w.handle(s.ManagedKeyedState)
			w.loc.Slot = SlotRawKeyed
			w.handle(s.RawKeyedState)
			w.loc.Slot = SlotInputChannel
			for j, c := range s.InputChannelState {
				w.loc.ChannelIndex = j
				if c != nil {
					w.handle(c)
				}
			}
			w.loc.Slot = SlotResultSubpartition
			for j, c := range s.ResultSubpartitionState {
				w.loc.ChannelIndex = j
				if c != nil {
					w.handle(c)
				}
			}
			w.loc.ChannelIndex = 0
		}
	}
}

type walker struct {
	fn  func(*Location, Handle)
	loc Location
}

func (w *walker) child(parent Handle, role Role, index int, localPath string, h Handle) {
	if isNil(h) {
		return
	}
	w.loc.Steps = append(w.loc.Steps, Step{Parent: parent.Kind(), Role: role, Index: index, LocalPath: localPath})
	w.handle(h)
	w.loc.Steps = w.loc.Steps[:len(w.loc.Steps)-1]
}

func (w *walker) handle(h Handle) {
	if isNil(h) {
		return
	}
	w.fn(&w.loc, h)
	switch h := h.(type) {
	case *KeyGroupsHandle:
		w.child(h, RoleDelegate, 0, "", h.Delegate)
	case *IncrementalHandle:
		w.child(h, RoleMetadata, 0, "", h.Meta)
		for i, e := range h.Shared {
			w.child(h, RoleShared, i, e.LocalPath, e.Handle)
		}
		for i, e := range h.Private {
			w.child(h, RolePrivate, i, e.LocalPath, e.Handle)
		}
	case *ChangelogHandle:
		for i, k := range h.Materialized {
			w.child(h, RoleMaterialized, i, "", k)
		}
		for i, k := range h.NonMaterialized {
			w.child(h, RoleNonMaterialized, i, "", k)
		}
	case *ChangelogFileIncrementHandle:
		for i, e := range h.Handles {
			w.child(h, RoleChangelog, i, "", e.Handle)
		}
	case *OperatorStateHandle:
		w.child(h, RoleDelegate, 0, "", h.Delegate)
	case *ChannelStateHandle:
		w.child(h, RoleDelegate, 0, "", h.Delegate)
	}
}

// FileRef is one handle of a Metadata that names a file: a FileStateHandle,
// a RelativeFileStateHandle or a SegmentFileStateHandle. Several FileRefs
// may name the same file (channel state handles at different offsets of one
// file, segments of one merged file); de-duplicate by path where needed.
type FileRef struct {
	// Path is the path exactly as stored: an absolute URI for
	// FileStateHandle and SegmentFileStateHandle, a path relative to the
	// directory holding _metadata for RelativeFileStateHandle.
	Path string
	// Relative is true for a RelativeFileStateHandle.
	Relative bool
	// Kind is KindFile, KindRelativeFile or KindSegmentFile.
	Kind HandleKind
	// Size is the state size recorded in the handle; for a segment, the
	// length of the segment.
	Size int64
	// SegmentStart and SegmentScope describe a segment (KindSegmentFile
	// only): Size bytes at SegmentStart of the file Path.
	SegmentStart int64
	SegmentScope SegmentScope
	// Location says where the handle sits.
	Location Location

	file    *FileHandle
	segment *SegmentFileHandle
}

// Role returns the role of the handle in its parent: RoleShared,
// RolePrivate or RoleMetadata inside an incremental handle, RoleChangelog
// inside a changelog file increment, RoleDelegate otherwise.
func (r *FileRef) Role() Role { return r.Location.Role() }

// LocalPath returns the local (RocksDB) file name of a shared or private
// file of an incremental handle, "" otherwise.
func (r *FileRef) LocalPath() string {
	if n := len(r.Location.Steps); n > 0 {
		return r.Location.Steps[n-1].LocalPath
	}
	return ""
}

// String describes the reference for humans.
func (r *FileRef) String() string {
	s := fmt.Sprintf("%s %q size %d at %s", r.Kind, r.Path, r.Size, r.Location)
	if r.Kind == KindSegmentFile {
		s = fmt.Sprintf("%s %q segment [%d, +%d) %s at %s", r.Kind, r.Path, r.SegmentStart, r.Size, r.SegmentScope, r.Location)
	}
	return s
}

// SetPath rewrites the path of the handle r refers to, in the Metadata r
// came from, and updates r to match. With relative true the handle becomes a
// RelativeFileStateHandle (tag 6: relative path, then size); with relative
// false a FileStateHandle (tag 2: size, then path), exactly as Flink's
// writer lays them out; the recorded size is kept. A segment file handle
// has no relative form: only relative false is accepted for it, and only
// its physical path changes.
//
// newPath must be non-empty and writable (at most MaxStringBytes of
// modified UTF-8); a relative path must not start with "/" nor carry a URI
// scheme. SetPath does not check that the file exists: Flink's rule is to
// write a handle as relative only when its file sits in the directory of
// the _metadata being written, which is the caller's to ensure.
func (r *FileRef) SetPath(newPath string, relative bool) error {
	if newPath == "" {
		return fmt.Errorf("flink: empty path")
	}
	n, err := ModifiedUTF8Len(newPath)
	if err != nil {
		return err
	}
	if n > MaxStringBytes {
		return fmt.Errorf("flink: path takes %d bytes of modified UTF-8, more than the %d allowed", n, MaxStringBytes)
	}
	if relative && (strings.HasPrefix(newPath, "/") || strings.Contains(newPath, "://")) {
		return fmt.Errorf("flink: relative path %q looks absolute", newPath)
	}
	switch {
	case r.file != nil:
		r.file.Path, r.file.Relative = newPath, relative
		r.Kind = r.file.Kind()
	case r.segment != nil:
		if relative {
			return fmt.Errorf("flink: segment file handles have no relative form (path %q)", r.Path)
		}
		r.segment.PhysicalPath = newPath
	default:
		return fmt.Errorf("flink: file reference not obtained from Metadata.FileRefs")
	}
	r.Path, r.Relative = newPath, relative
	return nil
}

// FileRefs returns every handle of m that names a file, in file order. The
// references stay bound to m: FileRef.SetPath changes m, and stays valid as
// long as the handles are not replaced by other values.
func (m *Metadata) FileRefs() []FileRef {
	var refs []FileRef
	m.Walk(func(loc *Location, h Handle) {
		switch h := h.(type) {
		case *FileHandle:
			refs = append(refs, FileRef{
				Path: h.Path, Relative: h.Relative, Kind: h.Kind(), Size: h.Size,
				Location: loc.Clone(), file: h,
			})
		case *SegmentFileHandle:
			refs = append(refs, FileRef{
				Path: h.PhysicalPath, Kind: KindSegmentFile, Size: h.Size,
				SegmentStart: h.StartPos, SegmentScope: h.Scope,
				Location: loc.Clone(), segment: h,
			})
		}
	})
	return refs
}

// InlineBytes returns the number of state bytes stored inside the
// _metadata file itself: the data of every ByteStreamStateHandle (operator
// coordinator state included) and of every in-memory changelog change.
// Master states and the trailer are not counted.
func (m *Metadata) InlineBytes() int64 {
	var n int64
	m.Walk(func(_ *Location, h Handle) {
		switch h := h.(type) {
		case *ByteStreamHandle:
			n += int64(len(h.Data))
		case *ChangelogByteIncrementHandle:
			n += h.StateSize()
		}
	})
	return n
}

// Summary counts what a Metadata holds.
type Summary struct {
	Operators              int
	FullyFinishedOperators int
	Subtasks               int // finished ones included
	FinishedSubtasks       int
	// Handles counts every handle, nested ones included, by kind.
	Handles map[HandleKind]int
	// FileRefs counts the handles naming a file; Files the distinct paths
	// among them (relative and absolute paths counted apart).
	FileRefs int
	Files    int
	// InlineBytes is Metadata.InlineBytes.
	InlineBytes int64
	// StateSize sums the state size of every top-level handle (coordinator
	// states and the handles of each subtask), as Flink would report it.
	StateSize int64
}

// Summary counts the operators, subtasks and handles of m.
func (m *Metadata) Summary() Summary {
	s := Summary{Handles: map[HandleKind]int{}}
	paths := map[[2]string]bool{}
	for _, op := range m.Operators {
		if op == nil {
			continue
		}
		s.Operators++
		if op.FullyFinished {
			s.FullyFinishedOperators++
		}
		for _, st := range op.Subtasks {
			if st == nil {
				continue
			}
			s.Subtasks++
			if st.Finished {
				s.FinishedSubtasks++
			}
		}
	}
	m.Walk(func(loc *Location, h Handle) {
		s.Handles[h.Kind()]++
		if len(loc.Steps) == 0 {
			s.StateSize += h.StateSize()
		}
		switch h := h.(type) {
		case *ByteStreamHandle:
			s.InlineBytes += int64(len(h.Data))
		case *ChangelogByteIncrementHandle:
			s.InlineBytes += h.StateSize()
		case *FileHandle:
			s.FileRefs++
			paths[[2]string{fmt.Sprint(h.Relative), h.Path}] = true
		case *SegmentFileHandle:
			s.FileRefs++
			paths[[2]string{"false", h.PhysicalPath}] = true
		}
	})
	s.Files = len(paths)
	return s
}
