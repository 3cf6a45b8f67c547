package flink

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// Modified UTF-8 vectors, written from the rules of
// java.io.DataOutputStream.writeUTF.
var mutf8Vectors = []struct {
	name string
	s    string
	enc  []byte
}{
	{"empty", "", nil},
	{"ascii", "Flat Map", []byte("Flat Map")},
	{"nul", "a\x00b", []byte{'a', 0xC0, 0x80, 'b'}},
	{"only nul", "\x00", []byte{0xC0, 0x80}},
	{"two bytes", "é", []byte{0xC3, 0xA9}},
	{"U+07FF", "\u07ff", []byte{0xDF, 0xBF}},
	{"U+0800", "\u0800", []byte{0xE0, 0xA0, 0x80}},
	{"three bytes", "€", []byte{0xE2, 0x82, 0xAC}},
	{"U+FFFD", "\ufffd", []byte{0xEF, 0xBF, 0xBD}},
	{"U+FFFF", "\uffff", []byte{0xEF, 0xBF, 0xBF}},
	// U+1F600 = D83D DE00 as UTF-16.
	{"emoji", "😀", []byte{0xED, 0xA0, 0xBD, 0xED, 0xB8, 0x80}},
	// U+10000 = D800 DC00, U+10FFFF = DBFF DFFF.
	{"U+10000", "\U00010000", []byte{0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80}},
	{"U+10FFFF", "\U0010ffff", []byte{0xED, 0xAF, 0xBF, 0xED, 0xBF, 0xBF}},
	{"mixed", "Ünïcødé 😀\x00!", []byte{
		0xC3, 0x9C, 'n', 0xC3, 0xAF, 'c', 0xC3, 0xB8, 'd', 0xC3, 0xA9, ' ',
		0xED, 0xA0, 0xBD, 0xED, 0xB8, 0x80, 0xC0, 0x80, '!'}},
	// Unpaired surrogates, kept in generalized UTF-8 form.
	{"lone high", "a\xed\xa0\xbdb", []byte{'a', 0xED, 0xA0, 0xBD, 'b'}},
	{"lone low", "\xed\xb8\x80", []byte{0xED, 0xB8, 0x80}},
	{"low then high", "\xed\xb8\x80\xed\xa0\xbd", []byte{0xED, 0xB8, 0x80, 0xED, 0xA0, 0xBD}},
	{"high high low", "\xed\xa0\xbd😀", []byte{0xED, 0xA0, 0xBD, 0xED, 0xA0, 0xBD, 0xED, 0xB8, 0x80}},
}

func TestModifiedUTF8Vectors(t *testing.T) {
	for _, v := range mutf8Vectors {
		t.Run(v.name, func(t *testing.T) {
			enc, err := appendModifiedUTF8(nil, v.s)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if !bytes.Equal(enc, v.enc) {
				t.Fatalf("encode %q = % x, want % x", v.s, enc, v.enc)
			}
			dec, bad, err := decodeModifiedUTF8(v.enc)
			if err != nil {
				t.Fatalf("decode: %v at %d", err, bad)
			}
			if dec != v.s {
				t.Fatalf("decode % x = %q, want %q", v.enc, dec, v.s)
			}
			if n, err := ModifiedUTF8Len(v.s); err != nil || n != len(v.enc) {
				t.Fatalf("ModifiedUTF8Len = %d, %v; want %d", n, err, len(v.enc))
			}
		})
	}
}

func TestModifiedUTF8Rejects(t *testing.T) {
	for _, c := range []struct {
		name string
		enc  []byte
		bad  int
	}{
		{"raw nul", []byte{'a', 0x00}, 1},
		{"overlong 2-byte", []byte{0xC1, 0x81}, 0},
		{"overlong 3-byte", []byte{0xE0, 0x81, 0x81}, 0},
		{"overlong nul 3-byte", []byte{0xE0, 0x80, 0x80}, 0},
		{"continuation first", []byte{0x80}, 0},
		{"4-byte lead", []byte{0xF0, 0x9F, 0x98, 0x80}, 0},
		{"bad continuation", []byte{0xC3, 0x41}, 1},
		{"bad third", []byte{0xE2, 0x82, 0x41}, 2},
		{"partial 2", []byte{'x', 0xC3}, 1},
		{"partial 3", []byte{0xE2, 0x82}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, bad, err := decodeModifiedUTF8(c.enc)
			if err == nil {
				t.Fatalf("decode % x succeeded", c.enc)
			}
			if bad != c.bad {
				t.Errorf("bad index %d, want %d (%v)", bad, c.bad, err)
			}
		})
	}
	for _, s := range []string{"\xff", "a\xc3", "\xed\xa0\xbd\xed\xb8\x80"} {
		if _, err := appendModifiedUTF8(nil, s); err == nil {
			t.Errorf("encode %q succeeded", s)
		}
	}
}

func TestUTFLengthLimit(t *testing.T) {
	var w writer
	if err := w.utf(strings.Repeat("a", MaxStringBytes), "s"); err != nil {
		t.Fatalf("65535 bytes: %v", err)
	}
	if len(w.buf) != MaxStringBytes+2 || w.buf[0] != 0xFF || w.buf[1] != 0xFF {
		t.Fatalf("bad prefix % x, len %d", w.buf[:2], len(w.buf))
	}
	w = writer{}
	if err := w.utf(strings.Repeat("a", MaxStringBytes+1), "s"); err == nil {
		t.Fatal("65536 bytes accepted")
	}
	// 21846 × "€" = 65538 bytes of modified UTF-8 though only 21846 runes.
	if err := w.utf(strings.Repeat("€", 21846), "s"); err == nil {
		t.Fatal("65538 bytes accepted")
	}
	// NUL doubles: 32768 NULs take 65536 bytes.
	if err := w.utf(strings.Repeat("\x00", 32768), "s"); err == nil {
		t.Fatal("32768 NULs accepted")
	}
	if len(w.buf) != 0 {
		t.Fatalf("failed writes left %d bytes behind", len(w.buf))
	}
}

func TestReaderPrimitives(t *testing.T) {
	r := &reader{data: []byte{0x00, 0x03, 'a', 0xC0, 0x80, 0xFF, 0xFF, 0xFF, 0xFE, 0x01}}
	s, err := r.utf("s")
	if err != nil || s != "a\x00" {
		t.Fatalf("utf = %q, %v", s, err)
	}
	v, err := r.i32("i")
	if err != nil || v != -2 {
		t.Fatalf("i32 = %d, %v", v, err)
	}
	_, err = r.i32("tail")
	var de *DecodeError
	if !errors.As(err, &de) || de.Offset != 9 || !errors.Is(err, ErrTruncated) {
		t.Fatalf("want truncation at 9, got %v", err)
	}
	if got, want := err.Error(), "flink: unexpected end of data at offset 9 reading tail"; got != want {
		t.Fatalf("error %q, want %q", got, want)
	}
	// A count that the remaining bytes cannot hold.
	r = &reader{data: []byte{0x7F, 0xFF, 0xFF, 0xFF, 1, 2, 3}}
	if _, err := r.count("things", 1); !errors.Is(err, ErrLimit) {
		t.Fatalf("count: %v", err)
	}
	r = &reader{data: []byte{0x00, 0x00, 0x00, 0x03, 1, 2, 3}}
	if n, err := r.count("things", 1); err != nil || n != 3 {
		t.Fatalf("count = %d, %v", n, err)
	}
}
