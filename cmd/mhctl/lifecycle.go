package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	apiv1 "github.com/multihomed/multihomed/api/v1"
)

func (o *options) resetCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "reset UPLINK [--reason TEXT]",
		Short: "Reset an uplink's BGP sessions now, clearing a hold-down such as max-prefix",
		Args:  cobra.ExactArgs(1), ValidArgsFunction: o.completeUplinks,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(cmd, func(ctx context.Context, cl apiv1.MultihomedClient) error {
				resp, err := cl.ResetUplink(ctx, &apiv1.ResetUplinkRequest{Uplink: args[0], Reason: reason})
				if err != nil {
					return err
				}
				return o.print(cmd.OutOrStdout(), resp, func() error {
					_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s: sessions reset (mhctl status shows them come back)\n", args[0])
					return err
				})
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (optional; goes into the audit log)")
	return cmd
}

func (o *options) shutdownCmd() *cobra.Command {
	var withdraw bool
	var reason string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "shutdown --withdraw --reason TEXT",
		Short: "Decommission the edge: drain every uplink, withdraw the site everywhere, then stop the daemon",
		Long: `Decommission the edge: every uplink is drained with GRACEFUL_SHUTDOWN for
controller.drain_grace, then the site's prefixes are withdrawn from every
ISP and the egress routes removed; the daemon then exits. Needs the admin
role. Waits until it is done (do not interrupt).

To restart or upgrade, do NOT use this: stop the service (SIGTERM), which
keeps the site's routes at the ISPs for the graceful-restart time.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !withdraw {
				return codedError{exitUsage, errors.New("shutdown needs --withdraw: it withdraws the site from every ISP; to restart without losing the site, stop the service instead (SIGTERM)")}
			}
			return o.callWithin(cmd, wait, func(ctx context.Context, cl apiv1.MultihomedClient) error {
				fmt.Fprintln(cmd.ErrOrStderr(), "decommissioning: draining every uplink, then withdrawing everywhere...")
				resp, err := cl.Shutdown(ctx, &apiv1.ShutdownRequest{Withdraw: true, Reason: reason})
				if err != nil {
					return err
				}
				return o.print(cmd.OutOrStdout(), resp, func() error {
					_, err := fmt.Fprintln(cmd.OutOrStdout(), "withdrawn everywhere; the daemon is exiting")
					return err
				})
			})
		},
	}
	cmd.Flags().BoolVar(&withdraw, "withdraw", false, "withdraw the site from every ISP (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (required; logged)")
	cmd.Flags().DurationVar(&wait, "wait", 30*time.Minute, "how long to wait for the drain and withdrawal (longer than controller.drain_grace)")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}
