package flink

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// This file holds the top level of a _metadata file: header, master states,
// operators and the version 4+ trailer.

// Magic is the number every _metadata file starts with
// (Checkpoints.HEADER_MAGIC_NUMBER).
const Magic uint32 = 0x4960672d

// MasterStateMagic starts every master state (MASTER_STATE_MAGIC_NUMBER).
const MasterStateMagic uint32 = 0xc96b1696

// MinVersion and MaxVersion bound the metadata versions this package reads
// and writes. Version 1 (Flink 1.2) is rejected by Flink itself.
const (
	MinVersion = 2
	MaxVersion = 6
)

// javaSerializationHeader starts every java.io.ObjectOutputStream stream
// (STREAM_MAGIC 0xACED, STREAM_VERSION 5).
var javaSerializationHeader = []byte{0xAC, 0xED, 0x00, 0x05}

// IsMetadata reports whether prefix starts with Magic, i.e. whether the file
// it was read from can be a _metadata file. prefix needs at least 4 bytes.
func IsMetadata(prefix []byte) bool {
	return len(prefix) >= 4 && binary.BigEndian.Uint32(prefix) == Magic
}

// Metadata is a decoded _metadata file.
//
// Layout: u32 Magic, i32 version, i64 checkpointId, i32 n × MasterState, i32
// m × OperatorState, then the trailer.
type Metadata struct {
	// Version is the format version, MinVersion to MaxVersion.
	Version int32
	// CheckpointID is the checkpoint (or savepoint) id, never negative.
	CheckpointID int64
	// MasterStates are the states of master hooks, kept opaque.
	MasterStates []MasterState
	// Operators in file order.
	Operators []*OperatorState
	// Trailer is everything after the last operator, kept verbatim. From
	// version 4 on it is Flink's Java-serialized CheckpointProperties
	// (starting AC ED 00 05), which this package does not interpret. Flink
	// writes no trailer in versions 2 and 3 and ignores one when reading;
	// one found there is kept too, so that the file is written back as read.
	Trailer []byte
}

// MasterState is the state of one master hook (a MasterTriggerRestoreHook),
// kept opaque: Data is what follows the magic number and the length.
//
// Layout: u32 MasterStateMagic, i32 len (> 0), bytes(len); those bytes hold
// i32 version, utf name, i32 n, bytes(n) (see Contents).
type MasterState struct {
	Data []byte
}

// MasterStateContents is what a master state's bytes hold.
type MasterStateContents struct {
	Version int32
	Name    string
	Payload []byte
}

// Contents decodes the master state's bytes the way Flink does, including
// its check that nothing follows the payload. Decode does not call it: a
// master state Flink could not read is still carried through unchanged.
// Offsets in errors are relative to the start of Data.
func (s MasterState) Contents() (MasterStateContents, error) {
	r := &reader{data: s.Data}
	var c MasterStateContents
	var err error
	if c.Version, err = r.i32("master state version"); err != nil {
		return c, err
	}
	if c.Name, err = r.utf("master state name"); err != nil {
		return c, err
	}
	if c.Payload, err = r.byteArray("master state payload"); err != nil {
		return c, err
	}
	if r.remaining() != 0 {
		return c, r.errAt(r.off, ErrInvalid, "%d trailing bytes in master state at offset %d", r.remaining(), r.off)
	}
	return c, nil
}

// Decode decodes a _metadata file of version 2 to 6.
//
// Decode accepts exactly the inputs it can write back unchanged: for every
// input it accepts, Encode returns the same bytes. It therefore rejects,
// besides what Flink rejects, the few encodings Flink's reader tolerates but
// its writer never produces (a boolean or presence flag other than 0 or 1,
// non-canonical modified UTF-8, a negative count other than the fully
// finished marker, a present-but-null operator state handle).
//
// Every error is a *DecodeError naming the byte offset at fault. Decode
// never panics, and allocates in proportion to len(data) (see the package
// documentation): a count is checked against the bytes left before anything
// is allocated for it. The returned Metadata does not alias data.
func Decode(data []byte) (*Metadata, error) {
	r := &reader{data: data}
	if err := r.need(4, "magic number"); err != nil {
		return nil, err
	}
	if !IsMetadata(data) {
		return nil, r.errAt(0, ErrNotMetadata, "not a checkpoint metadata file: magic 0x%08x at offset 0, want 0x%08x",
			binary.BigEndian.Uint32(data), Magic)
	}
	r.off = 4
	m := &Metadata{}
	var err error
	if m.Version, err = r.i32("version"); err != nil {
		return nil, err
	}
	if m.Version < MinVersion || m.Version > MaxVersion {
		return nil, r.errAt(4, ErrUnsupportedVersion, "unsupported metadata version %d at offset 4 (supported: %d to %d)",
			m.Version, MinVersion, MaxVersion)
	}
	if m.CheckpointID, err = r.i64("checkpoint id"); err != nil {
		return nil, err
	}
	if m.CheckpointID < 0 {
		return nil, r.errAt(8, ErrInvalid, "negative checkpoint id %d at offset 8", m.CheckpointID)
	}
	n, err := r.count("master state count", minMasterState)
	if err != nil {
		return nil, err
	}
	m.MasterStates = make([]MasterState, n)
	for i := range m.MasterStates {
		off := r.off
		magic, err := r.i32("master state magic number")
		if err != nil {
			return nil, err
		}
		if uint32(magic) != MasterStateMagic {
			return nil, r.errAt(off, ErrInvalid, "bad master state magic number 0x%08x at offset %d", uint32(magic), off)
		}
		loff := r.off
		if m.MasterStates[i].Data, err = r.byteArray("master state"); err != nil {
			return nil, err
		}
		if len(m.MasterStates[i].Data) == 0 {
			return nil, r.errAt(loff, ErrInvalid, "empty master state at offset %d", loff)
		}
	}
	if n, err = r.count("operator count", minOperatorSize(m.Version)); err != nil {
		return nil, err
	}
	m.Operators = make([]*OperatorState, n)
	for i := range m.Operators {
		if m.Operators[i], err = readOperator(r, m.Version); err != nil {
			return nil, err
		}
	}
	if m.Version >= 4 {
		if err := r.need(len(javaSerializationHeader), "checkpoint properties (Java serialization header)"); err != nil {
			return nil, err
		}
		if !bytes.HasPrefix(r.data[r.off:], javaSerializationHeader) {
			return nil, r.errAt(r.off, ErrInvalid, "checkpoint properties at offset %d do not start with the Java serialization header AC ED 00 05", r.off)
		}
	}
	if r.remaining() > 0 {
		m.Trailer = bytes.Clone(r.data[r.off:])
	}
	return m, nil
}

// Encode writes m in its version's layout. For a Metadata returned by Decode
// (and possibly changed through FileRef.SetPath), only what was changed
// differs from the decoded input. Encode fails, without panicking, on values
// the format cannot hold or Decode would reject: an unsupported version,
// fields a version does not have (names before version 5, finished subtasks
// in version 2, ...), strings over MaxStringBytes, unknown tags, a version
// 4+ trailer that is not a Java serialization stream, and so on.
func (m *Metadata) Encode() ([]byte, error) {
	if m.Version < MinVersion || m.Version > MaxVersion {
		return nil, fmt.Errorf("flink: unsupported metadata version %d (supported: %d to %d)", m.Version, MinVersion, MaxVersion)
	}
	if m.CheckpointID < 0 {
		return nil, fmt.Errorf("flink: negative checkpoint id %d", m.CheckpointID)
	}
	if m.Version >= 4 && !bytes.HasPrefix(m.Trailer, javaSerializationHeader) {
		return nil, fmt.Errorf("flink: version %d needs a trailer holding the Java-serialized checkpoint properties (starting AC ED 00 05)", m.Version)
	}
	e := &encoder{}
	e.w.buf = make([]byte, 0, 4096)
	e.w.u32(Magic)
	e.w.i32(m.Version)
	e.w.i64(m.CheckpointID)
	if err := e.w.count(len(m.MasterStates), "master states"); err != nil {
		return nil, err
	}
	for i, s := range m.MasterStates {
		if len(s.Data) == 0 {
			return nil, fmt.Errorf("flink: master state %d is empty", i)
		}
		e.w.u32(MasterStateMagic)
		if err := e.w.byteArray(s.Data, "master state"); err != nil {
			return nil, err
		}
	}
	if err := e.w.count(len(m.Operators), "operators"); err != nil {
		return nil, err
	}
	for _, op := range m.Operators {
		if err := e.operator(op, m.Version); err != nil {
			return nil, err
		}
	}
	e.w.buf = append(e.w.buf, m.Trailer...)
	return e.w.buf, nil
}
