package metadata

import (
	"crypto/sha256"
	"encoding/hex"
)

func sealForTest(headAndBody string) string {
	sum := sha256.Sum256([]byte(headAndBody))
	return headAndBody + "sha256 " + hex.EncodeToString(sum[:]) + "\n"
}
