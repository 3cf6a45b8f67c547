// Package proctest runs the ckpt binary as a real process and interrupts it,
// as an operator or a crashing machine would: SIGTERM and SIGINT (the command
// must stop within a bound, exit 130, leave no temporary files and storage
// consistent) and SIGKILL at random moments (every `_metadata` present must
// still verify and a re-run must converge). It holds tests only.
//
// The binary is the real main package built once per test run, with main.go
// swapped through `go build -overlay` for a copy whose factory delays every
// storage operation by CKPT_TEST_OP_DELAY, so that a small store takes long
// enough to be interrupted at a chosen moment. No production code sleeps.
package proctest
