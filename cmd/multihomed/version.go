package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/multihomed/multihomed/internal/buildinfo"
)

// newVersionCmd prints the build: version, commit, build date, Go and GoBGP
// versions (the same values as the multihomed_build_info metric).
func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, build date, Go and GoBGP versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprint(cmd.OutOrStdout(), buildinfo.Read())
			return err
		},
	}
}
