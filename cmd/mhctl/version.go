package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/multihomed/multihomed/internal/buildinfo"
)

// versionCmd prints mhctl's own build; it does not contact the daemon (its
// build is the multihomed_build_info metric and `multihomed version`).
func (o *options) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print mhctl's version, commit, build date, Go and GoBGP versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprint(cmd.OutOrStdout(), buildinfo.Read())
			return err
		},
	}
}
