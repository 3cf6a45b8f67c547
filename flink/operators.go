package flink

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// This file holds operator states and subtask states, with their readers
// and writers for each metadata version.

// OperatorID is Flink's OperatorID as stored in _metadata: the lower part's 8
// big-endian bytes, then the upper part's. In that byte order its hex form
// is the operator id Flink prints.
type OperatorID [16]byte

// NewOperatorID builds an OperatorID from Flink's lower and upper parts.
func NewOperatorID(lower, upper int64) OperatorID {
	var id OperatorID
	binary.BigEndian.PutUint64(id[:8], uint64(lower))
	binary.BigEndian.PutUint64(id[8:], uint64(upper))
	return id
}

// ParseOperatorID parses the 32 hex characters Flink prints for an
// operator id.
func ParseOperatorID(s string) (OperatorID, error) {
	var id OperatorID
	if len(s) != 32 {
		return id, fmt.Errorf("flink: operator id %q is not 32 hex characters", s)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("flink: operator id %q is not hex", s)
	}
	return id, nil
}

// String returns the 32 lower-case hex characters Flink prints.
func (id OperatorID) String() string { return hex.EncodeToString(id[:]) }

// Lower returns Flink's lower part (the first 8 bytes).
func (id OperatorID) Lower() int64 { return int64(binary.BigEndian.Uint64(id[:8])) }

// Upper returns Flink's upper part (the last 8 bytes).
func (id OperatorID) Upper() int64 { return int64(binary.BigEndian.Uint64(id[8:])) }

// OperatorState is the state of one operator across its subtasks.
//
// Layout, version 2: i64 idLower, i64 idUpper, i32 parallelism, i32
// maxParallelism, i32 legacy chain length, i32 n × (i32 index, SubtaskState).
// Versions 3 and 4: ids, parallelisms, coordinator StreamStateHandle (tag 0
// or 1), i32 n (-1 for a fully finished operator, then nothing) × (i32 index,
// SubtaskState; a negative index -i-1 marks subtask i finished, with no
// state). Versions 5 and 6: utf name, utf uid, then the version 3 layout.
type OperatorState struct {
	ID OperatorID
	// Name and UID are stored from version 5 on; "" means none (Flink
	// writes "" for an absent name or uid). They must be "" before version 5.
	Name string
	UID  string

	Parallelism    int32
	MaxParallelism int32

	// LegacyChainLength is the unused version-2 field once holding the chain
	// length. Flink writes 1 and ignores it when reading; it is kept to
	// write the same bytes back. It must be 0 for other versions.
	LegacyChainLength int32

	// CoordinatorState is the operator coordinator's state (version 3 on),
	// always inline; nil when there is none.
	CoordinatorState *ByteStreamHandle

	// FullyFinished marks an operator all of whose subtasks had finished
	// (version 3 on). Such an operator has no coordinator state and no
	// subtasks.
	FullyFinished bool

	// Subtasks in file order, finished ones included.
	Subtasks []*SubtaskState
}

// SubtaskState is the state of one subtask of an operator.
//
// Layout: [version 2: i64 duration, i32 legacy state count (0)], i32 has
// managed operator state [OperatorStateHandle], i32 has raw operator state
// [OperatorStateHandle], KeyedStateHandle managed, KeyedStateHandle raw,
// [version 3 on: i32 n × InputChannelHandle, i32 m × ResultSubpartitionHandle].
type SubtaskState struct {
	// Index is the subtask index.
	Index int32
	// Finished marks a finished subtask (version 3 on): only its index is
	// stored, every other field must be zero.
	Finished bool

	// V2Duration and V2LegacyStateCount are unused version-2 fields that
	// Flink writes as -1 and 0 and skips when reading (it rejects a
	// positive legacy count, as Decode does). Kept to write the same
	// bytes back; they must be 0 for other versions.
	V2Duration         int64
	V2LegacyStateCount int32

	ManagedOperatorState *OperatorStateHandle // nil: none
	RawOperatorState     *OperatorStateHandle // nil: none
	ManagedKeyedState    KeyedHandle          // nil: none
	RawKeyedState        KeyedHandle          // nil: none

	// InputChannelState and ResultSubpartitionState are the channel state
	// of unaligned checkpoints (version 3 on).
	InputChannelState       []*ChannelStateHandle
	ResultSubpartitionState []*ChannelStateHandle
}

// hasState reports whether s holds anything besides its index.
func (s *SubtaskState) hasState() bool {
	return s.ManagedOperatorState != nil || s.RawOperatorState != nil ||
		!isNil(s.ManagedKeyedState) || !isNil(s.RawKeyedState) ||
		len(s.InputChannelState) != 0 || len(s.ResultSubpartitionState) != 0
}

// Minimum encoded sizes, used to bound counts before allocating.
const (
	minOperatorV2  = 8 + 8 + 4 + 4 + 4 + 4
	minOperatorV3  = 8 + 8 + 4 + 4 + 1 + 4
	minOperatorV5  = 2 + 2 + minOperatorV3
	minSubtaskV2   = 4 + 8 + 4 + 4 + 4 + 1 + 1
	minSubtaskV3   = 4 // a finished subtask
	minChannelV3   = 4 + 4 + 4 + 4 + 8 + 1
	minChannelV6   = 1 + 4 + 8 + 1 + 4 // the smaller, merged layout
	minMasterState = 4 + 4 + 1
)

func minOperatorSize(version int32) int {
	switch {
	case version == 2:
		return minOperatorV2
	case version >= 5:
		return minOperatorV5
	}
	return minOperatorV3
}

func readOperator(r *reader, version int32) (*OperatorState, error) {
	op := &OperatorState{}
	var err error
	if version >= 5 {
		if op.Name, err = r.utf("operator name"); err != nil {
			return nil, err
		}
		if op.UID, err = r.utf("operator uid"); err != nil {
			return nil, err
		}
	}
	if err := r.need(16, "operator id"); err != nil {
		return nil, err
	}
	copy(op.ID[:], r.data[r.off:r.off+16])
	r.off += 16
	if op.Parallelism, err = r.i32("operator parallelism"); err != nil {
		return nil, err
	}
	if op.MaxParallelism, err = r.i32("operator max parallelism"); err != nil {
		return nil, err
	}
	minSubtask := minSubtaskV3
	if version == 2 {
		if op.LegacyChainLength, err = r.i32("operator legacy chain length"); err != nil {
			return nil, err
		}
		minSubtask = minSubtaskV2
	} else {
		coff := r.off
		cs, err := readStream(r, "operator coordinator state")
		if err != nil {
			return nil, err
		}
		switch h := cs.(type) {
		case nil:
		case *ByteStreamHandle:
			op.CoordinatorState = h
		default:
			return nil, r.errAt(coff, ErrInvalid, "operator coordinator state at offset %d is a %s, not inline bytes", coff, cs.Kind())
		}
		noff := r.off
		n, err := r.i32("operator subtask count")
		if err != nil {
			return nil, err
		}
		if n == -1 {
			if op.CoordinatorState != nil {
				return nil, r.errAt(noff, ErrInvalid, "fully finished operator %s at offset %d has coordinator state", op.ID, noff)
			}
			op.FullyFinished = true
			return op, nil
		}
		r.off = noff // re-read as a count
	}
	n, err := r.count("operator subtask count", minSubtask)
	if err != nil {
		return nil, err
	}
	op.Subtasks = make([]*SubtaskState, n)
	for i := range op.Subtasks {
		if op.Subtasks[i], err = readSubtask(r, version); err != nil {
			return nil, err
		}
	}
	return op, nil
}

func readSubtask(r *reader, version int32) (*SubtaskState, error) {
	s := &SubtaskState{}
	idx, err := r.i32("subtask index")
	if err != nil {
		return nil, err
	}
	if version >= 3 && idx < 0 {
		// -(i+1) in Java int arithmetic, which wraps like Go's int32.
		s.Index = -idx - 1
		s.Finished = true
		return s, nil
	}
	s.Index = idx
	if version == 2 {
		if s.V2Duration, err = r.i64("subtask duration"); err != nil {
			return nil, err
		}
		off := r.off
		if s.V2LegacyStateCount, err = r.i32("subtask legacy state count"); err != nil {
			return nil, err
		}
		if s.V2LegacyStateCount > 0 {
			return nil, r.errAt(off, ErrInvalid,
				"subtask at offset %d has %d legacy states (Flink <= 1.1), which Flink no longer reads",
				off, s.V2LegacyStateCount)
		}
	}
	has, err := r.flag("managed operator state flag")
	if err != nil {
		return nil, err
	}
	if has {
		if s.ManagedOperatorState, err = readOperatorStateHandle(r, "managed operator state handle"); err != nil {
			return nil, err
		}
	}
	if has, err = r.flag("raw operator state flag"); err != nil {
		return nil, err
	}
	if has {
		if s.RawOperatorState, err = readOperatorStateHandle(r, "raw operator state handle"); err != nil {
			return nil, err
		}
	}
	if s.ManagedKeyedState, err = readKeyed(r, "managed keyed state handle"); err != nil {
		return nil, err
	}
	if s.RawKeyedState, err = readKeyed(r, "raw keyed state handle"); err != nil {
		return nil, err
	}
	if version == 2 {
		return s, nil
	}
	minChannel := minChannelV3
	if version >= 6 {
		minChannel = minChannelV6
	}
	for _, output := range []bool{false, true} {
		what := "input channel state handle count"
		if output {
			what = "result subpartition state handle count"
		}
		n, err := r.count(what, minChannel)
		if err != nil {
			return nil, err
		}
		list := make([]*ChannelStateHandle, n)
		for i := range list {
			if list[i], err = readChannel(r, version, output); err != nil {
				return nil, err
			}
		}
		if output {
			s.ResultSubpartitionState = list
		} else {
			s.InputChannelState = list
		}
	}
	return s, nil
}

func (e *encoder) operator(op *OperatorState, version int32) error {
	if op == nil {
		return fmt.Errorf("flink: nil operator state")
	}
	if version >= 5 {
		if err := e.w.utf(op.Name, "operator name"); err != nil {
			return err
		}
		if err := e.w.utf(op.UID, "operator uid"); err != nil {
			return err
		}
	} else if op.Name != "" || op.UID != "" {
		return fmt.Errorf("flink: operator %s: version %d cannot store an operator name or uid", op.ID, version)
	}
	e.w.buf = append(e.w.buf, op.ID[:]...)
	e.w.i32(op.Parallelism)
	e.w.i32(op.MaxParallelism)
	if version == 2 {
		if op.CoordinatorState != nil || op.FullyFinished {
			return fmt.Errorf("flink: operator %s: version 2 cannot store coordinator state or a fully finished operator", op.ID)
		}
		e.w.i32(op.LegacyChainLength)
	} else {
		if op.LegacyChainLength != 0 {
			return fmt.Errorf("flink: operator %s: version %d has no legacy chain length field (got %d)", op.ID, version, op.LegacyChainLength)
		}
		if op.CoordinatorState != nil {
			if err := e.stream(op.CoordinatorState, "operator coordinator state"); err != nil {
				return err
			}
		} else {
			e.w.u8(TagNull)
		}
		if op.FullyFinished {
			if op.CoordinatorState != nil || len(op.Subtasks) != 0 {
				return fmt.Errorf("flink: fully finished operator %s cannot have coordinator state or subtasks", op.ID)
			}
			e.w.i32(-1)
			return nil
		}
	}
	if err := e.w.count(len(op.Subtasks), "subtasks"); err != nil {
		return err
	}
	for _, s := range op.Subtasks {
		if err := e.subtask(s, version); err != nil {
			return fmt.Errorf("%w (operator %s)", err, op.ID)
		}
	}
	return nil
}

func (e *encoder) subtask(s *SubtaskState, version int32) error {
	if s == nil {
		return fmt.Errorf("flink: nil subtask state")
	}
	if version >= 3 && (s.V2Duration != 0 || s.V2LegacyStateCount != 0) {
		return fmt.Errorf("flink: subtask %d: version %d has no duration or legacy state count fields", s.Index, version)
	}
	if version >= 3 && s.Finished {
		if s.hasState() {
			return fmt.Errorf("flink: finished subtask %d carries state", s.Index)
		}
		if s.Index < 0 {
			return fmt.Errorf("flink: negative subtask index %d", s.Index)
		}
		e.w.i32(-s.Index - 1)
		return nil
	}
	if s.Finished {
		return fmt.Errorf("flink: version 2 cannot store finished subtask %d", s.Index)
	}
	if version >= 3 && s.Index < 0 {
		return fmt.Errorf("flink: negative subtask index %d", s.Index)
	}
	e.w.i32(s.Index)
	if version == 2 {
		if s.V2LegacyStateCount > 0 {
			return fmt.Errorf("flink: subtask %d: legacy state count %d cannot be written", s.Index, s.V2LegacyStateCount)
		}
		e.w.i64(s.V2Duration)
		e.w.i32(s.V2LegacyStateCount)
	}
	for _, h := range []*OperatorStateHandle{s.ManagedOperatorState, s.RawOperatorState} {
		e.w.flag(h != nil)
		if h != nil {
			if err := e.operatorStateHandle(h); err != nil {
				return err
			}
		}
	}
	if err := e.keyed(s.ManagedKeyedState, "managed keyed state handle"); err != nil {
		return err
	}
	if err := e.keyed(s.RawKeyedState, "raw keyed state handle"); err != nil {
		return err
	}
	if version == 2 {
		if len(s.InputChannelState) != 0 || len(s.ResultSubpartitionState) != 0 {
			return fmt.Errorf("flink: subtask %d: version 2 cannot store channel state", s.Index)
		}
		return nil
	}
	for _, output := range []bool{false, true} {
		list := s.InputChannelState
		if output {
			list = s.ResultSubpartitionState
		}
		if err := e.w.count(len(list), "channel state handles"); err != nil {
			return err
		}
		for _, h := range list {
			if h == nil {
				return fmt.Errorf("flink: subtask %d: nil channel state handle", s.Index)
			}
			if err := e.channel(h, version, output); err != nil {
				return err
			}
		}
	}
	return nil
}
