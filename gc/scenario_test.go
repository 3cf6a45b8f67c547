package gc_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/ckpt-dev/ckpt/gc"
)

// TestScenarios runs the scenarios in testdata/gc. Commands:
//
//	store name=S [keys=N] [seed=N]          build a Pebble store
//	churn name=S [fraction=F] seed=N        change part of it
//	create job=J store=S                    ckpt create
//	restore job=J id=N into=S [claim]       restore (materialise) with or without claim
//	crash-create job=J store=S at=K         a create that dies at storage op K
//	corrupt job=J id=N                      flip a byte of a _metadata
//	advance by=DURATION                     move the clock forward
//	gc job=J [job=J2] [retain=N] [keep-within=D] [keep=ID...] [min-age=D] [dry-run]
//	ls job=J                                checkpoint directories and referrers
//	check [min-age=D]                       invariants (see world.check)
//
// Rewrite the expected output with `go test ./gc -run TestScenarios -rewrite`.
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "../testdata/gc", func(t *testing.T, path string) {
		w := newWorld(t)
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
			switch d.Cmd {
			case "store":
				w.store(arg("name", ""), num("keys", 3000), uint64(num("seed", 1)))
				return "ok"
			case "churn":
				f, _ := strconv.ParseFloat(arg("fraction", "0.05"), 64)
				w.churn(arg("name", ""), f, uint64(num("seed", 1)))
				return "ok"
			case "create":
				r, err := w.create(w.b, arg("job", ""), arg("store", ""))
				if err != nil {
					return "error: " + err.Error()
				}
				return fmt.Sprintf("%s/chk-%d %s", arg("job", ""), r.CheckpointID, r.Kind)
			case "restore":
				w.restore(arg("job", ""), uint64(num("id", 0)), arg("into", ""), d.HasArg("claim"))
				return "ok"
			case "crash-create":
				w.crashCreate(arg("job", ""), arg("store", ""), num("at", 1))
				return "crashed"
			case "corrupt":
				w.corrupt(arg("job", ""), uint64(num("id", 0)))
				return "ok"
			case "advance":
				w.offset += dur("by", "0s")
				return "ok"
			case "gc":
				var jobs []string
				var keep []uint64
				for _, a := range d.CmdArgs {
					switch a.Key {
					case "job":
						jobs = append(jobs, a.Vals...)
					case "keep":
						for _, v := range a.Vals {
							n, _ := strconv.ParseUint(v, 10, 64)
							keep = append(keep, n)
						}
					}
				}
				opts := gc.Options{
					Policy: gc.Policy{Retain: num("retain", 0), KeepWithin: dur("keep-within", "0s"), Keep: keep},
					MinAge: dur("min-age", "6h"),
				}
				r, _, err := w.gc(w.b, jobs, opts, d.HasArg("dry-run"))
				return formatResult(r, err)
			case "ls":
				return w.ls(arg("job", ""))
			case "check":
				return w.check(dur("min-age", "6h"))
			}
			t.Fatalf("unknown command %q", d.Cmd)
			return ""
		})
	})
}

var _ = strings.Join
