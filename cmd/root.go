// Package cmd is ckpt's command line: it parses flags and configuration,
// opens storage, calls the core packages and renders their results. It holds
// no policy and no loops over objects.
package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"golang.org/x/term"

	"github.com/ckpt-dev/ckpt/storage"
)

// Factory carries what commands need from the outside world, so tests can
// run commands in-process. It holds no global state.
type Factory struct {
	In       io.Reader
	Out, Err io.Writer
	// StdinTTY and StderrTTY say whether those are terminals.
	StdinTTY, StderrTTY bool
	// Now is the clock.
	Now func() time.Time
	// Open opens a storage location.
	Open func(ctx context.Context, location string) (*storage.Location, error)

	// Output mode, set from the global flags before a command runs.
	JSON, Quiet bool
}

// DefaultFactory uses the process's stdio and the real clock and storage.
func DefaultFactory() *Factory {
	return &Factory{
		In:        os.Stdin,
		Out:       os.Stdout,
		Err:       os.Stderr,
		StdinTTY:  term.IsTerminal(int(os.Stdin.Fd())),
		StderrTTY: term.IsTerminal(int(os.Stderr.Fd())),
		Now:       time.Now,
		Open:      storage.Open,
	}
}

// Version is set at build time (-ldflags "-X github.com/ckpt-dev/ckpt/cmd.Version=…").
var Version = "dev"

// Main runs ckpt with args and returns the exit code.
func Main(ctx context.Context, args []string, f *Factory) int {
	out := &countingWriter{w: f.Out}
	f.Out = out
	root := NewRootCmd(f)
	root.SetArgs(args)
	root.SetIn(f.In)
	root.SetOut(f.Out)
	root.SetErr(f.Err)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	code := exitCode(ctx, err)
	msg := storage.Redact(hint(err))
	if code == ExitInterrupted && !errors.Is(err, context.Canceled) {
		// A core package reported what the interruption left undone
		// without wrapping context.Canceled: say first why.
		msg = "interrupted: " + msg
	}
	fmt.Fprintf(f.Err, "ckpt: %s\n", msg)
	// --json prints exactly one document: the command's report if it wrote
	// one (the error is then on stderr only), otherwise the error.
	if f.JSON && out.n == 0 {
		writeJSON(f.Out, map[string]any{
			"version": jsonVersion,
			"error":   map[string]any{"message": msg, "exit_code": code},
		})
	}
	return code
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// NewRootCmd builds the command tree.
func NewRootCmd(f *Factory) *cobra.Command {
	var configFile string
	root := &cobra.Command{
		Use:   "ckpt",
		Short: "Create, inspect, relocate, garbage-collect and restore checkpoints of Pebble stores",
		Long: `ckpt manages checkpoints of Pebble key-value stores kept on object storage
(local files, S3, GCS, Azure Blob): incremental checkpoints whose _metadata
uses relative paths, so that a checkpoint can be copied or moved anywhere.

Locations are gocloud URLs (file:///path, mem://name, s3://bucket/prefix,
gs://bucket/prefix, azblob://container/prefix) or plain local paths. A job
location holds chk-<N>/ directories and shared/; a checkpoint location is
<job>/chk-<N> (or its _metadata).

Every flag can also be set with an environment variable CKPT_<FLAG> (upper
case, '-' as '_') or in a YAML config file (--config, CKPT_CONFIG, or
$XDG_CONFIG_HOME/ckpt/config.yaml) with the flag's name as key. Precedence:
flag, environment, config file, default.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(cmd, configFile); err != nil {
				return err
			}
			f.JSON, _ = cmd.Flags().GetBool("json")
			f.Quiet, _ = cmd.Flags().GetBool("quiet")
			return nil
		},
	}
	root.PersistentFlags().StringVar(&configFile, "config", "", "config file (YAML; keys are flag names)")
	root.PersistentFlags().Bool("json", false, "print one JSON document on stdout")
	root.PersistentFlags().BoolP("quiet", "q", false, "print no progress or warnings on stderr")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{msg: err.Error()} })

	root.AddCommand(
		newCreateCmd(f, nil),
		newInspectCmd(f, nil),
		newGCCmd(f, nil),
		newRelocateCmd(f, nil),
		newDemoCmd(f, nil),
		newRestoreCmd(f, nil),
		newVersionCmd(f),
	)
	for _, c := range root.Commands() {
		c.Long = strings.TrimRight(c.Long, "\n") + "\n\n" + exitStatusHelp()
	}
	root.Long += "\n\n" + exitStatusHelp()
	return root
}

// applyConfig fills every flag the user did not set from the environment
// (CKPT_<FLAG>) or the config file, in that order of precedence.
func applyConfig(cmd *cobra.Command, configFile string) error {
	v := viper.New()
	v.SetEnvPrefix("CKPT")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	if configFile == "" {
		configFile = os.Getenv("CKPT_CONFIG")
	}
	if configFile == "" {
		if dir, err := os.UserConfigDir(); err == nil {
			def := dir + "/ckpt/config.yaml"
			if _, err := os.Stat(def); err == nil {
				configFile = def
			}
		}
	}
	if configFile != "" {
		v.SetConfigFile(configFile)
		if err := v.ReadInConfig(); err != nil {
			return usagef("reading config file %s: %v", configFile, err)
		}
	}
	var err error
	cmd.Flags().VisitAll(func(fl *pflag.Flag) {
		if err != nil || fl.Changed || fl.Name == "config" || fl.Name == "help" {
			return
		}
		_ = v.BindEnv(fl.Name)
		if !v.IsSet(fl.Name) {
			return
		}
		if sv, ok := fl.Value.(pflag.SliceValue); ok {
			vals := v.GetStringSlice(fl.Name)
			if serr := sv.Replace(vals); serr != nil {
				err = usagef("invalid value for %s from environment or config: %v", fl.Name, serr)
			}
			return
		}
		if serr := cmd.Flags().Set(fl.Name, v.GetString(fl.Name)); serr != nil {
			err = usagef("invalid value for %s from environment or config: %v", fl.Name, serr)
		}
	})
	return err
}

// jsonVersion is the version of ckpt's JSON output schema.
const jsonVersion = 1

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
