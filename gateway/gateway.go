// Package gateway routes HTTP requests to objects:
//
//	/<class>/<name>/<path...>      reaches idFromName(name) of that class (name: 1 to 1,024 bytes)
//	/<class>/id/<hex>/<path...>    reaches an explicit ID (64 hex digits, minted by that class's
//	                               namespace); the name "id" is therefore reserved, and the object
//	                               named "id" is reached as /<class>/%69d/...
//	POST /_dowasm/<class>/new-id   mints a new unique ID
//	GET  /_dowasm/stats            the runtime's counters as JSON
//
// A GET with "Upgrade: websocket" reaches the object like any request; if its handler accepts the
// upgrade (ws_accept), the gateway performs it once the event has committed and hands the
// connection to the host.
//
// Errors the gateway produces itself are JSON: {"error": "...", "class": ..., "object": ...}.
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/dowasm/dowasm/abi"
	"github.com/dowasm/dowasm/host"
	"github.com/dowasm/dowasm/id"
)

// Gateway is an http.Handler in front of a runtime.
type Gateway struct {
	rt *host.Runtime
	// MaxBodySize bounds request bodies; larger requests get 413. Default 32 MiB.
	MaxBodySize int64
	Log         *slog.Logger
}

// New returns a gateway for rt.
func New(rt *host.Runtime, log *slog.Logger) *Gateway {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Gateway{rt: rt, MaxBodySize: abi.MaxBodySize, Log: log}
}

type jsonError struct {
	Error  string `json:"error"`
	Class  string `json:"class,omitempty"`
	Object string `json:"object,omitempty"`
}

func writeError(w http.ResponseWriter, status int, e jsonError) {
	writeJSON(w, status, e)
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

// MaxNameLen bounds an object name, in bytes after percent-decoding: the limit Cloudflare keeps
// names to, and the one the host applies to names in calls between objects.
const MaxNameLen = 1024

// ErrNameTooLong is ParseRoute's error for a name longer than MaxNameLen (a 400, not a 404).
var ErrNameTooLong = errors.New("object name too long")

// Route is the parsed form of a request path.
type Route struct {
	Class string
	Name  string // set for /<class>/<name>/...
	IDHex string // set for /<class>/id/<hex>/...
	Path  string // the rest, starting with "/"
}

// ParseRoute splits an escaped URL path into class, object and the guest's path. Name segments
// are percent-decoded; the guest path stays escaped as it arrived.
func ParseRoute(escapedPath string) (Route, error) {
	p := strings.TrimPrefix(escapedPath, "/")
	class, rest, _ := strings.Cut(p, "/")
	if class == "" {
		return Route{}, errors.New("path must be /<class>/<name>/... or /<class>/id/<hex>/...")
	}
	var rt Route
	rt.Class = class
	seg, rest, _ := strings.Cut(rest, "/")
	if seg == "" {
		return rt, fmt.Errorf("missing object name: use /%s/<name>/... or /%s/id/<64 hex digits>/...", class, class)
	}
	if seg == "id" {
		hex, r2, _ := strings.Cut(rest, "/")
		if hex == "" {
			return rt, fmt.Errorf("missing object ID after /%s/id/: %s", class, idReserved(class))
		}
		rt.IDHex, rest = hex, r2
	} else {
		name, err := url.PathUnescape(seg)
		if err != nil {
			return rt, fmt.Errorf("object name %q: %v", seg, err)
		}
		if len(name) > MaxNameLen {
			return rt, fmt.Errorf("%w: %d bytes, at most %d", ErrNameTooLong, len(name), MaxNameLen)
		}
		rt.Name = name
	}
	rt.Path = "/" + rest
	return rt, nil
}

// idReserved explains the /<class>/id/ route to someone who may have meant an object named "id".
func idReserved(class string) string {
	return fmt.Sprintf("the name \"id\" is reserved for /%s/id/<64 hex digits>/... (the object named \"id\" is /%s/%%69d/...)", class, class)
}

func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_dowasm/") {
		g.serveAdmin(w, r)
		return
	}
	route, err := ParseRoute(r.URL.EscapedPath())
	var class *host.Class
	if route.Class != "" {
		class = g.rt.Class(route.Class)
		// Whatever else is wrong with the path, a class that does not exist is the first thing
		// to say (and /foo should not suggest /foo/<name>/ when there is no class foo).
		if class == nil {
			writeError(w, http.StatusNotFound, jsonError{Error: fmt.Sprintf("unknown class %q", route.Class), Class: route.Class})
			return
		}
	}
	if err != nil {
		status := http.StatusNotFound
		if errors.Is(err, ErrNameTooLong) {
			status = http.StatusBadRequest
		}
		writeError(w, status, jsonError{Error: err.Error(), Class: route.Class})
		return
	}
	var objID id.ID
	if route.IDHex != "" {
		objID, err = class.Namespace().Parse(route.IDHex)
		if err != nil {
			msg := err.Error()
			if errors.Is(err, id.ErrMalformed) {
				msg += ": " + idReserved(route.Class)
			}
			writeError(w, http.StatusBadRequest, jsonError{Error: msg, Class: route.Class, Object: route.IDHex})
			return
		}
	} else {
		objID = class.Namespace().FromName(route.Name)
	}
	maxBody := min(g.MaxBodySize, class.Limits().MaxBodySize)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, jsonError{Error: fmt.Sprintf("request body exceeds %d bytes", maxBody), Class: route.Class})
			return
		}
		status := http.StatusBadRequest
		if errors.Is(err, os.ErrDeadlineExceeded) { // the connection's body timeout
			status = http.StatusRequestTimeout
		}
		writeError(w, status, jsonError{Error: "reading request body: " + err.Error(), Class: route.Class})
		return
	}
	req := &abi.Request{Method: r.Method, Path: route.Path, Query: r.URL.RawQuery, Body: body}
	names := make([]string, 0, len(r.Header))
	for name := range r.Header {
		names = append(names, name)
	}
	sort.Strings(names) // a stable order for the guest, whatever the map's
	for _, name := range names {
		for _, v := range r.Header[name] {
			req.Headers = append(req.Headers, abi.Header{Name: name, Value: v})
		}
	}
	start := time.Now()
	if isWebSocketUpgrade(r) {
		g.serveUpgrade(w, r, route, class, objID, req, start)
		return
	}
	resp, err := class.Fetch(r.Context(), objID, route.Name, req)
	if err != nil {
		g.writeEventError(w, r, route, objID, err, time.Since(start))
		return
	}
	g.writeResponse(w, resp)
}

// isWebSocketUpgrade reports whether r asks for a WebSocket (RFC 6455 section 4.2.1).
func isWebSocketUpgrade(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	for _, v := range r.Header.Values("Upgrade") {
		for _, p := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), "websocket") {
				return true
			}
		}
	}
	return false
}

// serveUpgrade delivers an upgrade request; if the object accepted it, upgrades the connection.
func (g *Gateway) serveUpgrade(w http.ResponseWriter, r *http.Request, route Route, class *host.Class, objID id.ID, req *abi.Request, start time.Time) {
	resp, sock, err := class.FetchWebSocket(objID, route.Name, req)
	if err != nil {
		g.writeEventError(w, r, route, objID, err, time.Since(start))
		return
	}
	if sock != nil {
		if err := sock.Accept(w, r); err != nil {
			g.Log.Info("websocket upgrade failed", "class", route.Class, "object", objID.String(), "error", err)
		}
		return
	}
	g.writeResponse(w, resp)
}

func (g *Gateway) writeResponse(w http.ResponseWriter, resp *abi.Response) {
	h := w.Header()
	for _, hd := range resp.Headers {
		h.Add(hd.Name, hd.Value)
	}
	w.WriteHeader(resp.Status)
	w.Write(resp.Body)
}

func (g *Gateway) writeEventError(w http.ResponseWriter, r *http.Request, route Route, objID id.ID, err error, took time.Duration) {
	e := jsonError{Error: err.Error(), Class: route.Class, Object: objID.String()}
	switch {
	case errors.Is(err, host.ErrOverloaded):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, e)
	case errors.Is(err, host.ErrShuttingDown):
		writeError(w, http.StatusServiceUnavailable, e)
	case errors.Is(err, host.ErrNoClass):
		writeError(w, http.StatusNotFound, jsonError{Error: fmt.Sprintf("unknown class %q", route.Class), Class: route.Class})
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads this.
	default:
		g.Log.Warn("event failed", "class", route.Class, "object", objID.String(), "method", r.Method, "path", route.Path, "error", err, "took", took)
		writeError(w, http.StatusInternalServerError, e)
	}
}

func (g *Gateway) serveAdmin(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/_dowasm/")
	if rest == "stats" {
		g.serveStats(w, r)
		return
	}
	className, action, _ := strings.Cut(rest, "/")
	if action != "new-id" {
		writeError(w, http.StatusNotFound, jsonError{Error: "unknown admin endpoint " + r.URL.Path})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, jsonError{Error: "use POST to mint an ID"})
		return
	}
	class := g.rt.Class(className)
	if class == nil {
		writeError(w, http.StatusNotFound, jsonError{Error: fmt.Sprintf("unknown class %q", className), Class: className})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": class.Namespace().NewUnique().String()})
}

// serveStats answers the runtime's counters (tests and operators read it).
func (g *Gateway) serveStats(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		writeError(w, http.StatusMethodNotAllowed, jsonError{Error: "use GET for stats"})
		return
	}
	st := g.rt.Stats()
	writeJSON(w, http.StatusOK, map[string]int64{
		"live_instances":   st.LiveInstances,
		"created":          st.Created,
		"destroyed":        st.Destroyed,
		"active_objects":   int64(st.ActiveObjects),
		"websockets":       st.WebSockets,
		"alarm_deliveries": st.AlarmDeliveries,
		"alarm_runs":       st.AlarmRuns,
		"alarm_failures":   st.AlarmFailures,
	})
}
