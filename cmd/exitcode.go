package cmd

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/flinkjob"
	"github.com/ckpt-dev/ckpt/gc"
	"github.com/ckpt-dev/ckpt/inspect"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/relocate"
	"github.com/ckpt-dev/ckpt/storage"
)

// Exit codes: the one table, mapped from typed errors in exitCode.
const (
	ExitOK          = 0
	ExitError       = 1
	ExitUsage       = 2
	ExitPartial     = 3
	ExitNotFound    = 4
	ExitCorrupt     = 5
	ExitConflict    = 6
	ExitInterrupted = 130
)

var exitTable = []struct {
	code    int
	meaning string
}{
	{ExitOK, "success"},
	{ExitError, "error (storage unreachable, I/O error, unsupported store, ...)"},
	{ExitUsage, "usage error: bad flag, argument or location URL"},
	{ExitPartial, "partial: some work was not done; safe to re-run"},
	{ExitNotFound, "not found: no such checkpoint, job, object or Pebble store"},
	{ExitCorrupt, "verification failed: a file is missing or corrupt, or a _metadata is unreadable"},
	{ExitConflict, "conflict: the store is open in another process, or the object already exists"},
	{ExitInterrupted, "interrupted (Ctrl-C, SIGTERM); nothing half-committed, safe to re-run"},
}

// exitStatusHelp is the EXIT STATUS section of every command's help.
func exitStatusHelp() string {
	var b strings.Builder
	b.WriteString("EXIT STATUS\n")
	for _, e := range exitTable {
		fmt.Fprintf(&b, "  %3d  %s\n", e.code, e.meaning)
	}
	return b.String()
}

// usageError marks errors in how ckpt was called.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitCode maps an error to the exit-code table.
func exitCode(ctx context.Context, err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		return ExitInterrupted
	case errors.As(err, &ue), errors.Is(err, storage.ErrBadLocation), isFlagError(err):
		return ExitUsage
	case errors.Is(err, gc.ErrPartial), errors.Is(err, checkpoint.ErrReservationLost),
		errors.Is(err, relocate.ErrReservationLost), errors.Is(err, flinkjob.ErrPartial):
		return ExitPartial
	case errors.Is(err, relocate.ErrOverlap), errors.Is(err, flinkjob.ErrOverlap), errors.Is(err, flinkjob.ErrBadPolicy):
		return ExitUsage
	case errors.Is(err, relocate.ErrDestinationExists), errors.Is(err, flinkjob.ErrDestinationExists):
		return ExitConflict
	case errors.Is(err, gc.ErrBadPolicy):
		return ExitUsage
	case errors.Is(err, inspect.ErrVerifyFailed), errors.Is(err, metadata.ErrCorrupt), errors.Is(err, gc.ErrBlocked),
		errors.Is(err, relocate.ErrVerifyFailed), errors.Is(err, flinkjob.ErrCorrupt),
		errors.Is(err, flinkjob.ErrVerifyFailed), errors.Is(err, flinkjob.ErrBlocked),
		errors.Is(err, metadata.ErrNewerVersion), errors.Is(err, checkpoint.ErrBadBase):
		return ExitCorrupt
	case errors.Is(err, metadata.ErrNotFound), errors.Is(err, storage.ErrNotFound), errors.Is(err, flinkjob.ErrNotFound),
		errors.Is(err, checkpoint.ErrNotStore):
		return ExitNotFound
	case errors.Is(err, checkpoint.ErrStoreInUse), errors.Is(err, storage.ErrExists):
		return ExitConflict
	}
	return ExitError
}

// hint adds what the user can do about an error, on the same line.
func hint(err error) string {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	switch {
	case errors.Is(err, checkpoint.ErrStoreInUse):
		msg += " (close it first, or checkpoint it from the process that has it open with the Go API: checkpoint.FromDB)"
	case errors.Is(err, checkpoint.ErrBadBase):
		msg += " (run with --full to start a new full checkpoint that does not build on it)"
	case errors.Is(err, context.Canceled):
		msg = "interrupted; nothing was committed by the interrupted step, re-run to finish"
	}
	return msg
}

func isFlagError(err error) bool {
	m := err.Error()
	return strings.HasPrefix(m, "unknown flag") || strings.HasPrefix(m, "unknown shorthand flag") ||
		strings.HasPrefix(m, "invalid argument") || strings.Contains(m, "flag needs an argument") ||
		strings.HasPrefix(m, "unknown command") || strings.HasPrefix(m, "accepts ") ||
		strings.HasPrefix(m, "requires at least") || strings.HasPrefix(m, "required flag")
}
