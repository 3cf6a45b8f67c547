package flinkjob_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/ckpt-dev/ckpt/flinkjob"
)

// TestGCScenarios runs the scenarios in testdata/flink-gc on Flink job
// directories built with the codec's writer in a temporary directory. Commands:
//
//	checkpoint job=J id=N [shared=a,b] [private=p,q] [abs=key,...] [segments=m] [size=N]
//	                                  write the files (shared/ ones only if
//	                                  missing) and then chk-N/_metadata
//	incomplete job=J id=N files=a,b   chk-N/ objects without _metadata
//	put key=K [size=N]                any object (key relative to the bucket)
//	corrupt job=J id=N                truncate chk-N/_metadata
//	advance by=DURATION               move the clock forward
//	gc job=J [job=J2] [retain=N] [keep-within=D] [keep=ID...] [min-age=D] [dry-run]
//	ls [job=J]                        the objects under J (or everything)
//
// Rewrite the expected output with `go test ./flinkjob -run TestGCScenarios -rewrite`.
func TestGCScenarios(t *testing.T) {
	datadriven.Walk(t, "../testdata/flink-gc", func(t *testing.T, path string) {
		w := newFileWorld(t)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			arg := func(key, def string) string {
				if a, ok := d.Arg(key); ok {
					if len(a.Vals) == 0 {
						return "true"
					}
					return a.Vals[0]
				}
				return def
			}
			list := func(key string) []string {
				var out []string
				if a, ok := d.Arg(key); ok {
					for _, v := range a.Vals {
						out = append(out, strings.Split(v, ",")...)
					}
				}
				return out
			}
			num := func(key string, def int) int {
				n, err := strconv.Atoi(arg(key, strconv.Itoa(def)))
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			dur := func(key, def string) time.Duration {
				v, err := time.ParseDuration(arg(key, def))
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
			job, id := arg("job", ""), int64(num("id", 0))
			dir := job + "/" + flinkjob.CheckpointDirName(id)
			switch d.Cmd {
			case "checkpoint":
				w.checkpoint(spec{job: job, id: id, shared: list("shared"), private: list("private"),
					abs: list("abs"), segments: list("segments"), size: num("size", 100)})
				return "ok"
			case "incomplete":
				for _, n := range list("files") {
					w.ensure(w.key(dir+"/"+n), num("size", 100))
				}
				return "ok"
			case "put":
				w.ensure(w.key(arg("key", "")), num("size", 100))
				return "ok"
			case "corrupt":
				key := w.key(dir + "/_metadata")
				data, err := w.loc.Bucket.ReadAll(w.ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				w.put(key, data[:40]) // a fixed offset, before any path
				return "ok"
			case "advance":
				w.offset += dur("by", "0s")
				return "ok"
			case "gc":
				var jobs []flinkjob.Job
				var keep []int64
				for _, a := range d.CmdArgs {
					switch a.Key {
					case "job":
						for _, v := range a.Vals {
							jobs = append(jobs, flinkjob.Job{Prefix: w.key(v)})
						}
					case "keep":
						for _, v := range a.Vals {
							n, _ := strconv.ParseInt(v, 10, 64)
							keep = append(keep, n)
						}
					}
				}
				opts := flinkjob.GCOptions{
					Policy: flinkjob.Policy{Retain: num("retain", 0), KeepWithin: dur("keep-within", "0s"), Keep: keep},
					MinAge: dur("min-age", "6h"), Now: w.now,
				}
				return w.gc(jobs, opts, d.HasArg("dry-run"))
			case "ls":
				return w.ls(arg("job", ""))
			}
			t.Fatalf("unknown command %q", d.Cmd)
			return ""
		})
	})
}

// gc plans and (unless dry) executes, and describes what happened.
func (w *world) gc(jobs []flinkjob.Job, opts flinkjob.GCOptions, dry bool) string {
	plan, err := flinkjob.NewGCPlan(w.ctx, w.s, jobs, opts)
	if err != nil {
		return "error: " + w.scrub(err.Error())
	}
	var b strings.Builder
	verb := "deleted"
	res := plan.Result()
	if dry {
		verb = "would delete"
	} else {
		res, err = plan.Execute(w.ctx, nil)
	}
	for _, o := range plan.Objects() {
		orphan := ""
		if o.Orphan {
			orphan = " (orphan)"
		}
		fmt.Fprintf(&b, "%s %s%s\n", verb, w.rel(o.Key), orphan)
	}
	ids := func(v []int64) string {
		if len(v) == 0 {
			return "-"
		}
		s := make([]string, len(v))
		for i, id := range v {
			s[i] = strconv.FormatInt(id, 10)
		}
		return strings.Join(s, ",")
	}
	for _, j := range res.Jobs {
		fmt.Fprintf(&b, "%s: kept %s, expired %s, young %s, incomplete %s, taskowned %d\n",
			w.rel(j.Job), ids(j.Kept), ids(j.Expired), ids(j.Young), ids(j.Incomplete), j.TaskOwned)
	}
	for _, bl := range res.Blocked {
		fmt.Fprintf(&b, "blocked: %s\n", w.scrub(bl))
	}
	fmt.Fprintf(&b, "files %d, orphans %d\n", res.FilesDeleted, res.OrphansDeleted) // bytes vary with the temporary path in _metadata
	if err != nil {
		fmt.Fprintf(&b, "error: %s\n", w.scrub(err.Error()))
	}
	return b.String()
}

// scrub removes the location's random prefix from messages.
func (w *world) scrub(s string) string {
	if w.loc.Prefix != "" {
		s = strings.ReplaceAll(s, w.loc.Prefix+"/", "")
	}
	return s
}
