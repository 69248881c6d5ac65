package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dowasm/dowasm/config"
	"github.com/dowasm/dowasm/internal/durablefs"
	"github.com/dowasm/dowasm/storage"
	"github.com/dowasm/dowasm/tenant"
	"github.com/dowasm/dowasm/toolchain"
	ucli "github.com/urfave/cli/v2"
)

// serveCommand runs the multi-tenant server.
func serveCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "serve",
		Usage: "host many tenants: an admin API for tenants and tokens, a class API for deploys, and their objects",
		Description: `Every request carries a bearer token. The admin token (--admin-token-file, or
DOWASM_ADMIN_TOKEN; created in <data>/admin.token on first start if neither is given) creates
tenants and their tokens:

   curl -H "Authorization: Bearer $ADMIN" -d '{"name":"acme"}' localhost:8080/_admin/tenants
   curl -H "Authorization: Bearer $ADMIN" -X POST localhost:8080/_admin/tenants/acme/tokens

A tenant's token deploys classes (dowasm deploy) and reaches only that tenant's objects at
/<class>/<name>/<path>.`,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "listen", Value: "127.0.0.1:8080", Usage: "address (host:port; port 0 picks one)"},
			&ucli.StringFlag{Name: "data", Value: "data-serve", Usage: "data directory (tenants, modules, objects)"},
			&ucli.StringFlag{Name: "admin-token-file", Usage: "file holding the admin token"},
			&ucli.StringFlag{Name: "durability", Value: "full", Usage: "full or relaxed"},
			&ucli.DurationFlag{Name: "idle-timeout", Value: 10 * time.Second, Usage: "evict idle instances after this long"},
			&ucli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json"},
			&ucli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
			&ucli.IntFlag{Name: "max-connections", DefaultText: "half the open-file limit", Usage: "open client connections at once, WebSockets included; past it new ones wait"},
			&ucli.IntFlag{Name: "max-deploys", Value: tenant.DefaultMaxDeploys, Usage: "deploys read and compiled at once across tenants; past it a deploy gets 503 before its module is read"},
			&ucli.DurationFlag{Name: "http-header-timeout", Value: httpDefaults.HeaderTimeout, Usage: "a request's headers must arrive within this"},
			&ucli.DurationFlag{Name: "http-body-timeout", Value: httpDefaults.BodyTimeout, Usage: "a request's body must arrive within this after its headers (408 past it)"},
			&ucli.DurationFlag{Name: "http-write-timeout", Value: httpDefaults.WriteTimeout, Usage: "a response must be sent within this from its first byte (not counting the event's run time)"},
			&ucli.DurationFlag{Name: "http-idle-timeout", Value: httpDefaults.IdleTimeout, Usage: "close a keep-alive connection idle for this long"},
		},
		Action: func(c *ucli.Context) error {
			log, err := newLogger(c.App.ErrWriter, c.String("log-format"), c.String("log-level"))
			if err != nil {
				return ucli.Exit(err, 2)
			}
			lim, err := httpFlags(c)
			if err != nil {
				return ucli.Exit(err, 2)
			}
			data, _ := filepath.Abs(c.String("data"))
			admin, err := adminToken(c.String("admin-token-file"), data, c.App.ErrWriter)
			if err != nil {
				return ucli.Exit(err, 2)
			}
			dur := storage.Full
			switch c.String("durability") {
			case "full":
			case "relaxed":
				dur = storage.Relaxed
			default:
				return ucli.Exit(fmt.Errorf("--durability %q: want full or relaxed", c.String("durability")), 2)
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			srv, err := tenant.Open(ctx, tenant.Config{Data: data, AdminToken: admin, Durability: dur, IdleTimeout: c.Duration("idle-timeout"),
				MaxDeploys: c.Int("max-deploys"), Logger: log})
			if err != nil {
				return ucli.Exit(err, 1)
			}
			ln, err := net.Listen("tcp", c.String("listen"))
			if err != nil {
				srv.Close(context.Background())
				return ucli.Exit(fmt.Errorf("listen %s: %w", c.String("listen"), err), 1)
			}
			hs, ln := newHTTPServer(srv, ln, lim, log)
			fmt.Fprintf(c.App.Writer, "dowasm serve listening on http://%s (data %s)\n", ln.Addr(), data)
			errc := make(chan error, 1)
			go func() { errc <- hs.Serve(ln) }()
			select {
			case err := <-errc:
				srv.Close(context.Background())
				return ucli.Exit(fmt.Errorf("serve: %w", err), 1)
			case <-ctx.Done():
			}
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			hs.Shutdown(sctx)
			if err := srv.Close(sctx); err != nil {
				return ucli.Exit(err, 1)
			}
			hs.Close()
			return nil
		},
	}
}

var httpDefaults = config.DefaultHTTP()

// httpFlags reads serve's connection limits (the http section of dowasm.yaml for run).
func httpFlags(c *ucli.Context) (config.HTTP, error) {
	lim := config.HTTP{
		HeaderTimeout:  c.Duration("http-header-timeout"),
		BodyTimeout:    c.Duration("http-body-timeout"),
		WriteTimeout:   c.Duration("http-write-timeout"),
		IdleTimeout:    c.Duration("http-idle-timeout"),
		MaxConnections: c.Int("max-connections"),
	}
	for _, name := range []string{"http-header-timeout", "http-body-timeout", "http-write-timeout", "http-idle-timeout"} {
		if d := c.Duration(name); d <= 0 {
			return lim, fmt.Errorf("--%s %s: want a positive duration (examples: 500ms, 10s, 2m)", name, d)
		}
	}
	if lim.MaxConnections < 0 {
		return lim, fmt.Errorf("--max-connections %d: want a positive number (or none: half the open-file limit)", lim.MaxConnections)
	}
	if c.Int("max-deploys") <= 0 {
		return lim, fmt.Errorf("--max-deploys %d: want a positive number", c.Int("max-deploys"))
	}
	return lim, nil
}

// adminToken reads the admin token from file, DOWASM_ADMIN_TOKEN, or <data>/admin.token
// (created with a random token, mode 0600, on first use).
func adminToken(file, data string, stderr io.Writer) (string, error) {
	read := func(p string) (string, error) {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", fmt.Errorf("admin token: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if len(tok) < 16 {
			return "", fmt.Errorf("admin token in %s: at least 16 characters", p)
		}
		return tok, nil
	}
	if file != "" {
		return read(file)
	}
	if tok := os.Getenv("DOWASM_ADMIN_TOKEN"); tok != "" {
		if len(tok) < 16 {
			return "", errors.New("DOWASM_ADMIN_TOKEN: at least 16 characters")
		}
		return tok, nil
	}
	p := filepath.Join(data, "admin.token")
	if _, err := os.Stat(p); err == nil {
		return read(p)
	}
	if err := durablefs.MkdirAll(data); err != nil {
		return "", err
	}
	var b [32]byte
	rand.Read(b[:])
	tok := "dwa_" + base64.RawURLEncoding.EncodeToString(b[:])
	if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	fmt.Fprintf(stderr, "dowasm: created an admin token in %s\n", p)
	return tok, nil
}

var (
	serverFlag = &ucli.StringFlag{Name: "server", Value: "http://127.0.0.1:8080", EnvVars: []string{"DOWASM_SERVER"}, Usage: "the dowasm serve URL"}
	tokenFlag  = &ucli.StringFlag{Name: "token", EnvVars: []string{"DOWASM_TOKEN"}, Usage: "the tenant's bearer token"}
)

// deployCommand uploads a class (a .wasm file, or a source directory built first).
func deployCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "deploy",
		Usage:     "deploy (or replace) a class on a dowasm serve server",
		ArgsUsage: "<module.wasm | source-dir>",
		Flags: []ucli.Flag{
			serverFlag, tokenFlag,
			&ucli.StringFlag{Name: "name", Required: true, Usage: "class name"},
			&ucli.StringFlag{Name: "toolchain", Usage: "for a source directory: go, tinygo or rust (default from its files)"},
			&ucli.StringSliceFlag{Name: "limit", Usage: "a class limit as key=value (memory_pages, table_elems, event_timeout_ms, event_cpu_ms, storage_bytes, max_queue, max_body_size); repeatable"},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return ucli.Exit("deploy: give one module file or source directory", 2)
			}
			wasm, err := moduleBytes(c.Context, c.Args().First(), c.String("toolchain"), c.App.ErrWriter)
			if err != nil {
				return ucli.Exit(err, 1)
			}
			q := url.Values{}
			for _, kv := range c.StringSlice("limit") {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return ucli.Exit(fmt.Errorf("--limit %q: want key=value", kv), 2)
				}
				q.Set(k, v)
			}
			path := "/_api/classes/" + url.PathEscape(c.String("name"))
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			var out struct {
				Name, SHA256 string
				Replaced     bool
				Limits       tenant.Limits
			}
			if err := apiCall(c, "PUT", path, wasm, &out); err != nil {
				return ucli.Exit(err, 1)
			}
			verb := "deployed"
			if out.Replaced {
				verb = "replaced"
			}
			fmt.Fprintf(c.App.Writer, "%s class %s (%d bytes, sha256 %s)\n", verb, out.Name, len(wasm), out.SHA256[:16])
			return nil
		},
	}
}

// moduleBytes reads a module file, or builds a source directory with the detected toolchain.
func moduleBytes(ctx context.Context, arg, tc string, progress io.Writer) ([]byte, error) {
	st, err := os.Stat(arg)
	if err != nil {
		return nil, err
	}
	p := arg
	if st.IsDir() {
		kind, err := toolchain.Detect(arg, tc)
		if err != nil {
			return nil, err
		}
		cache, _ := os.UserCacheDir()
		if p, err = toolchain.Build(ctx, arg, kind, filepath.Join(cache, "dowasm", "build"), progress); err != nil {
			return nil, err
		}
	}
	return os.ReadFile(p)
}

// classesCommand lists (or deletes) the tenant's classes.
func classesCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "classes",
		Usage: "list the classes deployed on a dowasm serve server (or delete one)",
		Flags: []ucli.Flag{
			serverFlag, tokenFlag,
			&ucli.StringFlag{Name: "delete", Usage: "delete this class (its objects' data is kept)"},
		},
		Action: func(c *ucli.Context) error {
			if name := c.String("delete"); name != "" {
				if err := apiCall(c, "DELETE", "/_api/classes/"+url.PathEscape(name), nil, nil); err != nil {
					return ucli.Exit(err, 1)
				}
				fmt.Fprintf(c.App.Writer, "deleted class %s\n", name)
				return nil
			}
			var out struct {
				Classes []struct {
					Name, SHA256, Updated string
					Limits                tenant.Limits
				}
			}
			if err := apiCall(c, "GET", "/_api/classes", nil, &out); err != nil {
				return ucli.Exit(err, 1)
			}
			for _, cl := range out.Classes {
				fmt.Fprintf(c.App.Writer, "%-24s %s  %s  memory %d pages, event %d ms (CPU %d ms), storage %d bytes\n", cl.Name, cl.SHA256[:16], cl.Updated,
					cl.Limits.MemoryPages, cl.Limits.EventTimeoutMs, cl.Limits.EventCPUMs, cl.Limits.StorageBytes)
			}
			return nil
		},
	}
}

// apiCall sends a request to the class API and decodes a JSON answer; errors carry the server's
// message.
func apiCall(c *ucli.Context, method, path string, body []byte, out any) error {
	if c.String("token") == "" {
		return errors.New("no token: pass --token or set DOWASM_TOKEN")
	}
	req, err := http.NewRequestWithContext(c.Context, method, strings.TrimSuffix(c.String("server"), "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.String("token"))
	resp, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s %s: %s (%s)", method, path, e.Error, resp.Status)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}
