package flink

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// This file holds the primitive layer: big-endian integers, Java modified
// UTF-8 strings and length-prefixed byte arrays, read with bounds checks and
// written the way java.io.DataOutputStream writes them, plus the error type
// every decoding failure is reported with.

// MaxStringBytes is the largest number of modified UTF-8 bytes a string can
// take in the format (the u16 length prefix of DataOutputStream.writeUTF).
const MaxStringBytes = 65535

// maxDepth bounds how deeply handles may nest inside one another (a
// changelog handle holding key-group handles holding stream handles, a
// key-group handle used as a stream handle wrapping another, ...). Flink
// itself never nests more than four levels deep.
const maxDepth = 32

// Sentinel errors. Every error returned by Decode is a *DecodeError whose
// Unwrap returns one of these, so callers can tell the classes apart with
// errors.Is.
var (
	// ErrNotMetadata: the input does not start with Magic.
	ErrNotMetadata = errors.New("flink: not a checkpoint metadata file")
	// ErrUnsupportedVersion: the version is not one of 2 to 6.
	ErrUnsupportedVersion = errors.New("flink: unsupported metadata version")
	// ErrTruncated: the input ends in the middle of a value.
	ErrTruncated = errors.New("flink: unexpected end of data")
	// ErrUnknownTag: a type tag this package (and Flink) does not know.
	ErrUnknownTag = errors.New("flink: unknown tag")
	// ErrInvalid: a value Flink rejects when reading, or one Flink's writer
	// never produces and that therefore could not be written back
	// byte-identically (a negative count, a boolean other than 0 or 1,
	// non-canonical modified UTF-8, ...).
	ErrInvalid = errors.New("flink: invalid value")
	// ErrLimit: a count or length larger than the remaining input could
	// possibly hold, or handles nested deeper than the package allows.
	ErrLimit = errors.New("flink: limit exceeded")
)

// DecodeError describes why Decode rejected its input and where.
type DecodeError struct {
	// Offset is the byte offset in the input of the value at fault.
	Offset int
	// Err is the sentinel error classifying the failure (ErrTruncated,
	// ErrUnknownTag, ...).
	Err error
	msg string
}

// Error returns the message, always prefixed with "flink: " and always
// naming the offset.
func (e *DecodeError) Error() string { return "flink: " + e.msg }

// Unwrap returns the sentinel error classifying e.
func (e *DecodeError) Unwrap() error { return e.Err }

// reader decodes primitives from an in-memory buffer. It never reads past the
// end and never allocates more than the bytes left to read justify.
type reader struct {
	data  []byte
	off   int
	depth int
}

func (r *reader) remaining() int { return len(r.data) - r.off }

func (r *reader) errAt(off int, kind error, format string, args ...any) error {
	return &DecodeError{Offset: off, Err: kind, msg: fmt.Sprintf(format, args...)}
}

func (r *reader) truncated(off int, what string) error {
	return r.errAt(off, ErrTruncated, "unexpected end of data at offset %d reading %s", off, what)
}

func (r *reader) need(n int, what string) error {
	if n < 0 || r.remaining() < n {
		return r.truncated(r.off, what)
	}
	return nil
}

func (r *reader) u8(what string) (byte, error) {
	if err := r.need(1, what); err != nil {
		return 0, err
	}
	b := r.data[r.off]
	r.off++
	return b, nil
}

func (r *reader) i32(what string) (int32, error) {
	if err := r.need(4, what); err != nil {
		return 0, err
	}
	v := int32(binary.BigEndian.Uint32(r.data[r.off:]))
	r.off += 4
	return v, nil
}

func (r *reader) i64(what string) (int64, error) {
	if err := r.need(8, what); err != nil {
		return 0, err
	}
	v := int64(binary.BigEndian.Uint64(r.data[r.off:]))
	r.off += 8
	return v, nil
}

// boolean reads a DataOutputStream boolean, accepting only the 0 and 1 that
// writeBoolean produces.
func (r *reader) boolean(what string) (bool, error) {
	off := r.off
	b, err := r.u8(what)
	if err != nil {
		return false, err
	}
	if b > 1 {
		return false, r.errAt(off, ErrInvalid, "invalid boolean %d in %s at offset %d", b, what, off)
	}
	return b == 1, nil
}

// flag reads an i32 that Flink writes as 0 or 1.
func (r *reader) flag(what string) (bool, error) {
	off := r.off
	v, err := r.i32(what)
	if err != nil {
		return false, err
	}
	if v != 0 && v != 1 {
		return false, r.errAt(off, ErrInvalid, "invalid %s %d at offset %d (Flink writes 0 or 1)", what, v, off)
	}
	return v == 1, nil
}

// count reads an i32 element count and checks that the input left could
// hold that many elements of at least minSize bytes each, so that a slice
// of that length can be allocated safely.
func (r *reader) count(what string, minSize int) (int, error) {
	off := r.off
	v, err := r.i32(what)
	if err != nil {
		return 0, err
	}
	if v < 0 {
		return 0, r.errAt(off, ErrInvalid, "negative %s %d at offset %d", what, v, off)
	}
	if minSize < 1 {
		minSize = 1
	}
	if int64(v) > int64(r.remaining()/minSize) {
		return 0, r.errAt(off, ErrLimit, "%s %d at offset %d exceeds what the remaining %d bytes can hold",
			what, v, off, r.remaining())
	}
	return int(v), nil
}

// byteArray reads an i32 length followed by that many bytes, returning a copy.
func (r *reader) byteArray(what string) ([]byte, error) {
	off := r.off
	n, err := r.i32(what)
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, r.errAt(off, ErrInvalid, "negative %s length %d at offset %d", what, n, off)
	}
	if int64(n) > int64(r.remaining()) {
		return nil, r.truncated(r.off, what)
	}
	b := make([]byte, n)
	copy(b, r.data[r.off:])
	r.off += int(n)
	return b, nil
}

// utf reads a DataOutputStream.writeUTF string: u16 length, then modified
// UTF-8. Only the canonical encoding writeUTF produces is accepted, so that
// writing the decoded string back gives the same bytes.
func (r *reader) utf(what string) (string, error) {
	if err := r.need(2, what); err != nil {
		return "", err
	}
	n := int(binary.BigEndian.Uint16(r.data[r.off:]))
	r.off += 2
	if err := r.need(n, what); err != nil {
		return "", err
	}
	start := r.off
	s, bad, err := decodeModifiedUTF8(r.data[start : start+n])
	if err != nil {
		return "", r.errAt(start+bad, ErrInvalid, "%v in %s at offset %d", err, what, start+bad)
	}
	r.off += n
	return s, nil
}

// enter and leave bound the nesting of handles.
func (r *reader) enter(what string) error {
	if r.depth >= maxDepth {
		return r.errAt(r.off, ErrLimit, "%s nested deeper than %d levels at offset %d", what, maxDepth, r.off)
	}
	r.depth++
	return nil
}

func (r *reader) leave() { r.depth-- }

// decodeModifiedUTF8 decodes Java modified UTF-8 (the body of a writeUTF
// string). Characters become UTF-8; a surrogate pair (CESU-8, two 3-byte
// sequences) becomes the 4-byte UTF-8 of the supplementary character; an
// unpaired surrogate, which a Java string may hold, is kept as its 3-byte
// generalized UTF-8 form (WTF-8), which is not valid UTF-8 but round-trips.
// Anything java.io.DataInputStream.readUTF rejects is rejected, and so is
// anything it accepts that writeUTF never writes: a raw 0x00 byte and
// overlong forms other than C0 80 for U+0000. On error, bad is the index of
// the offending byte.
func decodeModifiedUTF8(b []byte) (s string, bad int, err error) {
	ascii := true
	for _, c := range b {
		if c == 0 || c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return string(b), 0, nil
	}
	out := make([]byte, 0, len(b)+len(b)/2)
	pendingHigh := -1 // index in out of an unpaired high surrogate, if the last unit was one
	var pendingUnit rune
	for i := 0; i < len(b); {
		c := b[i]
		var u rune
		var size int
		switch {
		case c == 0:
			return "", i, errors.New("raw NUL byte (writeUTF encodes U+0000 as C0 80)")
		case c < 0x80:
			u, size = rune(c), 1
		case c>>5 == 0x6: // 110xxxxx 10xxxxxx
			if i+1 >= len(b) {
				return "", i, errors.New("malformed modified UTF-8: partial character at end")
			}
			c2 := b[i+1]
			if c2&0xC0 != 0x80 {
				return "", i + 1, errors.New("malformed modified UTF-8")
			}
			u, size = rune(c&0x1F)<<6|rune(c2&0x3F), 2
			if u != 0 && u < 0x80 {
				return "", i, errors.New("non-canonical (overlong) modified UTF-8")
			}
		case c>>4 == 0xE: // 1110xxxx 10xxxxxx 10xxxxxx
			if i+2 >= len(b) {
				return "", i, errors.New("malformed modified UTF-8: partial character at end")
			}
			c2, c3 := b[i+1], b[i+2]
			if c2&0xC0 != 0x80 {
				return "", i + 1, errors.New("malformed modified UTF-8")
			}
			if c3&0xC0 != 0x80 {
				return "", i + 2, errors.New("malformed modified UTF-8")
			}
			u, size = rune(c&0x0F)<<12|rune(c2&0x3F)<<6|rune(c3&0x3F), 3
			if u < 0x800 {
				return "", i, errors.New("non-canonical (overlong) modified UTF-8")
			}
		default:
			return "", i, errors.New("malformed modified UTF-8")
		}
		i += size
		switch {
		case u >= 0xDC00 && u <= 0xDFFF && pendingHigh >= 0:
			// Low surrogate completing a pair: replace the high surrogate
			// written tentatively with the supplementary character.
			out = out[:pendingHigh]
			out = utf8.AppendRune(out, 0x10000+(pendingUnit-0xD800)<<10+(u-0xDC00))
			pendingHigh = -1
			continue
		case u >= 0xD800 && u <= 0xDBFF:
			pendingHigh, pendingUnit = len(out), u
			out = append3(out, u)
			continue
		case u >= 0xDC00 && u <= 0xDFFF:
			out = append3(out, u)
		default:
			out = utf8.AppendRune(out, u)
		}
		pendingHigh = -1
	}
	return string(out), 0, nil
}

// append3 appends the 3-byte (generalized) UTF-8 form of a 16-bit code
// unit u >= 0x800; for a surrogate that is ED A0..BF 80..BF.
func append3(out []byte, u rune) []byte {
	return append(out, 0xE0|byte(u>>12), 0x80|byte(u>>6)&0x3F, 0x80|byte(u)&0x3F)
}

// surrogateAt reports whether s[i:] starts with the generalized UTF-8 form
// of a surrogate code unit, and returns it.
func surrogateAt(s string, i int) (rune, bool) {
	if i+2 >= len(s) || s[i] != 0xED || s[i+1] < 0xA0 || s[i+1] > 0xBF || s[i+2]&0xC0 != 0x80 {
		return 0, false
	}
	return 0xD000 | rune(s[i+1]&0x3F)<<6 | rune(s[i+2]&0x3F), true
}

// appendModifiedUTF8 appends the modified UTF-8 form of s (without length).
// s must be valid UTF-8, except that it may hold unpaired surrogates in their
// 3-byte generalized form as decodeModifiedUTF8 produces them; a high
// surrogate directly followed by a low one must be written as the
// supplementary character instead.
func appendModifiedUTF8(out []byte, s string) ([]byte, error) {
	for i := 0; i < len(s); {
		c := s[i]
		if c != 0 && c < 0x80 {
			out = append(out, c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			u, ok := surrogateAt(s, i)
			if !ok {
				return out, fmt.Errorf("invalid UTF-8 at byte %d", i)
			}
			if u <= 0xDBFF {
				if v, ok := surrogateAt(s, i+3); ok && v >= 0xDC00 {
					return out, fmt.Errorf("surrogate pair written as two surrogates at byte %d", i)
				}
			}
			out = append3(out, u)
			i += 3
			continue
		}
		i += size
		switch {
		case r == 0:
			out = append(out, 0xC0, 0x80)
		case r < 0x800:
			out = append(out, 0xC0|byte(r>>6), 0x80|byte(r)&0x3F)
		case r < 0x10000:
			out = append3(out, r)
		default:
			r -= 0x10000
			out = append3(out, 0xD800+(r>>10))
			out = append3(out, 0xDC00+(r&0x3FF))
		}
	}
	return out, nil
}

// ModifiedUTF8Len returns the number of bytes s takes in Java modified UTF-8
// (without the 2-byte length prefix), or an error if s cannot be written:
// invalid UTF-8 other than unpaired surrogates in generalized UTF-8 form.
func ModifiedUTF8Len(s string) (int, error) {
	b, err := appendModifiedUTF8(nil, s)
	if err != nil {
		return 0, fmt.Errorf("flink: %w", err)
	}
	return len(b), nil
}

// writer appends primitives the way java.io.DataOutputStream writes them.
type writer struct {
	buf []byte
}

func (w *writer) u8(b byte) { w.buf = append(w.buf, b) }

func (w *writer) u32(v uint32) { w.buf = binary.BigEndian.AppendUint32(w.buf, v) }

func (w *writer) i32(v int32) { w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(v)) }

func (w *writer) i64(v int64) { w.buf = binary.BigEndian.AppendUint64(w.buf, uint64(v)) }

func (w *writer) boolean(b bool) {
	if b {
		w.u8(1)
	} else {
		w.u8(0)
	}
}

func (w *writer) flag(b bool) {
	if b {
		w.i32(1)
	} else {
		w.i32(0)
	}
}

func (w *writer) count(n int, what string) error {
	if n > 1<<31-1 {
		return fmt.Errorf("flink: too many %s (%d) for an i32 count", what, n)
	}
	w.i32(int32(n))
	return nil
}

func (w *writer) byteArray(b []byte, what string) error {
	if err := w.count(len(b), what); err != nil {
		return err
	}
	w.buf = append(w.buf, b...)
	return nil
}

func (w *writer) utf(s string, what string) error {
	start := len(w.buf)
	w.buf = append(w.buf, 0, 0)
	var err error
	w.buf, err = appendModifiedUTF8(w.buf, s)
	if err != nil {
		w.buf = w.buf[:start]
		return fmt.Errorf("flink: cannot write %s %q: %w", what, s, err)
	}
	n := len(w.buf) - start - 2
	if n > MaxStringBytes {
		w.buf = w.buf[:start]
		return fmt.Errorf("flink: %s takes %d bytes of modified UTF-8, more than the %d allowed", what, n, MaxStringBytes)
	}
	binary.BigEndian.PutUint16(w.buf[start:], uint16(n))
	return nil
}
