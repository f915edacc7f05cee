// Command srptgt is the srptgt SCSI target daemon and its tools.
//
//	srptgt serve --config FILE [--shutdown-timeout 30s]
//	srptgt config check FILE
//	srptgt version
//
// Exit status: 0 on success (serve: after a clean shutdown on SIGTERM or
// SIGINT); 1 when the configuration is invalid, startup or shutdown fails,
// or a second signal forced the exit; 2 for a command-line usage error.
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

	"github.com/srptgt/srptgt/cmd/srptgt/internal/config"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// DefaultShutdownTimeout is how long serve lets in-flight commands finish
// after a signal before it fails them.
const DefaultShutdownTimeout = 30 * time.Second

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line args and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	return report(err, stderr)
}

// report prints err as the user should see it and returns the exit status.
func report(err error, stderr io.Writer) int {
	var (
		cfgErrs config.Errors
		logged  *loggedError
		failed  *cmdError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &logged):
		return exitFail // the daemon's log has it
	case errors.As(err, &cfgErrs):
		fmt.Fprintln(stderr, cfgErrs.Error())
		if n := len(cfgErrs); n > 1 {
			fmt.Fprintf(stderr, "%s: %d errors\n", cfgErrs[0].File, n)
		}
		return exitFail
	case errors.As(err, &failed):
		fmt.Fprintf(stderr, "srptgt: %v\n", failed.err)
		return exitFail
	default:
		// Anything else came from parsing the command line.
		fmt.Fprintf(stderr, "srptgt: %v\nRun 'srptgt --help' for usage.\n", err)
		return exitUsage
	}
}

// cmdError marks an error of a command that ran, as opposed to a usage
// error.
type cmdError struct{ err error }

func (e *cmdError) Error() string { return e.err.Error() }
func (e *cmdError) Unwrap() error { return e.err }

func failure(err error) error {
	if err == nil {
		return nil
	}
	var cfgErrs config.Errors
	var logged *loggedError
	if errors.As(err, &cfgErrs) || errors.As(err, &logged) {
		return err
	}
	return &cmdError{err}
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "srptgt",
		Short: "srptgt: a user-space SCSI target for Xen guests and SRP initiators",
		Long: "srptgt serves disks (and later tapes and tape changers) to Xen guests and to\n" +
			"SCSI RDMA Protocol initiators. The configuration is a YAML file; see\n" +
			"docs/configuration.md.",
		SilenceUsage:  true,
		SilenceErrors: true,
		CompletionOptions: cobra.CompletionOptions{
			DisableDefaultCmd: true,
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newServeCmd(stderr), newConfigCmd(stdout, stderr), newVersionCmd(stdout), newRDMACmd(stdout),
		newXenSimCmd(stdout, stderr), newBenchCmd(stdout, stderr), newXenCmd(stdout))
	return root
}

func newServeCmd(stderr io.Writer) *cobra.Command {
	var opts serveOptions
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the target daemon",
		Long: "serve loads the configuration, opens every LU's backstore and serves the\n" +
			"configured transports until SIGTERM or SIGINT. Then it stops accepting\n" +
			"logins, lets in-flight commands finish (failing those still running after\n" +
			"--shutdown-timeout), flushes and closes every LU and exits 0. A second\n" +
			"signal exits 1 at once. SIGHUP reloads the acl section of the file\n" +
			"(docs/configuration.md).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sigs := make(chan os.Signal, 2)
			signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
			defer signal.Stop(sigs)
			opts.logOutput = stderr
			opts.signals = sigs
			return failure(serve(context.Background(), opts))
		},
	}
	cmd.Flags().StringVarP(&opts.configPath, "config", "c", "", "configuration file (YAML)")
	cmd.Flags().DurationVar(&opts.shutdownTimeout, "shutdown-timeout", DefaultShutdownTimeout,
		"how long in-flight commands may run after a signal before they are failed")
	cmd.Flags().StringVar(&opts.cpuProfile, "cpu-profile", "",
		"write a Go CPU profile of the daemon to this file until it stops (diagnostics; go tool pprof reads it)")
	cmd.Flags().StringVar(&opts.xenSim, "xen-sim", "",
		"run the xen section on the simulated hypervisor at PATH (srptgt xensim) instead of /dev/xen")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func newConfigCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Work with configuration files",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return errors.New(`"config" needs a subcommand: check`)
		},
	}
	check := &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a configuration file without opening anything",
		Long: "check validates FILE statically: it opens and creates no backstore. It\n" +
			"prints every error as FILE:LINE: FIELD: problem (what is allowed) and exits\n" +
			"1, or prints \"OK: N LUs\" and exits 0.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(args[0])
			if err != nil {
				return failure(err)
			}
			for _, t := range cfg.Transports() {
				if !built(t) {
					fmt.Fprintf(stderr, "%s: warning: %s: the %s transport is not built into this binary (transports: %s); serve will refuse this file\n",
						cfg.File, t, t, transportsLine())
				}
			}
			fmt.Fprintf(stdout, "OK: %d LUs\n", len(cfg.LUs))
			return nil
		},
	}
	cmd.AddCommand(check)
	return cmd
}

func newVersionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the Go version and the transports built in",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			printVersion(stdout)
			return nil
		},
	}
}
