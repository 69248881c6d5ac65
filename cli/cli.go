// Package cli implements the dowasm command line: run, build, serve, deploy, classes and version. Main takes its
// arguments and output streams as parameters so commands are testable in-process.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"

	ucli "github.com/urfave/cli/v2"
)

// Version is set at link time (-ldflags "-X github.com/dowasm/dowasm/cli.Version=...").
var Version = "dev"

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := &ucli.App{
		Name:      "dowasm",
		Usage:     "serve Durable Objects compiled to WebAssembly",
		Writer:    stdout,
		ErrWriter: stderr,
		Commands: []*ucli.Command{
			runCommand(),
			buildCommand(),
			serveCommand(),
			deployCommand(),
			classesCommand(),
			{
				Name:  "version",
				Usage: "print the version and the guest ABI version",
				Action: func(c *ucli.Context) error {
					fmt.Fprintln(c.App.Writer, versionString())
					return nil
				},
			},
		},
		ExitErrHandler: func(*ucli.Context, error) {},
	}
	if err := app.RunContext(ctx, args); err != nil {
		var ee ucli.ExitCoder
		if errors.As(err, &ee) {
			if ee.Error() != "" {
				fmt.Fprintln(stderr, "dowasm:", ee.Error())
			}
			return ee.ExitCode()
		}
		fmt.Fprintln(stderr, "dowasm:", err)
		return 1
	}
	return 0
}

func versionString() string {
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v = "dev-" + s.Value[:12]
			}
		}
	}
	return fmt.Sprintf("dowasm %s (guest ABI v%d)", v, abiVersion())
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
