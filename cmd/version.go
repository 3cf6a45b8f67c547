package cmd

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/ckpt-dev/ckpt/metadata"
)

func newVersionCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print ckpt's version and the metadata format it writes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.JSON {
				return writeJSON(f.Out, map[string]any{
					"version": jsonVersion, "ckpt_version": Version,
					"metadata_format": metadata.FormatVersion, "go_version": runtime.Version(),
				})
			}
			fmt.Fprintf(f.Out, "ckpt %s (metadata format %d, %s)\n", Version, metadata.FormatVersion, runtime.Version())
			return nil
		},
	}
}
