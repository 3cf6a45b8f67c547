package cmd

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/ckpt-dev/ckpt/progress"
	"github.com/ckpt-dev/ckpt/storage"
)

// humanBytes formats n in SI units ("2.3 MB").
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

// reporter returns the progress reporter for this run: a byte progress bar
// on stderr when it is a terminal and neither --json nor --quiet is set,
// otherwise nil.
func (f *Factory) reporter() progress.Reporter {
	if !f.StderrTTY || f.JSON || f.Quiet {
		return nil
	}
	return &bar{w: f.Err}
}

// warn prints a warning on stderr unless --quiet.
func (f *Factory) warn(format string, args ...any) {
	if !f.Quiet {
		fmt.Fprintf(f.Err, "ckpt: warning: "+format+"\n", args...)
	}
}

type bar struct {
	w  io.Writer
	mu sync.Mutex
	pb *progressbar.ProgressBar
}

func (b *bar) Start(desc string, total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pb = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(b.w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetWidth(30),
	)
}

func (b *bar) Add(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pb != nil {
		_ = b.pb.Add64(n)
	}
}

func (b *bar) Done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pb != nil {
		_ = b.pb.Finish()
		b.pb = nil
	}
}

// keyDisplay names object key of loc for people, as a location in the form
// the user gave (credentials redacted).
func keyDisplay(loc *storage.Location, key string) string {
	if loc.Scheme == storage.SchemeFile {
		return "/" + key
	}
	base, query, _ := strings.Cut(loc.Display, "?")
	out := loc.Scheme + "://" + hostOf(base) + "/" + key
	if query != "" {
		out += "?" + query
	}
	return out
}

func hostOf(u string) string {
	_, rest, _ := strings.Cut(u, "://")
	h, _, _ := strings.Cut(rest, "/")
	return h
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
