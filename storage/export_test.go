package storage

import "slices"

// NewUploadOnlyBucket exposes the azblob writer wrapper to the external
// tests, which run the conformance suite through it over memblob.
var NewUploadOnlyBucket = newUploadOnlyBucket

// Pending lists the directories waiting for Sync, sorted.
func (sb *SyncBatch) Pending() []string {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	var out []string
	for d := range sb.dirs {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}
