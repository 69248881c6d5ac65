package tenant

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dowasm/dowasm/gateway"
	"github.com/dowasm/dowasm/host"
	"github.com/dowasm/dowasm/storage"
)

// Config sets up a multi-tenant server.
type Config struct {
	// Data holds tenants.sqlite, the modules, and each tenant's objects under
	// tenants/<tenant>/objects.
	Data string
	// AdminToken authorizes /_admin/ (creating tenants and their tokens). Required.
	AdminToken string
	Durability storage.Durability
	// IdleTimeout evicts idle instances (default 10s).
	IdleTimeout time.Duration
	// MaxOpenDatabases bounds each tenant's open SQLite handles (3 descriptors each); default 256.
	MaxOpenDatabases int
	// MaxModuleSize bounds an uploaded module; default 64 MiB.
	MaxModuleSize int64
	// MaxDeploys bounds the deploys in progress at once across tenants (each holds its module in
	// memory, up to MaxModuleSize, and compiles it); past it a deploy gets 503 before its body is
	// read. Default DefaultMaxDeploys.
	MaxDeploys int
	// StopTimeout bounds how long a deleted tenant's runtime may take to stop (its events to
	// end, its sockets to close, its databases to close) before the deletion gives up and
	// reports it, leaving the tenant's records and directory in place. Default 30s.
	StopTimeout time.Duration
	Logger      *slog.Logger
}

// DefaultMaxDeploys is Config.MaxDeploys's default: 4 modules of 64 MiB are 256 MiB of memory
// at most, and 4 compilations at once leave a small machine's other cores to the objects.
const DefaultMaxDeploys = 4

// Server is the multi-tenant HTTP front: the admin API, the tenants' class API, and their
// objects.
type Server struct {
	cfg   Config
	log   *slog.Logger
	store *store
	admin [32]byte // SHA-256 of the admin token

	lifecycle sync.Mutex    // one tenant creation or deletion at a time
	deploys   chan struct{} // a slot per deploy in progress (Config.MaxDeploys)

	mu      sync.RWMutex
	tenants map[string]*tenant
	tokens  map[[32]byte]string // token hash -> tenant
	stuck   map[string]error    // deleted tenants whose runtime did not stop, and why
	closed  bool
}

type tenant struct {
	name   string
	limits Limits
	rt     *host.Runtime
	gw     *gateway.Gateway
	deploy sync.Mutex // one deploy or delete at a time per tenant
}

// Open loads every tenant and its classes. A class that no longer loads is logged and left out
// (its tenant can deploy it again); a tenant whose runtime cannot start fails Open.
func Open(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.AdminToken == "" {
		return nil, errors.New("tenant server: an admin token is required")
	}
	if cfg.MaxOpenDatabases <= 0 {
		cfg.MaxOpenDatabases = 256
	}
	if cfg.MaxModuleSize <= 0 {
		cfg.MaxModuleSize = 64 << 20
	}
	if cfg.MaxDeploys <= 0 {
		cfg.MaxDeploys = DefaultMaxDeploys
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	st, err := openStore(cfg.Data)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, store: st, admin: sha256.Sum256([]byte(cfg.AdminToken)), tenants: map[string]*tenant{},
		deploys: make(chan struct{}, cfg.MaxDeploys), stuck: map[string]error{}}
	if s.tokens, err = st.tokenHashes(); err != nil {
		st.close()
		return nil, err
	}
	rows, err := st.tenants()
	if err != nil {
		st.close()
		return nil, err
	}
	for _, row := range rows {
		t, err := s.startTenant(ctx, row.name, row.limits)
		if err != nil {
			s.Close(context.Background())
			return nil, err
		}
		classes, err := st.classes(row.name)
		if err != nil {
			s.Close(context.Background())
			return nil, err
		}
		for _, c := range classes {
			p := st.modulePath(row.name, c.name)
			wasm, err := os.ReadFile(p)
			if err == nil {
				_, err = t.rt.DeployClass(ctx, c.name, p, wasm, hostLimits(c.limits.within(t.limits)))
			}
			if err != nil {
				s.log.Error("tenant class not loaded", "tenant", row.name, "class", c.name, "module", p, "error", err)
				continue
			}
		}
		s.log.Info("tenant loaded", "tenant", row.name, "classes", len(t.rt.Classes()))
	}
	return s, nil
}

func (s *Server) startTenant(ctx context.Context, name string, l Limits) (*tenant, error) {
	rt, err := host.New(ctx, host.Config{
		DataDir:           filepath.Join(s.cfg.Data, "tenants", name, "objects"),
		CacheDir:          filepath.Join(s.cfg.Data, ".cache", "wazero"),
		Durability:        s.cfg.Durability,
		IdleTimeout:       s.cfg.IdleTimeout,
		EventTimeout:      time.Duration(l.EventTimeoutMs) * time.Millisecond,
		EventCPU:          time.Duration(l.EventCPUMs) * time.Millisecond,
		MaxQueue:          l.MaxQueue,
		MaxInstances:      l.MaxInstances,
		HardInstanceLimit: true,
		MaxMemoryBytes:    l.MaxMemoryBytes,
		MaxSockets:        l.MaxSockets,
		MaxObjects:        l.MaxObjects,
		MaxStorageBytes:   l.MaxStorageBytes,
		MaxOpenDatabases:  s.cfg.MaxOpenDatabases,
		MemoryLimitPages:  l.MemoryPages,
		MaxTableElems:     l.TableElems,
		Logger:            s.log.With("tenant", name),
	})
	if err != nil {
		return nil, fmt.Errorf("tenant %s: %w", name, err)
	}
	gw := gateway.New(rt, s.log.With("tenant", name))
	if l.MaxBodySize > 0 {
		gw.MaxBodySize = l.MaxBodySize
	}
	t := &tenant{name: name, limits: l, rt: rt, gw: gw}
	s.mu.Lock()
	s.tenants[name] = t
	s.mu.Unlock()
	return t, nil
}

func hostLimits(l Limits) host.ClassLimits {
	return host.ClassLimits{
		MemoryPages:  l.MemoryPages,
		TableElems:   l.TableElems,
		EventTimeout: time.Duration(l.EventTimeoutMs) * time.Millisecond,
		EventCPU:     time.Duration(l.EventCPUMs) * time.Millisecond,
		StorageBytes: l.StorageBytes,
		MaxQueue:     l.MaxQueue,
		MaxBodySize:  l.MaxBodySize,
	}
}

// Close stops every tenant's runtime (their in-flight events end, sockets get 1001).
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	ts := make([]*tenant, 0, len(s.tenants))
	for _, t := range s.tenants {
		ts = append(ts, t)
	}
	s.mu.Unlock()
	var first error
	for _, t := range ts {
		if err := t.rt.Close(ctx); err != nil && first == nil {
			first = fmt.Errorf("tenant %s: %w", t.name, err)
		}
	}
	if err := s.store.close(); err != nil && first == nil {
		first = err
	}
	return first
}

type apiError struct {
	Error string `json:"error"`
}

// writeJSON answers v as JSON, with <, > and & as they are: messages name routes like
// /<class>/<name>, and nobody reads them as HTML.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

func fail(w http.ResponseWriter, status int, format string, args ...any) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dowasm"`)
	}
	writeJSON(w, status, apiError{Error: fmt.Sprintf(format, args...)})
}

// bearer returns the request's bearer token, or "".
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// tenantOf authenticates the request's token; nil (after answering 401) if it is missing or
// unknown.
func (s *Server) tenantOf(w http.ResponseWriter, r *http.Request) *tenant {
	tok := bearer(r)
	if tok == "" {
		fail(w, http.StatusUnauthorized, "missing bearer token (Authorization: Bearer <token>)")
		return nil
	}
	s.mu.RLock()
	t := s.tenants[s.tokens[sha256.Sum256([]byte(tok))]]
	s.mu.RUnlock()
	if t == nil {
		fail(w, http.StatusUnauthorized, "invalid bearer token")
		return nil
	}
	return t
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/_admin/"):
		h := sha256.Sum256([]byte(bearer(r)))
		if subtle.ConstantTimeCompare(h[:], s.admin[:]) != 1 {
			fail(w, http.StatusUnauthorized, "missing or invalid admin token")
			return
		}
		s.serveAdmin(w, r)
	case r.URL.Path == "/_api/classes" || strings.HasPrefix(r.URL.Path, "/_api/classes/"):
		if t := s.tenantOf(w, r); t != nil {
			s.serveClasses(w, r, t)
		}
	default:
		if t := s.tenantOf(w, r); t != nil {
			// The tenant's own gateway: its classes, IDs and objects only. Another tenant's
			// class is simply unknown here (404), so there is no existence oracle.
			t.gw.ServeHTTP(w, r)
		}
	}
}

func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/_admin/")
	switch {
	case rest == "tenants" && r.Method == http.MethodGet:
		rows, err := s.store.tenants()
		if err != nil {
			fail(w, http.StatusInternalServerError, "%v", err)
			return
		}
		type item struct {
			Name    string   `json:"name"`
			Limits  Limits   `json:"limits"`
			Classes []string `json:"classes"`
		}
		out := []item{}
		s.mu.RLock()
		for _, row := range rows {
			it := item{Name: row.name, Limits: row.limits, Classes: []string{}}
			if t := s.tenants[row.name]; t != nil {
				it.Classes = append(it.Classes, t.rt.Classes()...)
			}
			out = append(out, it)
		}
		s.mu.RUnlock()
		writeJSON(w, http.StatusOK, map[string]any{"tenants": out})
	case rest == "tenants" && r.Method == http.MethodPost:
		var req struct {
			Name   string  `json:"name"`
			Limits *Limits `json:"limits"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			fail(w, http.StatusBadRequest, "request body: %v (want {\"name\": ..., \"limits\": {...}})", err)
			return
		}
		if !ValidName(req.Name) {
			fail(w, http.StatusBadRequest, "tenant name %q: use 1-63 lowercase letters, digits and -, starting with a letter", req.Name)
			return
		}
		l := DefaultLimits
		if req.Limits != nil {
			l = req.Limits.orDefaults()
		}
		s.lifecycle.Lock()
		defer s.lifecycle.Unlock()
		s.mu.RLock()
		exists, stuck := s.tenants[req.Name] != nil, s.stuck[req.Name]
		s.mu.RUnlock()
		if stuck != nil {
			fail(w, http.StatusConflict, "tenant %q: %v", req.Name, stuck)
			return
		}
		if exists {
			fail(w, http.StatusConflict, "tenant %q: %v", req.Name, errExists)
			return
		}
		// A directory without a tenant record is what a crash during a delete leaves: keep it
		// aside, a new tenant starts empty.
		if _, err := s.store.retireDir(req.Name, false); err != nil {
			fail(w, http.StatusInternalServerError, "%v", err)
			return
		}
		if err := s.store.createTenant(req.Name, l); err != nil {
			if errors.Is(err, errExists) {
				fail(w, http.StatusConflict, "%v", err)
				return
			}
			fail(w, http.StatusInternalServerError, "%v", err)
			return
		}
		if _, err := s.startTenant(r.Context(), req.Name, l); err != nil {
			fail(w, http.StatusInternalServerError, "%v", err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]any{"name": req.Name, "limits": l})
	case strings.HasPrefix(rest, "tenants/") && strings.Contains(rest, "/tokens"):
		s.serveTokens(w, r, strings.TrimPrefix(rest, "tenants/"))
	case strings.HasPrefix(rest, "tenants/") && r.Method == http.MethodDelete:
		s.deleteTenant(w, r, strings.TrimPrefix(rest, "tenants/"))
	default:
		fail(w, http.StatusNotFound, "unknown admin endpoint %s %s (have: %s)", r.Method, r.URL.Path, adminEndpoints)
	}
}

const adminEndpoints = "GET/POST /_admin/tenants, DELETE /_admin/tenants/<name>[?purge=true], GET/POST /_admin/tenants/<name>/tokens, DELETE /_admin/tenants/<name>/tokens/<id>"

// deleteTenant removes a tenant: its tokens stop working at once, its runtime stops (running
// events finish, sockets close with 1001), its records go, and its directory (modules and object
// data) is moved to <data>/deleted/<name>-<unix ns>, or removed with ?purge=true. A tenant
// created later with the same name starts empty.
func (s *Server) deleteTenant(w http.ResponseWriter, r *http.Request, name string) {
	purge := false
	switch v := r.URL.Query().Get("purge"); v {
	case "", "false":
	case "true":
		purge = true
	default:
		fail(w, http.StatusBadRequest, "purge=%q: want true or false", v)
		return
	}
	s.lifecycle.Lock()
	defer s.lifecycle.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		fail(w, http.StatusServiceUnavailable, "the server is shutting down")
		return
	}
	t, stuck := s.tenants[name], s.stuck[name]
	if t != nil {
		delete(s.tenants, name)
		for h, tn := range s.tokens {
			if tn == name {
				delete(s.tokens, h)
			}
		}
	}
	s.mu.Unlock()
	if stuck != nil {
		fail(w, http.StatusConflict, "tenant %q: %v", name, stuck)
		return
	}
	if t == nil {
		fail(w, http.StatusNotFound, "no tenant %q", name)
		return
	}
	t.deploy.Lock() // no deploy in flight from here on
	defer t.deploy.Unlock()
	if err := s.stopTenant(t); err != nil {
		fail(w, http.StatusInternalServerError, "tenant %s: %v", name, err)
		return
	}
	if err := s.store.deleteTenant(name); err != nil {
		fail(w, http.StatusInternalServerError, "tenant %s: stopped, but its records could not be deleted: %v", name, err)
		return
	}
	kept, err := s.store.retireDir(name, purge)
	if err != nil {
		fail(w, http.StatusInternalServerError, "tenant %s: deleted, but its directory was not moved: %v", name, err)
		return
	}
	s.log.Info("tenant deleted", "tenant", name, "data", kept)
	out := map[string]any{"deleted": name}
	if kept != "" {
		out["data"] = kept
	}
	writeJSON(w, http.StatusOK, out)
}

// stopTenant closes a deleted tenant's runtime with a deadline of its own: the admin's request
// may be gone (a client that disconnects cancels it), and a runtime left half-closed keeps its
// databases, alarm index and wazero runtime open in a directory about to be moved or removed.
// Only when every object loop has ended and every handle is closed may the caller touch the
// directory. If the runtime does not stop in time, the tenant stays deleted from this process
// (its tokens do not work) but keeps its records and directory, and is marked stuck so that
// neither a retry nor a new tenant of its name touches the files still open.
func (s *Server) stopTenant(t *tenant) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.StopTimeout)
	defer cancel()
	err := t.rt.Close(ctx)
	if err == nil {
		return nil
	}
	s.log.Error("deleted tenant's runtime did not stop; its records and directory are kept", "tenant", t.name, "timeout", s.cfg.StopTimeout, "error", err)
	stuck := fmt.Errorf("its runtime did not stop within %s (%v): its tokens no longer work, but its records and directory are kept until the server restarts (the tenant is then back; delete it again)", s.cfg.StopTimeout, err)
	s.mu.Lock()
	s.stuck[t.name] = stuck
	s.mu.Unlock()
	return stuck
}

// serveTokens creates (POST .../tokens: the token is shown once), lists (GET .../tokens: IDs and
// creation times only) and revokes (DELETE .../tokens/<id>: at once, for every later request) a
// tenant's tokens. rest is "<tenant>/tokens[/<id>]".
func (s *Server) serveTokens(w http.ResponseWriter, r *http.Request, rest string) {
	name, sub, _ := strings.Cut(rest, "/tokens")
	// (not while the tenant is being deleted: a token created then would outlive it, and work
	// for a later tenant of the same name)
	s.lifecycle.Lock()
	defer s.lifecycle.Unlock()
	s.mu.RLock()
	t := s.tenants[name]
	s.mu.RUnlock()
	if t == nil {
		fail(w, http.StatusNotFound, "no tenant %q", name)
		return
	}
	switch {
	case sub == "" && r.Method == http.MethodPost:
		tok, id, err := s.store.newToken(name)
		if err != nil {
			fail(w, http.StatusInternalServerError, "%v", err)
			return
		}
		s.mu.Lock()
		s.tokens[sha256.Sum256([]byte(tok))] = name
		s.mu.Unlock()
		writeJSON(w, http.StatusCreated, map[string]string{"tenant": name, "token": tok, "id": id})
	case sub == "" && r.Method == http.MethodGet:
		toks, err := s.store.tokens(name)
		if err != nil {
			fail(w, http.StatusInternalServerError, "%v", err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"tenant": name, "tokens": toks})
	case strings.HasPrefix(sub, "/") && r.Method == http.MethodDelete:
		id := sub[1:]
		h, found, err := s.store.revokeToken(name, id)
		if err != nil {
			fail(w, http.StatusInternalServerError, "%v", err)
			return
		}
		if !found {
			fail(w, http.StatusNotFound, "tenant %q has no token %q (GET /_admin/tenants/%s/tokens lists their IDs)", name, id, name)
			return
		}
		s.mu.Lock()
		delete(s.tokens, h)
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		fail(w, http.StatusNotFound, "unknown admin endpoint %s %s (have: %s)", r.Method, r.URL.Path, adminEndpoints)
	}
}

// orDefaults fills a tenant's unset limits from DefaultLimits.
func (l Limits) orDefaults() Limits {
	d := DefaultLimits
	if l.MemoryPages == 0 {
		l.MemoryPages = d.MemoryPages
	}
	if l.TableElems == 0 {
		l.TableElems = d.TableElems
	}
	if l.EventTimeoutMs == 0 {
		l.EventTimeoutMs = d.EventTimeoutMs
	}
	if l.EventCPUMs == 0 {
		l.EventCPUMs = d.EventCPUMs
	}
	if l.StorageBytes == 0 {
		l.StorageBytes = d.StorageBytes
	}
	if l.MaxQueue == 0 {
		l.MaxQueue = d.MaxQueue
	}
	if l.MaxBodySize == 0 {
		l.MaxBodySize = d.MaxBodySize
	}
	if l.MaxInstances == 0 {
		l.MaxInstances = d.MaxInstances
	}
	if l.MaxMemoryBytes == 0 {
		l.MaxMemoryBytes = d.MaxMemoryBytes
	}
	if l.MaxSockets == 0 {
		l.MaxSockets = d.MaxSockets
	}
	if l.MaxObjects == 0 {
		l.MaxObjects = d.MaxObjects
	}
	if l.MaxStorageBytes == 0 {
		l.MaxStorageBytes = d.MaxStorageBytes
	}
	return l
}

// classInfo is one class in the class API's answers.
type classInfo struct {
	Name     string `json:"name"`
	SHA256   string `json:"sha256"`
	Limits   Limits `json:"limits"`
	Updated  string `json:"updated,omitempty"`
	Replaced *bool  `json:"replaced,omitempty"`
}

func (s *Server) serveClasses(w http.ResponseWriter, r *http.Request, t *tenant) {
	name := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/_api/classes"), "/")
	switch {
	case name == "" && r.Method == http.MethodGet:
		rows, err := s.store.classes(t.name)
		if err != nil {
			fail(w, http.StatusInternalServerError, "%v", err)
			return
		}
		out := []classInfo{}
		for _, c := range rows {
			out = append(out, classInfo{Name: c.name, SHA256: c.sha256, Limits: c.limits.within(t.limits), Updated: c.updated.UTC().Format(time.RFC3339)})
		}
		writeJSON(w, http.StatusOK, map[string]any{"classes": out})
	case name != "" && r.Method == http.MethodPut:
		s.deploy(w, r, t, name)
	case name != "" && r.Method == http.MethodDelete:
		t.deploy.Lock()
		defer t.deploy.Unlock()
		found, err := s.store.deleteClass(t.name, name)
		if err != nil {
			fail(w, http.StatusInternalServerError, "%v", err)
			return
		}
		if !found {
			fail(w, http.StatusNotFound, "no class %q", name)
			return
		}
		if err := t.rt.DeleteClass(name); err != nil && !errors.Is(err, host.ErrNoClass) {
			fail(w, http.StatusInternalServerError, "%v", err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		fail(w, http.StatusNotFound, "unknown API endpoint %s %s (have: GET /_api/classes, PUT and DELETE /_api/classes/<name>)", r.Method, r.URL.Path)
	}
}

// limitParams are the query parameters of a deploy, by Limits field.
var limitParams = []string{"memory_pages", "table_elems", "event_timeout_ms", "event_cpu_ms", "storage_bytes", "max_queue", "max_body_size"}

func parseLimits(r *http.Request) (Limits, error) {
	var l Limits
	q := r.URL.Query()
	for k := range q {
		found := false
		for _, p := range limitParams {
			found = found || k == p
		}
		if !found {
			return l, fmt.Errorf("unknown parameter %q (limits: %s)", k, strings.Join(limitParams, ", "))
		}
	}
	get := func(k string, bits int) (int64, error) {
		v := q.Get(k)
		if v == "" {
			return 0, nil
		}
		n, err := strconv.ParseInt(v, 10, bits)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%s=%q: want a positive integer", k, v)
		}
		return n, nil
	}
	var err error
	var n int64
	if n, err = get("memory_pages", 32); err != nil {
		return l, err
	}
	l.MemoryPages = uint32(n)
	if n, err = get("table_elems", 32); err != nil {
		return l, err
	}
	l.TableElems = uint32(n)
	if l.EventTimeoutMs, err = get("event_timeout_ms", 64); err != nil {
		return l, err
	}
	if l.EventCPUMs, err = get("event_cpu_ms", 64); err != nil {
		return l, err
	}
	if l.StorageBytes, err = get("storage_bytes", 64); err != nil {
		return l, err
	}
	if n, err = get("max_queue", 32); err != nil {
		return l, err
	}
	l.MaxQueue = int(n)
	if l.MaxBodySize, err = get("max_body_size", 64); err != nil {
		return l, err
	}
	return l, nil
}

// deploy validates and compiles an uploaded module, makes it the class's module (live objects
// move to it at their next event), and records it, all or nothing from the tenant's view.
func (s *Server) deploy(w http.ResponseWriter, r *http.Request, t *tenant, name string) {
	if !host.ValidClassName(name) {
		fail(w, http.StatusBadRequest, "class name %q: use lowercase letters, digits, - and _, starting with a letter", name)
		return
	}
	l, err := parseLimits(r)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	if r.ContentLength > s.cfg.MaxModuleSize {
		fail(w, http.StatusRequestEntityTooLarge, "module: %d bytes, at most %d", r.ContentLength, s.cfg.MaxModuleSize)
		return
	}
	// A slot before the body: each deploy holds its module in memory, so the cap has to bound
	// the bodies being read, not only the compilations.
	select {
	case s.deploys <- struct{}{}:
		defer func() { <-s.deploys }()
	default:
		w.Header().Set("Retry-After", "1")
		fail(w, http.StatusServiceUnavailable, "class %s not deployed: %d deploys are in progress on this server, the most it takes at once (dowasm serve --max-deploys); retry shortly", name, cap(s.deploys))
		return
	}
	wasm, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxModuleSize))
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			fail(w, http.StatusRequestEntityTooLarge, "module: more than %d bytes", s.cfg.MaxModuleSize)
		case errors.Is(err, os.ErrDeadlineExceeded):
			fail(w, http.StatusRequestTimeout, "module: %v", err)
		default:
			fail(w, http.StatusBadRequest, "module: %v", err)
		}
		return
	}
	t.deploy.Lock()
	defer t.deploy.Unlock()
	replaced := t.rt.Class(name) != nil
	eff := l.within(t.limits)
	if _, err := t.rt.DeployClass(r.Context(), name, "upload", wasm, hostLimits(eff)); err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	sum := sha256.Sum256(wasm)
	hexSum := hex.EncodeToString(sum[:])
	if err := s.store.saveClass(t.name, name, wasm, hexSum, l); err != nil {
		// The class runs but would not survive a restart: say so rather than pretend.
		fail(w, http.StatusInternalServerError, "class %s deployed but not saved (it will be gone after a restart): %v", name, err)
		return
	}
	status := http.StatusCreated
	if replaced {
		status = http.StatusOK
	}
	s.log.Info("class deployed", "tenant", t.name, "class", name, "sha256", hexSum, "bytes", len(wasm), "replaced", replaced)
	writeJSON(w, status, classInfo{Name: name, SHA256: hexSum, Limits: eff, Replaced: &replaced})
}
