package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/multihomed/multihomed/api/client"
	apiv1 "github.com/multihomed/multihomed/api/v1"
	"github.com/multihomed/multihomed/internal/buildinfo"
)

// versionCmd prints mhctl's own build, then the daemon's (GetVersion). Its
// own build is printed whatever happens to the call: when the daemon
// cannot be asked, a "daemon:" line says why and the exit status is the
// call's (6 when it cannot be reached).
func (o *options) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print mhctl's and the daemon's version, commit, build date, Go and GoBGP versions",
		Long: "Print mhctl's own build, then the daemon's as it reports it. mhctl's is printed even when the daemon " +
			"cannot be asked; a \"daemon:\" line then says why, and the exit status is 6 when it cannot be reached, " +
			"2 when mhctl's flags or client file are wrong, 4 when not permitted.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var daemon *apiv1.GetVersionResponse
			err := o.call(cmd, func(ctx context.Context, cl apiv1.MultihomedClient) error {
				var err error
				daemon, err = cl.GetVersion(ctx, &apiv1.GetVersionRequest{})
				return err
			})
			if rerr := renderVersion(cmd.OutOrStdout(), buildinfo.Read(), daemon, err); rerr != nil {
				return rerr
			}
			return err
		},
	}
}

// renderVersion writes own (mhctl's build) and, indented under "daemon:",
// the daemon's; when daemonErr is set it writes instead why the daemon did
// not answer: it cannot be reached, mhctl could not ask (its flags or
// client file), or the daemon refused.
func renderVersion(w io.Writer, own buildinfo.Info, daemon *apiv1.GetVersionResponse, daemonErr error) error {
	var b strings.Builder
	b.WriteString(own.String())
	if daemonErr != nil {
		why, msg := "did not answer", daemonErr.Error()
		switch exitCode(daemonErr) {
		case exitUnreachable:
			why, msg = "cannot be reached", strings.TrimPrefix(msg, client.ErrUnreachable.Error()+": ")
		case exitUsage: // mhctl's own flags or client file: nothing was sent
			why = "not asked"
		}
		fmt.Fprintf(&b, "daemon:     %s: %s\n", why, msg)
		_, err := io.WriteString(w, b.String())
		return err
	}
	d := buildinfo.Info{Version: daemon.GetVersion(), Commit: daemon.GetCommit(), Date: daemon.GetBuilt(),
		GoVersion: daemon.GetGoVersion(), GoBGP: daemon.GetGobgp()}
	b.WriteString("daemon:\n")
	for _, line := range strings.SplitAfter(d.String(), "\n") {
		if line != "" {
			b.WriteString("  " + line)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
