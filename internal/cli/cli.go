// Package cli is the frame every `manager` subcommand is built in: one FlagSet made the same way, the
// logging flags bound once, one logger (logr over controller-runtime's zap backend, as the controller
// uses) and one signal context.
//
// Why a package of its own: the packer's command lives in internal/packer so that its tests run the
// very command a Job runs, and so it cannot import cmd/manager; before this frame, the zap flags were
// bound four times, the reader logged through slog, and each subcommand answered --help and bad flags
// with exit codes of its own.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// Exit codes shared by every subcommand.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// Command is one subcommand's flags and logging.
type Command struct {
	// Flags is where the subcommand binds its own flags before Parse.
	Flags  *flag.FlagSet
	name   string
	stderr io.Writer
	zap    zap.Options
}

// New makes the frame of `manager name`: its FlagSet reports to stderr and already has the logging
// flags (--zap-log-level, --zap-devel, --zap-encoder, --zap-stacktrace-level, --zap-time-encoding).
func New(name string, stderr io.Writer) *Command {
	c := &Command{Flags: flag.NewFlagSet("manager "+name, flag.ContinueOnError), name: name, stderr: stderr}
	c.Flags.SetOutput(stderr)
	c.zap.BindFlags(c.Flags)
	return c
}

// Parse reads args and refuses positional arguments. On success it installs the process logger
// (ctrl.Log's users see it too) writing to stderr, and returns it named after the command;
// otherwise ok is false and code is the exit code (0 after --help).
func (c *Command) Parse(args []string) (log logr.Logger, code int, ok bool) {
	if err := c.Flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return logr.Discard(), ExitOK, false
		}
		return logr.Discard(), ExitUsage, false
	}
	if c.Flags.NArg() > 0 {
		return logr.Discard(), c.Usagef("unexpected arguments %q", c.Flags.Args()), false
	}
	log = zap.New(zap.UseFlagOptions(&c.zap), zap.WriteTo(c.stderr))
	// Libraries log through ctrl.Log. controller-runtime takes only the first logger set in a process,
	// so the command's own logger is returned rather than read back from ctrl.Log.
	ctrl.SetLogger(log)
	return log.WithName(c.name), ExitOK, true
}

// Usagef reports a usage error the same way for every subcommand and returns ExitUsage.
func (c *Command) Usagef(format string, args ...any) int {
	fmt.Fprintf(c.stderr, "manager %s: %s\n", c.name, fmt.Sprintf(format, args...))
	return ExitUsage
}

// SignalContext is cancelled by SIGINT or SIGTERM (what the kubelet sends first), so that every
// subcommand stops the same way: it finishes or hands over its work and exits.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// Getenv returns the environment variable name, or def when it is unset or empty.
func Getenv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
