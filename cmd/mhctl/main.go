package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/multihomed/multihomed/api/client"
	apiv1 "github.com/multihomed/multihomed/api/v1"
	"github.com/multihomed/multihomed/internal/manpage"
)

// Exit codes (see doc.go).
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitConfig      = 3
	exitAuth        = 4
	exitNotFound    = 5
	exitUnreachable = 6
	exitConflict    = 7
)

// exitError carries an exit code through cobra.
type codedError struct {
	code int
	err  error
}

func (e codedError) Error() string { return e.err.Error() }
func (e codedError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes mhctl with args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "mhctl:", err)
	return exitCode(err)
}

// exitCode is the exit status for a command's error (not nil).
func exitCode(err error) int {
	var ce codedError
	if errors.As(err, &ce) {
		return ce.code
	}
	if st, ok := status.FromError(err); ok {
		return codeOf(st.Code())
	}
	return exitUsage // cobra's own errors: unknown command or flag
}

func codeOf(c codes.Code) int {
	switch c {
	case codes.OK:
		return exitOK
	case codes.InvalidArgument:
		return exitUsage
	case codes.Unauthenticated, codes.PermissionDenied:
		return exitAuth
	case codes.NotFound:
		return exitNotFound
	case codes.Unavailable, codes.DeadlineExceeded:
		return exitUnreachable
	case codes.FailedPrecondition:
		return exitConflict
	}
	return exitError
}

type options struct {
	socket, address   string
	cacert, cert, key string
	serverName        string
	output            string
	timeout           time.Duration
	flags             *pflag.FlagSet // the root's, to tell flags given from defaults
	conn              *grpc.ClientConn
	client            apiv1.MultihomedClient
}

func newRoot() *cobra.Command {
	o := &options{}
	root := &cobra.Command{
		Use:           "mhctl",
		Short:         "NOC client of the multihomed daemon",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			switch o.output {
			case "table", "json", "yaml":
			default:
				return codedError{exitUsage, fmt.Errorf("-o %q: use table, json or yaml", o.output)}
			}
			return nil
		},
		PersistentPostRun: func(*cobra.Command, []string) {
			if o.conn != nil {
				o.conn.Close()
			}
		},
	}
	f := root.PersistentFlags()
	o.flags = f
	f.StringVar(&o.socket, "socket", client.DefaultSocket, "the daemon's unix socket")
	f.StringVar(&o.address, "address", "", "the daemon's TCP API address (host:port); needs --cacert, --cert, --key")
	f.StringVar(&o.cacert, "cacert", "", "CA certificate (PEM) that signed the daemon's certificate")
	f.StringVar(&o.cert, "cert", "", "client certificate (PEM)")
	f.StringVar(&o.key, "key", "", "client key (PEM)")
	f.StringVar(&o.serverName, "server-name", "", "name to verify in the daemon's certificate (default: the host of --address)")
	f.StringVarP(&o.output, "output", "o", "table", "output: table, json or yaml")
	f.DurationVar(&o.timeout, "timeout", 10*time.Second, "deadline of each call (not of events --follow)")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))

	root.AddCommand(o.statusCmd(), o.uplinksCmd(), o.eventsCmd(), o.drainCmd(), o.undrainCmd(), o.overrideCmd(), o.configCmd(), o.resetCmd(), o.shutdownCmd(), o.dnsCmd(), o.versionCmd(), manpage.Command(root, "1")) // section 1: NOC users run mhctl
	return root
}

func (o *options) dial() error {
	if err := o.applyClientConfig(); err != nil {
		return err
	}
	cc, err := client.Dial(client.Options{Socket: o.socket, Address: o.address, CACert: o.cacert, Cert: o.cert, Key: o.key, ServerName: o.serverName})
	switch {
	case errors.Is(err, client.ErrUnreachable):
		return codedError{exitUnreachable, err}
	case err != nil:
		return codedError{exitUsage, err}
	}
	o.conn, o.client = cc, apiv1.NewMultihomedClient(cc)
	return nil
}

// api connects on first use, after cobra has checked arguments and flags.
func (o *options) api() (apiv1.MultihomedClient, error) {
	if o.client == nil {
		if err := o.dial(); err != nil {
			return nil, err
		}
	}
	return o.client, nil
}

// call runs one request: f gets the client, connected on first use, and a
// context that ends after --timeout (started before the dial, so the
// deadline covers it too).
func (o *options) call(cmd *cobra.Command, f func(context.Context, apiv1.MultihomedClient) error) error {
	return o.callWithin(cmd, o.timeout, f)
}

// callWithin is call with its own deadline, for requests that outlast
// --timeout by design (shutdown waits for the drain).
func (o *options) callWithin(cmd *cobra.Command, d time.Duration, f func(context.Context, apiv1.MultihomedClient) error) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), d)
	defer cancel()
	cl, err := o.api()
	if err != nil {
		return err
	}
	return f(ctx, cl)
}

// print writes m as JSON or YAML, or calls table for the table format.
func (o *options) print(w io.Writer, m proto.Message, table func() error) error {
	switch o.output {
	case "json":
		b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	case "yaml":
		b, err := toYAML(m)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return table()
}

// toYAML renders m's JSON form as block YAML, keeping field order.
func toYAML(m proto.Message) ([]byte, error) {
	b, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	var n yaml.Node
	if err := yaml.Unmarshal(b, &n); err != nil {
		return nil, err
	}
	var unflow func(*yaml.Node)
	unflow = func(n *yaml.Node) {
		n.Style &^= yaml.FlowStyle
		if n.Kind == yaml.ScalarNode && n.Style&(yaml.DoubleQuotedStyle) != 0 {
			n.Style = 0 // let the encoder quote only where YAML needs it
		}
		for _, c := range n.Content {
			unflow(c)
		}
	}
	unflow(&n)
	return yaml.Marshal(&n)
}

func (o *options) statusCmd() *cobra.Command {
	return o.statusView("status", "Everything at a glance: each uplink's state and why, what each ISP hears, egress", renderStatus)
}

func (o *options) dnsCmd() *cobra.Command {
	return o.statusView("dns", "PA mode: the AAAA records of each published host, desired and on the server, and the last update's result", renderDNS)
}

func (o *options) uplinksCmd() *cobra.Command {
	return o.statusView("uplinks", "One line per uplink", renderUplinks)
}

// statusView is a command that fetches the status and renders it with
// render (tables) or as -o json|yaml.
func (o *options) statusView(use, short string, render func(io.Writer, *apiv1.Status, time.Time) error) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.call(cmd, func(ctx context.Context, cl apiv1.MultihomedClient) error {
				resp, err := cl.GetStatus(ctx, &apiv1.GetStatusRequest{})
				if err != nil {
					return err
				}
				return o.print(cmd.OutOrStdout(), resp.GetStatus(), func() error { return render(cmd.OutOrStdout(), resp.GetStatus(), time.Now()) })
			})
		},
	}
}

func (o *options) eventsCmd() *cobra.Command {
	var follow bool
	var after uint64
	var limit, replay uint32
	cmd := &cobra.Command{
		Use: "events", Short: "Decision history; --follow streams live events", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			if !follow {
				return o.call(cmd, func(ctx context.Context, cl apiv1.MultihomedClient) error {
					resp, err := cl.ListEvents(ctx, &apiv1.ListEventsRequest{After: after, Limit: limit})
					if err != nil {
						return err
					}
					return o.print(w, resp, func() error { return renderEvents(w, resp.GetEvents()) })
				})
			}
			cl, err := o.api()
			if err != nil {
				return err
			}
			st, err := cl.WatchEvents(cmd.Context(), &apiv1.WatchEventsRequest{After: after, Replay: replay})
			if err != nil {
				return err
			}
			for {
				m, err := st.Recv()
				if err != nil {
					if cmd.Context().Err() != nil {
						return nil // interrupted: a normal end of --follow
					}
					return err
				}
				if o.output != "table" {
					if err := o.print(w, m, nil); err != nil {
						return err
					}
					continue
				}
				if l := m.GetLagged(); l != nil {
					fmt.Fprintf(w, "-- lagged: %d events missed (mhctl events --after N lists what history keeps)\n", l.GetMissed())
					continue
				}
				fmt.Fprintln(w, eventLine(m.GetEvent()))
			}
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "stream events as they happen")
	cmd.Flags().Uint64Var(&after, "after", 0, "only events with a sequence number above this")
	cmd.Flags().Uint32Var(&limit, "limit", 0, "at most this many events (default 100, max 1000)")
	cmd.Flags().Uint32Var(&replay, "replay", 10, "with --follow: first show this many recent events")
	return cmd
}

func (o *options) drainCmd() *cobra.Command {
	var reason, forStr string
	cmd := &cobra.Command{
		Use: "drain UPLINK --reason TEXT [--for 2h]", Short: "Drain an uplink: GRACEFUL_SHUTDOWN, then withdraw after the drain grace",
		Args: cobra.ExactArgs(1), ValidArgsFunction: o.completeUplinks,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := parseFor(forStr)
			if err != nil {
				return codedError{exitUsage, err}
			}
			req := &apiv1.DrainRequest{Uplink: args[0], Reason: reason}
			if d > 0 {
				req.Duration = durationpb.New(d)
			}
			return o.call(cmd, func(ctx context.Context, cl apiv1.MultihomedClient) error {
				resp, err := cl.Drain(ctx, req)
				if err != nil {
					return err
				}
				return o.print(cmd.OutOrStdout(), resp, func() error {
					_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s: draining (%s)\n", args[0], overrideText(resp.GetOverride(), time.Now()))
					return err
				})
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (required; logged and shown in status)")
	cmd.Flags().StringVar(&forStr, "for", "", "end the drain after this long (90m, 2h, 7d); default: until undrain")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}

func (o *options) undrainCmd() *cobra.Command {
	return &cobra.Command{
		Use: "undrain UPLINK", Short: "End a drain", Args: cobra.ExactArgs(1), ValidArgsFunction: o.completeUplinks,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(cmd, func(ctx context.Context, cl apiv1.MultihomedClient) error {
				resp, err := cl.Undrain(ctx, &apiv1.UndrainRequest{Uplink: args[0]})
				if err != nil {
					return err
				}
				return o.print(cmd.OutOrStdout(), resp, func() error {
					msg := "undrained"
					if !resp.GetWasDrained() {
						msg = "was not drained; nothing changed"
					}
					_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", args[0], msg)
					return err
				})
			})
		},
	}
}

func (o *options) overrideCmd() *cobra.Command {
	var reason, forStr string
	cmd := &cobra.Command{
		Use:   "override UPLINK force-down|prepend N|clear [--reason TEXT] [--for 2h]",
		Short: "Force an uplink down, add prepends, or clear every override on it",
		Args:  cobra.RangeArgs(2, 3),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 1 {
				return []string{"force-down", "prepend", "clear"}, cobra.ShellCompDirectiveNoFileComp
			}
			return o.completeUplinks(cmd, args, "")
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := parseOverride(args)
			if err != nil {
				return codedError{exitUsage, err}
			}
			d, err := parseFor(forStr)
			if err != nil {
				return codedError{exitUsage, err}
			}
			if d > 0 {
				req.Duration = durationpb.New(d)
			}
			req.Reason = reason
			return o.call(cmd, func(ctx context.Context, cl apiv1.MultihomedClient) error {
				resp, err := cl.SetOverride(ctx, req)
				if err != nil {
					return err
				}
				return o.print(cmd.OutOrStdout(), resp, func() error {
					_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", args[0], overrideText(resp.GetOverride(), time.Now()))
					return err
				})
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (required except for clear)")
	cmd.Flags().StringVar(&forStr, "for", "", "end the override after this long (90m, 2h, 7d)")
	return cmd
}

func (o *options) configCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Validate, reload or show the daemon's configuration"}
	cmd.AddCommand(&cobra.Command{
		Use: "validate FILE", Short: "Have the daemon check a configuration file (nothing is applied)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := os.ReadFile(args[0])
			if err != nil {
				return codedError{exitUsage, err}
			}
			return o.call(cmd, func(ctx context.Context, cl apiv1.MultihomedClient) error {
				resp, err := cl.ValidateConfig(ctx, &apiv1.ValidateConfigRequest{Config: string(text)})
				if err != nil {
					return err
				}
				if err := o.print(cmd.OutOrStdout(), resp, func() error {
					if resp.GetValid() {
						fmt.Fprintf(cmd.OutOrStdout(), "%s: valid\n", args[0])
						for _, p := range resp.GetAdvice() {
							fmt.Fprintf(cmd.OutOrStdout(), "advice: %s: %s\n", dash(p.GetPath()), p.GetMessage())
						}
						return nil
					}
					for _, p := range resp.GetProblems() {
						fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", dash(p.GetPath()), p.GetMessage())
					}
					return nil
				}); err != nil {
					return err
				}
				if !resp.GetValid() {
					return codedError{exitConfig, fmt.Errorf("%s: %d problem(s)", args[0], len(resp.GetProblems()))}
				}
				return nil
			})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use: "reload", Short: "Have the daemon read its configuration file again and apply it", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.call(cmd, func(ctx context.Context, cl apiv1.MultihomedClient) error {
				resp, err := cl.ReloadConfig(ctx, &apiv1.ReloadConfigRequest{})
				if err != nil {
					if ps := client.ConfigProblems(err); len(ps) > 0 {
						for _, p := range ps {
							fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s\n", dash(p.Path), p.Message)
						}
						return codedError{exitConfig, fmt.Errorf("reload refused: %d problem(s); the running configuration stays", len(ps))}
					}
					return err
				}
				return o.print(cmd.OutOrStdout(), resp, func() error {
					for _, w := range resp.GetWarnings() {
						fmt.Fprintln(cmd.OutOrStdout(), "warning:", w)
					}
					_, err := fmt.Fprintf(cmd.OutOrStdout(), "reloaded %s\n", resp.GetFile())
					return err
				})
			})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use: "show", Short: "Print the configuration in force (secrets redacted)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.call(cmd, func(ctx context.Context, cl apiv1.MultihomedClient) error {
				resp, err := cl.GetConfig(ctx, &apiv1.GetConfigRequest{})
				if err != nil {
					return err
				}
				return o.print(cmd.OutOrStdout(), resp, func() error {
					_, err := fmt.Fprintf(cmd.OutOrStdout(), "# %s (effective, secrets redacted)\n%s\n", resp.GetFile(), resp.GetJson())
					return err
				})
			})
		},
	})
	return cmd
}

// completeUplinks asks the daemon for its uplink names.
func (o *options) completeUplinks(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	_ = o.call(cmd, func(ctx context.Context, cl apiv1.MultihomedClient) error {
		resp, err := cl.GetStatus(ctx, &apiv1.GetStatusRequest{})
		for _, u := range resp.GetStatus().GetUplinks() { // a nil resp has no uplinks
			names = append(names, u.GetName())
		}
		return err
	})
	return names, cobra.ShellCompDirectiveNoFileComp
}
