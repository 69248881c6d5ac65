package cli

import (
	"fmt"
	"path/filepath"

	"github.com/dowasm/dowasm/config"
	"github.com/dowasm/dowasm/toolchain"
	ucli "github.com/urfave/cli/v2"
)

func buildCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "build",
		Usage:     "build classes from source: every source class of the config, or the directories given",
		ArgsUsage: "[source-dir ...]",
		Flags: []ucli.Flag{
			configFlag,
			&ucli.StringFlag{Name: "out", Value: "", Usage: "cache directory for built modules (default: <data>/.cache/build, or build/ for directories)"},
			&ucli.StringFlag{Name: "toolchain", Usage: "toolchain for directories given as arguments (default: detected)"},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() > 0 {
				out := c.String("out")
				if out == "" {
					out = "build"
				}
				for _, dir := range c.Args().Slice() {
					abs, _ := filepath.Abs(dir)
					kind, err := toolchain.Detect(abs, c.String("toolchain"))
					if err != nil {
						return ucli.Exit(err, 1)
					}
					p, err := toolchain.Build(c.Context, abs, kind, out, c.App.ErrWriter)
					if err != nil {
						return ucli.Exit(err, 1)
					}
					fmt.Fprintln(c.App.Writer, p)
				}
				return nil
			}
			cfg, err := config.Load(c.String("config"))
			if err != nil {
				return ucli.Exit(err, 2)
			}
			out := c.String("out")
			if out == "" {
				out = buildCacheDir(cfg)
			}
			paths, err := buildClasses(c.Context, cfg, out, c.App.ErrWriter)
			if err != nil {
				return ucli.Exit(err, 1)
			}
			for _, cl := range cfg.Classes {
				fmt.Fprintf(c.App.Writer, "%s\t%s\n", cl.Name, paths[cl.Name])
			}
			return nil
		},
	}
}
