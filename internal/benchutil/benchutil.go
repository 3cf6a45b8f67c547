// Package benchutil holds what the benchmarks of several packages share:
// rounds, settling the page cache, CPU accounting, and the S3 server's CPU.
// It is imported by _test files only.
package benchutil

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gocloud.dev/blob"
	"golang.org/x/sync/errgroup"

	"github.com/ckpt-dev/ckpt/storage/storagetest"
)

// Rounds is CKPT_BENCH_ROUNDS (default 1): how many times a benchmark runs
// its whole list of sub-benchmarks, so that their figures alternate.
func Rounds(b *testing.B) int {
	v := os.Getenv("CKPT_BENCH_ROUNDS")
	if v == "" {
		return 1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("CKPT_BENCH_ROUNDS=%q: want a positive number", v)
	}
	return n
}

// Settle flushes dirty pages (sync(2)) and then reads every regular file
// below dir ("" for none) once, so that the next timed iteration neither
// pays for earlier writes nor reads its source from disk.
func Settle(b *testing.B, dir string) {
	b.Helper()
	syscall.Sync()
	if dir == "" {
		return
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(io.Discard, f)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}

// CPUTime returns the user and system CPU time used so far by this process
// and its waited-for children.
func CPUTime(b *testing.B) time.Duration {
	var self, children syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &self); err != nil {
		b.Fatal(err)
	}
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children); err != nil {
		b.Fatal(err)
	}
	return time.Duration(self.Utime.Nano() + self.Stime.Nano() + children.Utime.Nano() + children.Stime.Nano())
}

// DeletePrefix deletes every object under prefix, 16 at a time.
func DeletePrefix(ctx context.Context, bk *blob.Bucket, prefix string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	it := bk.List(&blob.ListOptions{Prefix: prefix})
	for {
		o, err := it.Next(gctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			_ = g.Wait()
			return err
		}
		g.Go(func() error { return bk.Delete(gctx, o.Key) })
	}
	return g.Wait()
}

// ServerCPU returns the CPU time (user and system) used so far by the S3
// server CKPT_TEST_S3_URL's endpoint names, when that is a MinIO process on
// this machine (as scripts/test-services starts), found in /proc by its
// listening address; false otherwise. USER_HZ is taken to be 100.
func ServerCPU() (time.Duration, bool) {
	serverOnce.Do(func() {
		u, err := url.Parse(os.Getenv(storagetest.EnvS3))
		if err != nil {
			return
		}
		ep, err := url.Parse(u.Query().Get("endpoint"))
		if err != nil || ep.Host == "" {
			return
		}
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			if _, err := strconv.Atoi(e.Name()); err != nil {
				continue
			}
			cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if err != nil {
				continue
			}
			args := strings.Split(string(cmd), "\x00")
			if strings.Contains(filepath.Base(args[0]), "minio") && slices.Contains(args, ep.Host) {
				serverStat = filepath.Join("/proc", e.Name(), "stat")
				return
			}
		}
	})
	if serverStat == "" {
		return 0, false
	}
	data, err := os.ReadFile(serverStat)
	if err != nil {
		return 0, false
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, true
}

var (
	serverOnce sync.Once
	serverStat string // /proc/<pid>/stat of the S3 server, "" if not found
)
