// Package scaletest checks that inspect, gc and relocate stay near-linear
// in time and bounded in memory on large synthetic jobs: a checkpoint of
// 1,000,000 files and a job of 10,000 checkpoints (with CKPT_SCALE=1; the
// normal run uses 10,000 files and 1,000 checkpoints). It holds tests only
// and logs its figures as "reliability: scale ..." lines for
// scripts/reliability; it never fails on time.
package scaletest
