// Package config reads dowasm.yaml. Every error names the file, the line and the field.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// File is dowasm.yaml.
//
//	listen: 127.0.0.1:8080
//	data: ./data
//	idle_timeout: 10s
//	event_timeout: 30s        # run time of one event, waits included
//	event_cpu: 10s            # CPU time of one event (default: no limit besides event_timeout)
//	durability: full          # or relaxed
//	alarm_horizon: 87600h     # how far ahead an alarm may be set (default 10 years)
//	alarm_concurrency: 64     # alarm events running at once (default 64)
//	websockets:
//	  max_sockets: 32768      # per object
//	  max_message: 1MiB       # one message, either direction (B, KiB, MiB)
//	  send_buffer: 1MiB       # bytes queued for one client before it is dropped as a slow consumer
//	  ping_interval: 30s      # a client that does not answer a ping within this is lost
//	http:                     # what one client connection may hold (see HTTP)
//	  header_timeout: 10s     # a request's headers must arrive within this
//	  body_timeout: 60s       # its body within this, from the end of its headers
//	  write_timeout: 60s      # a response must be sent within this, from its first byte
//	  idle_timeout: 60s       # a keep-alive connection without a request is closed after this
//	  max_connections: 10000  # open connections, WebSockets included (default: half the open-file limit)
//	assets:                   # static files served as they are (a page for the objects)
//	  - path: /ui/cursors/
//	    dir: examples/cursors/web
//	classes:
//	  - name: counter
//	    source: examples/counter/go   # build from source (cached), or
//	    module: build/counter.wasm    # a compiled module
//	    toolchain: go                 # go (default for go.mod), tinygo, or rust (default for Cargo.toml)
type File struct {
	Listen       string  `yaml:"listen"`
	Data         string  `yaml:"data"`
	IdleTimeout  string  `yaml:"idle_timeout"`
	EventTimeout string  `yaml:"event_timeout"`
	EventCPU     string  `yaml:"event_cpu"`
	Durability   string  `yaml:"durability"`
	MaxQueue     int     `yaml:"max_queue"`
	MaxInstances int     `yaml:"max_instances"`
	AlarmHorizon string  `yaml:"alarm_horizon"`
	AlarmConc    int     `yaml:"alarm_concurrency"`
	WebSockets   WSFile  `yaml:"websockets"`
	Assets       []Asset `yaml:"assets"`
	Classes      []Class `yaml:"classes"`

	HTTP HTTPFile `yaml:"http"`
}

// WSFile is the websockets section.
type WSFile struct {
	MaxSockets   int    `yaml:"max_sockets"`
	MaxMessage   string `yaml:"max_message"`
	SendBuffer   string `yaml:"send_buffer"`
	PingInterval string `yaml:"ping_interval"`
}

// HTTPFile is the http section (see HTTP for what each bounds and why).
type HTTPFile struct {
	HeaderTimeout  string `yaml:"header_timeout"`
	BodyTimeout    string `yaml:"body_timeout"`
	WriteTimeout   string `yaml:"write_timeout"`
	IdleTimeout    string `yaml:"idle_timeout"`
	MaxConnections int    `yaml:"max_connections"`
}

// HTTP bounds what one client connection can hold: its descriptor is shared with every tenant's
// SQLite handles, so a client that opens connections and never finishes (or never ends) a
// request must lose them. dowasm run reads it from the http section, dowasm serve from its
// --http-* and --max-connections flags. Zero fields take DefaultHTTP's values.
type HTTP struct {
	// HeaderTimeout: a request's headers must have arrived this long after its first byte (or
	// after the connection opened). Default 10s.
	HeaderTimeout time.Duration
	// BodyTimeout: the whole body must have arrived this long after the headers, however it is
	// trickled (a client sending a byte a second is cut, with 408). It does not run while the
	// event runs: once the body is read, the connection has no read deadline until the response
	// is sent. Default 60s: a 32 MiB body over a 5 Mbit/s link, a 2 MB module over 300 kbit/s.
	BodyTimeout time.Duration
	// WriteTimeout: a response must be sent this long after its first byte (a client that does
	// not read is dropped). It starts when the response starts, so an event may run as long as
	// its own timeout allows, and it ends at a WebSocket upgrade (net/http clears a hijacked
	// connection's deadlines; the host keeps its own for sockets). Default 60s.
	WriteTimeout time.Duration
	// IdleTimeout: a keep-alive connection with no request in flight is closed after this.
	// Default 60s (browsers reuse a connection for about that long; nginx keeps 75s).
	IdleTimeout time.Duration
	// MaxConnections: open connections at once, WebSockets included. Past it new connections
	// wait in the kernel's accept queue until one closes (idle ones close within IdleTimeout).
	// 0: half the process's open-file limit (RLIMIT_NOFILE), leaving the other half to SQLite
	// databases, modules and logs.
	MaxConnections int
}

// DefaultHTTP is what an unset HTTP field means.
func DefaultHTTP() HTTP {
	return HTTP{HeaderTimeout: 10 * time.Second, BodyTimeout: 60 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 60 * time.Second}
}

// OrDefaults fills h's unset fields from DefaultHTTP (MaxConnections stays 0: the caller
// derives it from the open-file limit).
func (h HTTP) OrDefaults() HTTP {
	d := DefaultHTTP()
	for _, f := range []struct{ v, def *time.Duration }{{&h.HeaderTimeout, &d.HeaderTimeout}, {&h.BodyTimeout, &d.BodyTimeout}, {&h.WriteTimeout, &d.WriteTimeout}, {&h.IdleTimeout, &d.IdleTimeout}} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return h
}

// Asset serves the files of Dir under the URL prefix Path.
type Asset struct {
	Path string `yaml:"path"`
	Dir  string `yaml:"dir"`
}

// Class is one object class.
type Class struct {
	Name      string `yaml:"name"`
	Module    string `yaml:"module"`
	Source    string `yaml:"source"`
	Toolchain string `yaml:"toolchain"`
}

// Config is a validated configuration with paths made absolute (relative to the file).
type Config struct {
	Path         string
	Listen       string
	Data         string
	IdleTimeout  time.Duration
	EventTimeout time.Duration
	EventCPU     time.Duration // 0: no CPU limit besides EventTimeout
	Relaxed      bool
	MaxQueue     int
	MaxInstances int
	AlarmHorizon time.Duration
	AlarmConc    int
	// WebSocket limits; zero means the host's default.
	WSMaxSockets   int
	WSMaxMessage   int
	WSSendBuffer   int
	WSPingInterval time.Duration
	HTTP           HTTP // connection limits, defaults filled in
	Assets         []Asset
	Classes        []Class
}

// Error is a configuration error at a place in a file.
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Field, e.Msg)
}

var classNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// Load reads and validates the file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, b)
}

// Parse validates the contents of a config file; path names it in errors and anchors relative
// paths.
func Parse(path string, b []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, yamlError(path, err)
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: path, Field: "classes", Msg: "the file is empty; at least one class is required"}
		}
		return nil, yamlError(path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(abs)
	at := func(path ...any) int { return lineOf(&root, path...) }
	bad := func(field string, line int, format string, args ...any) error {
		return &Error{File: path, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	c := &Config{Path: abs, Listen: f.Listen, MaxQueue: f.MaxQueue, MaxInstances: f.MaxInstances}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	c.Data = f.Data
	if c.Data == "" {
		c.Data = "data"
	}
	if !filepath.IsAbs(c.Data) {
		c.Data = filepath.Join(dir, c.Data)
	}
	dur := func(field, v string, def time.Duration) (time.Duration, error) {
		if v == "" {
			return def, nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return 0, bad(field, at(field), "%q is not a positive duration (examples: 500ms, 10s, 2m)", v)
		}
		return d, nil
	}
	if c.IdleTimeout, err = dur("idle_timeout", f.IdleTimeout, 10*time.Second); err != nil {
		return nil, err
	}
	if c.EventTimeout, err = dur("event_timeout", f.EventTimeout, 30*time.Second); err != nil {
		return nil, err
	}
	if c.EventCPU, err = dur("event_cpu", f.EventCPU, 0); err != nil {
		return nil, err
	}
	switch f.Durability {
	case "", "full":
	case "relaxed":
		c.Relaxed = true
	default:
		return nil, bad("durability", at("durability"), "%q is not one of full, relaxed", f.Durability)
	}
	if c.AlarmHorizon, err = dur("alarm_horizon", f.AlarmHorizon, 10*365*24*time.Hour); err != nil {
		return nil, err
	}
	if c.AlarmConc = f.AlarmConc; c.AlarmConc < 0 {
		return nil, bad("alarm_concurrency", at("alarm_concurrency"), "must be positive")
	}
	if f.MaxQueue < 0 {
		return nil, bad("max_queue", at("max_queue"), "must be positive")
	}
	if f.MaxInstances < 0 {
		return nil, bad("max_instances", at("max_instances"), "must be positive")
	}
	if c.WSMaxSockets = f.WebSockets.MaxSockets; c.WSMaxSockets < 0 {
		return nil, bad("websockets.max_sockets", at("websockets", "max_sockets"), "must be positive")
	}
	size := func(field, v string) (int, error) {
		if v == "" {
			return 0, nil
		}
		n, err := parseSize(v)
		if err != nil {
			return 0, bad("websockets."+field, at("websockets", field), "%v", err)
		}
		return n, nil
	}
	if c.WSMaxMessage, err = size("max_message", f.WebSockets.MaxMessage); err != nil {
		return nil, err
	}
	if c.WSSendBuffer, err = size("send_buffer", f.WebSockets.SendBuffer); err != nil {
		return nil, err
	}
	if f.WebSockets.PingInterval != "" {
		if c.WSPingInterval, err = dur("ping_interval", f.WebSockets.PingInterval, 0); err != nil {
			err.(*Error).Field, err.(*Error).Line = "websockets.ping_interval", at("websockets", "ping_interval")
			return nil, err
		}
	}
	if c.HTTP, err = parseHTTP(f.HTTP, func(field string, d string) (time.Duration, error) {
		v, err := dur(field, d, 0)
		if err != nil {
			err.(*Error).Field, err.(*Error).Line = "http."+field, at("http", field)
		}
		return v, err
	}); err != nil {
		return nil, err
	}
	if c.HTTP.MaxConnections < 0 {
		return nil, bad("http.max_connections", at("http", "max_connections"), "must be positive (or left out: half the open-file limit)")
	}
	for i, a := range f.Assets {
		field := fmt.Sprintf("assets[%d]", i)
		if !strings.HasPrefix(a.Path, "/") || !strings.HasSuffix(a.Path, "/") || a.Path == "/" || strings.HasPrefix(a.Path, "/_dowasm/") {
			return nil, bad(field+".path", at("assets", i, "path"), "%q: want a URL prefix like /ui/app/ (starting and ending with /, not / itself, not under /_dowasm/)", a.Path)
		}
		if a.Dir == "" {
			return nil, bad(field+".dir", at("assets", i), "missing")
		}
		if !filepath.IsAbs(a.Dir) {
			a.Dir = filepath.Join(dir, a.Dir)
		}
		if st, err := os.Stat(a.Dir); err != nil || !st.IsDir() {
			return nil, bad(field+".dir", at("assets", i, "dir"), "%s is not a directory", a.Dir)
		}
		c.Assets = append(c.Assets, a)
	}
	if len(f.Classes) == 0 {
		return nil, bad("classes", at("classes"), "at least one class is required")
	}
	seen := map[string]bool{}
	for i, cl := range f.Classes {
		field := fmt.Sprintf("classes[%d]", i)
		line := at("classes", i)
		if cl.Name == "" {
			return nil, bad(field+".name", line, "missing")
		}
		if !classNameRE.MatchString(cl.Name) {
			return nil, bad(field+".name", at("classes", i, "name"), "%q: use lowercase letters, digits, - and _, starting with a letter (it appears in URLs and directory names)", cl.Name)
		}
		if seen[cl.Name] {
			return nil, bad(field+".name", at("classes", i, "name"), "class %q is defined twice", cl.Name)
		}
		seen[cl.Name] = true
		for j, a := range c.Assets {
			if first, _, _ := strings.Cut(strings.TrimPrefix(a.Path, "/"), "/"); first == cl.Name {
				return nil, bad(fmt.Sprintf("assets[%d].path", j), at("assets", j, "path"), "%q would hide class %q's objects: choose another prefix", a.Path, cl.Name)
			}
		}
		if (cl.Module == "") == (cl.Source == "") {
			return nil, bad(field, line, "class %q needs exactly one of module (a .wasm file) or source (a directory to build)", cl.Name)
		}
		switch cl.Toolchain {
		case "", "go", "tinygo", "rust":
		default:
			return nil, bad(field+".toolchain", at("classes", i, "toolchain"), "%q is not supported (supported: go, tinygo, rust; default: go for go.mod, rust for Cargo.toml)", cl.Toolchain)
		}
		if cl.Module != "" && !filepath.IsAbs(cl.Module) {
			cl.Module = filepath.Join(dir, cl.Module)
		}
		if cl.Source != "" {
			if !filepath.IsAbs(cl.Source) {
				cl.Source = filepath.Join(dir, cl.Source)
			}
			if st, err := os.Stat(cl.Source); err != nil || !st.IsDir() {
				return nil, bad(field+".source", at("classes", i, "source"), "%s is not a directory", cl.Source)
			}
		}
		c.Classes = append(c.Classes, cl)
	}
	return c, nil
}

// parseHTTP reads the http section with dur (which names the field in its errors).
func parseHTTP(f HTTPFile, dur func(field, v string) (time.Duration, error)) (HTTP, error) {
	h := HTTP{MaxConnections: f.MaxConnections}
	for _, d := range []struct {
		field, v string
		to       *time.Duration
	}{{"header_timeout", f.HeaderTimeout, &h.HeaderTimeout}, {"body_timeout", f.BodyTimeout, &h.BodyTimeout},
		{"write_timeout", f.WriteTimeout, &h.WriteTimeout}, {"idle_timeout", f.IdleTimeout, &h.IdleTimeout}} {
		var err error
		if *d.to, err = dur(d.field, d.v); err != nil {
			return h, err
		}
	}
	return h.OrDefaults(), nil
}

// parseSize reads a byte count: a number with an optional unit B, KiB or MiB.
func parseSize(v string) (int, error) {
	num, mul := v, 1
	for _, u := range []struct {
		s string
		m int
	}{{"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if n, ok := strings.CutSuffix(v, u.s); ok {
			num, mul = strings.TrimSpace(n), u.m
			break
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 || n > (1<<30)/mul {
		return 0, fmt.Errorf("%q is not a size between 1 B and 1024 MiB (examples: 65536, 64KiB, 1MiB)", v)
	}
	return n * mul, nil
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError rewrites yaml.v3's messages ("yaml: line 3: ...", or a list of them for unknown
// fields) as "file:3: ..." lines, the form editors and people expect.
func yamlError(path string, err error) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	out := make([]string, len(msgs))
	for i, m := range msgs {
		if g := yamlLineRE.FindStringSubmatch(m); g != nil {
			msg := strings.Replace(g[2], " in type config.File", "", 1)
			msg = strings.Replace(msg, " in type config.Class", " in a class", 1)
			out[i] = fmt.Sprintf("%s:%s: %s", path, g[1], msg)
		} else {
			out[i] = fmt.Sprintf("%s: %s", path, m)
		}
	}
	return errors.New(strings.Join(out, "\n"))
}

// lineOf finds the line of a value in the document by a path of map keys (string) and sequence
// indexes (int); 0 when it is not there.
func lineOf(root *yaml.Node, path ...any) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, p := range path {
		switch k := p.(type) {
		case string:
			if n.Kind != yaml.MappingNode {
				return line
			}
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == k {
					line = n.Content[i].Line
					n = n.Content[i+1]
					found = true
					break
				}
			}
			if !found {
				return line
			}
		case int:
			if n.Kind != yaml.SequenceNode || k >= len(n.Content) {
				return line
			}
			n = n.Content[k]
			line = n.Line
		}
	}
	return line
}
