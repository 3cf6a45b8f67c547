// Package progress is the interface through which core packages report the
// progress of long operations. Core packages never draw anything: cmd/
// adapts a Reporter to a terminal progress bar, or passes nil for none.
//
// Invariants: every function here accepts a nil Reporter and then does
// nothing, so core code never checks for nil; a Reporter must be safe for
// concurrent use because uploads and downloads run in parallel.
package progress

import "io"

// Reporter receives progress in units the caller chose (bytes for transfers,
// objects for deletes). Implementations must be safe for concurrent use.
type Reporter interface {
	// Start announces a new phase with a description and its total
	// (-1 if unknown).
	Start(description string, total int64)
	// Add reports n more units done.
	Add(n int64)
	// Done ends the current phase.
	Done()
}

// Start calls r.Start if r is not nil.
func Start(r Reporter, description string, total int64) {
	if r != nil {
		r.Start(description, total)
	}
}

// Add calls r.Add if r is not nil.
func Add(r Reporter, n int64) {
	if r != nil && n != 0 {
		r.Add(n)
	}
}

// Done calls r.Done if r is not nil.
func Done(r Reporter) {
	if r != nil {
		r.Done()
	}
}

// Reader wraps rd so that every byte read is reported to r. With a nil r it
// returns rd itself.
func Reader(rd io.Reader, r Reporter) io.Reader {
	if r == nil {
		return rd
	}
	return &reader{rd: rd, r: r}
}

type reader struct {
	rd io.Reader
	r  Reporter
}

func (c *reader) Read(p []byte) (int, error) {
	n, err := c.rd.Read(p)
	c.r.Add(int64(n))
	return n, err
}
