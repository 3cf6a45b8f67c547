// Command ckpt manages checkpoints of Pebble stores on object storage.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ckpt-dev/ckpt/cmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cmd.Main(ctx, os.Args[1:], cmd.DefaultFactory())
	stop()
	os.Exit(code)
}
