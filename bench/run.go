package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Runner runs the tools as child processes with a fixed environment.
type Runner struct {
	Env     []string // environment of every child
	Verbose bool     // echo every command on stderr
	// ServerPID is the MinIO process whose CPU time is read around timed
	// runs (0: none).
	ServerPID int
}

// Timing is what one timed child run cost.
type Timing struct {
	Wall, CPU, ServerCPU time.Duration
}

// Timed flushes dirty pages with sync(2) (outside the timed region), then
// runs argv in dir and measures its wall time, its CPU time (getrusage of
// the child, which includes the children it waited for) and the storage
// server's CPU time.
func (r *Runner) Timed(ctx context.Context, dir string, argv ...string) (Timing, error) {
	syscall.Sync()
	srv0 := procCPU(r.ServerPID)
	cmd, out := r.command(ctx, dir, argv)
	start := time.Now()
	err := cmd.Run()
	t := Timing{Wall: time.Since(start), ServerCPU: procCPU(r.ServerPID) - srv0}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			t.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	if err != nil {
		return t, fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, tail(out.Bytes()))
	}
	return t, nil
}

// Run runs argv in dir untimed and returns its standard output.
func (r *Runner) Run(ctx context.Context, dir string, argv ...string) ([]byte, error) {
	cmd, out := r.command(ctx, dir, argv)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, tail(out.Bytes()))
	}
	return stdout.Bytes(), nil
}

// command builds the child; its stdout and stderr go to the returned buffer.
func (r *Runner) command(ctx context.Context, dir string, argv []string) (*exec.Cmd, *bytes.Buffer) {
	if r.Verbose {
		fmt.Fprintf(os.Stderr, "+ (cd %s && %s)\n", dir, strings.Join(argv, " "))
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = r.Env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	return cmd, &out
}

// tail returns the last lines of a child's output, for error messages.
func tail(b []byte) string {
	const n = 2000
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// procCPU returns the user + system CPU time of process pid from
// /proc/<pid>/stat (0 if pid is 0 or unreadable). Clock ticks are assumed
// to be 100 per second, as on every Linux build in use.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name: utime is the 14th
	// field overall, stime the 15th.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * (time.Second / 100)
}

// findServer returns the pid of a process whose command line contains every
// one of words (e.g. "minio" and "127.0.0.1:9000"), or 0.
func findServer(words ...string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		cl := string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		all := true
		for _, w := range words {
			all = all && strings.Contains(cl, w)
		}
		if all {
			return pid
		}
	}
	return 0
}

// ensureTools installs restic and rclone with apt-get when either is
// missing (running apt-get update first when the install alone fails).
func ensureTools(ctx context.Context) error {
	_, e1 := exec.LookPath("restic")
	_, e2 := exec.LookPath("rclone")
	if e1 == nil && e2 == nil {
		return nil
	}
	fmt.Fprintln(os.Stderr, "bench: installing restic and rclone with apt-get")
	install := func() error {
		cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "-q", "restic", "rclone")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get install restic rclone: %w\n%s", err, tail(out))
		}
		return nil
	}
	if install() == nil {
		return nil
	}
	if out, err := exec.CommandContext(ctx, "apt-get", "update", "-q").CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get update: %w\n%s", err, tail(out))
	}
	return install()
}
