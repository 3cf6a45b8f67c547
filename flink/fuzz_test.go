package flink

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"testing"
)

// FuzzDecode checks the package's invariants on arbitrary input: Decode
// never panics; whatever it accepts, Encode writes back byte for byte, and
// decoding that output gives a structurally equal Metadata. Walk, FileRefs
// and Summary must not panic on anything Decode accepts.
//
// Seeds: the hand-made vectors, the generated fixtures, and the real Flink
// fixtures when CKPT_FLINK_FIXTURES is set; crashers found so far live in
// testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	for _, data := range corpus(f) {
		f.Add(data)
	}
	if os.Getenv(fixturesEnv) != "" {
		for _, fx := range sharedFixtures(f) {
			f.Add(fx.data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is a %T, not a *DecodeError", err, err)
			}
			return
		}
		out, err := m.Encode()
		if err != nil {
			t.Fatalf("Decode accepted the input but Encode failed: %v", err)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("Encode is not byte-identical: first difference at %d (len %d vs %d)",
				firstDiff(out, data), len(out), len(data))
		}
		m2, err := Decode(out)
		if err != nil {
			t.Fatalf("Decode(Encode(x)): %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatal("Decode(Encode(x)) differs structurally from x")
		}
		_ = m.Summary()
		for _, r := range m.FileRefs() {
			_ = r.String()
		}
	})
}
