package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Machine describes where the benchmark ran, for the report.
type Machine struct {
	CPU, Kernel, GoVersion, Restic, Rclone, Filesystem string
	NProc                                              int
	MemGiB                                             float64
	Load                                               *LoadSampler
}

// describeMachine gathers the machine and tool versions. Missing facts are
// reported as "unknown" rather than failing the run.
func describeMachine(ctx context.Context, work string) Machine {
	m := Machine{NProc: runtime.NumCPU(), CPU: "unknown", Filesystem: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		fmt.Sscanf(string(b), "MemTotal: %f kB", &kb)
		m.MemGiB = kb / (1 << 20)
	}
	first := func(name string, args ...string) string {
		out, err := exec.CommandContext(ctx, name, args...).Output()
		if err != nil {
			return "unknown"
		}
		l, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return l
	}
	m.Kernel = first("uname", "-sr")
	m.GoVersion = first("go", "version")
	m.Restic = first("restic", "version")
	m.Rclone = first("rclone", "version")
	if fs := first("stat", "-f", "-c", "%T", work); fs != "unknown" {
		m.Filesystem = fs
	}
	if dev := first("findmnt", "-n", "-o", "SOURCE,FSTYPE,OPTIONS", "--target", work); dev != "unknown" {
		m.Filesystem = dev
	}
	return m
}

// LoadSampler records the 1-minute load average every few seconds while a
// run lasts.
type LoadSampler struct {
	mu       sync.Mutex
	min, max float64
	n        int
	sum      float64
	stop     chan struct{}
	done     chan struct{}
}

// startLoadSampler samples /proc/loadavg every interval until Stop.
func startLoadSampler(interval time.Duration) *LoadSampler {
	s := &LoadSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *LoadSampler) sample() {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return
	}
	f, err := strconv.ParseFloat(string(bytes.Fields(b)[0]), 64)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == 0 || f < s.min {
		s.min = f
	}
	s.max = max(s.max, f)
	s.sum += f
	s.n++
}

// Stop ends the sampling; String may be called afterwards.
func (s *LoadSampler) Stop() {
	close(s.stop)
	<-s.done
}

// String summarises the samples: min, mean and max of the load average.
func (s *LoadSampler) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == 0 {
		return "unknown"
	}
	return fmt.Sprintf("%.1f–%.1f (mean %.1f over %d samples)", s.min, s.max, s.sum/float64(s.n), s.n)
}
