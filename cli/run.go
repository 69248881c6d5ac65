package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dowasm/dowasm/abi"
	"github.com/dowasm/dowasm/config"
	"github.com/dowasm/dowasm/gateway"
	"github.com/dowasm/dowasm/host"
	"github.com/dowasm/dowasm/storage"
	"github.com/dowasm/dowasm/toolchain"
	ucli "github.com/urfave/cli/v2"
)

func abiVersion() int { return abi.Version }

var configFlag = &ucli.StringFlag{Name: "config", Aliases: []string{"c"}, Value: "dowasm.yaml", Usage: "configuration file"}

func runCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "run",
		Usage: "serve the classes of a dowasm.yaml over HTTP",
		Flags: []ucli.Flag{
			configFlag,
			&ucli.StringFlag{Name: "listen", Usage: "override the listen address (host:port; port 0 picks one)"},
			&ucli.StringFlag{Name: "data", Usage: "override the data directory"},
			&ucli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json"},
			&ucli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
			&ucli.DurationFlag{Name: "shutdown-grace", Value: 10 * time.Second, Usage: "how long in-flight requests may finish on SIGINT/SIGTERM before they are cancelled"},
		},
		Action: func(c *ucli.Context) error {
			log, err := newLogger(c.App.ErrWriter, c.String("log-format"), c.String("log-level"))
			if err != nil {
				return ucli.Exit(err, 2)
			}
			cfg, err := config.Load(c.String("config"))
			if err != nil {
				return ucli.Exit(err, 2)
			}
			if v := c.String("listen"); v != "" {
				cfg.Listen = v
			}
			if v := c.String("data"); v != "" {
				cfg.Data, _ = filepath.Abs(v)
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serve(ctx, cfg, c.App.Writer, c.App.ErrWriter, log, c.Duration("shutdown-grace"))
		},
	}
}

// buildClasses builds every class given as source and returns the module path of each class.
func buildClasses(ctx context.Context, cfg *config.Config, cacheDir string, progress io.Writer) (map[string]string, error) {
	paths := map[string]string{}
	for _, cl := range cfg.Classes {
		if cl.Module != "" {
			paths[cl.Name] = cl.Module
			continue
		}
		kind, err := toolchain.Detect(cl.Source, cl.Toolchain)
		if err != nil {
			return nil, fmt.Errorf("class %s: %w", cl.Name, err)
		}
		p, err := toolchain.Build(ctx, cl.Source, kind, cacheDir, progress)
		if err != nil {
			return nil, fmt.Errorf("class %s: %w", cl.Name, err)
		}
		paths[cl.Name] = p
	}
	return paths, nil
}

func serve(ctx context.Context, cfg *config.Config, stdout, stderr io.Writer, log *slog.Logger, grace time.Duration) error {
	paths, err := buildClasses(ctx, cfg, buildCacheDir(cfg), stderr)
	if err != nil {
		return ucli.Exit(err, 1)
	}
	dur := storage.Full
	if cfg.Relaxed {
		dur = storage.Relaxed
	}
	rt, err := host.New(ctx, host.Config{
		DataDir:      cfg.Data,
		Durability:   dur,
		IdleTimeout:  cfg.IdleTimeout,
		EventTimeout: cfg.EventTimeout,
		EventCPU:     cfg.EventCPU,
		MaxQueue:     cfg.MaxQueue,
		MaxInstances: cfg.MaxInstances,
		Logger:       log,

		AlarmHorizon:     cfg.AlarmHorizon,
		AlarmConcurrency: cfg.AlarmConc,

		WSMaxSockets:   cfg.WSMaxSockets,
		WSMaxMessage:   cfg.WSMaxMessage,
		WSSendBuffer:   cfg.WSSendBuffer,
		WSPingInterval: cfg.WSPingInterval,
	})
	if err != nil {
		return ucli.Exit(err, 1)
	}
	defer rt.Close(context.Background())
	for _, cl := range cfg.Classes {
		wasm, err := os.ReadFile(paths[cl.Name])
		if err != nil {
			return ucli.Exit(fmt.Errorf("class %s: %w", cl.Name, err), 1)
		}
		start := time.Now()
		if _, err := rt.LoadClass(ctx, cl.Name, paths[cl.Name], wasm); err != nil {
			return ucli.Exit(err, 1)
		}
		log.Info("class loaded", "class", cl.Name, "module", paths[cl.Name], "bytes", len(wasm), "compile", time.Since(start).Round(time.Millisecond))
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return ucli.Exit(fmt.Errorf("listen %s: %w", cfg.Listen, err), 1)
	}
	srv, ln := newHTTPServer(withAssets(cfg.Assets, gateway.New(rt, log)), ln, cfg.HTTP, log)
	fmt.Fprintf(stdout, "dowasm listening on http://%s (data %s, durability %s)\n", ln.Addr(), cfg.Data, map[bool]string{false: "full", true: "relaxed"}[cfg.Relaxed])
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return ucli.Exit(fmt.Errorf("serve: %w", err), 1)
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", grace)
	// First let in-flight requests finish (their events commit), then cancel what remains:
	// cancelled events roll back, so nothing half-done is committed.
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Warn("http shutdown", "error", err)
	}
	cctx, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	if err := rt.Close(cctx); err != nil {
		log.Error("runtime shutdown", "error", err)
		return ucli.Exit(err, 1)
	}
	srv.Close()
	log.Info("stopped")
	return nil
}

func buildCacheDir(cfg *config.Config) string { return filepath.Join(cfg.Data, ".cache", "build") }

// withAssets serves each asset directory under its URL prefix and everything else with next.
// (A plain prefix check rather than http.ServeMux, which would clean and redirect object paths.)
func withAssets(assets []config.Asset, next http.Handler) http.Handler {
	if len(assets) == 0 {
		return next
	}
	type mount struct {
		prefix string
		h      http.Handler
	}
	var mounts []mount
	for _, a := range assets {
		mounts = append(mounts, mount{a.Path, http.StripPrefix(strings.TrimSuffix(a.Path, "/"), http.FileServer(http.Dir(a.Dir)))})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, m := range mounts {
			if strings.HasPrefix(r.URL.Path, m.prefix) {
				m.h.ServeHTTP(w, r)
				return
			}
			if r.URL.Path+"/" == m.prefix {
				http.Redirect(w, r, m.prefix, http.StatusMovedPermanently)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
