// Command cursors is a live room where every open page sees the others' cursors (see
// ../README.md for the protocol and ../web for the page). Nothing is written to storage: each
// member's name and last position live in its socket's attachment ("<x> <y> <name>"), which the
// host keeps while the room object hibernates.
package main

import (
	"errors"
	"strconv"
	"strings"

	dowasm "github.com/dowasm/dowasm/guest-sdk/go"
)

const (
	tag     = "cursor"
	maxName = 32
	badMsg  = `{"type":"error","error":"bad message: want m|c <x> <y> with 0..10000"}`
)

type Cursors struct{ obj *dowasm.Object }

// cursor is one member as its attachment describes it.
type cursor struct {
	ws   dowasm.WebSocket
	x, y int
	name string
}

func (c cursor) attachment() []byte {
	return []byte(strconv.Itoa(c.x) + " " + strconv.Itoa(c.y) + " " + c.name)
}

func (c cursor) json() string {
	return `{"id":` + strconv.Itoa(int(c.ws)) + `,"name":` + dowasm.JSONString(c.name) + `,"x":` + strconv.Itoa(c.x) + `,"y":` + strconv.Itoa(c.y) + `}`
}

func load(ws dowasm.WebSocket) (cursor, error) {
	b, err := ws.Attachment()
	if err != nil {
		return cursor{}, err
	}
	c := cursor{ws: ws, x: -1, y: -1}
	parts := strings.SplitN(string(b), " ", 3)
	if len(parts) == 3 {
		c.x, _ = strconv.Atoi(parts[0])
		c.y, _ = strconv.Atoi(parts[1])
		c.name = parts[2]
	}
	return c, nil
}

func (r *Cursors) all() ([]cursor, error) {
	socks, err := r.obj.WebSockets(tag)
	if err != nil {
		return nil, err
	}
	out := make([]cursor, 0, len(socks))
	for _, ws := range socks {
		c, err := load(ws)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func list(cs []cursor, except dowasm.WebSocket) string {
	s, n := "[", 0
	for _, c := range cs {
		if c.ws == except {
			continue
		}
		if n > 0 {
			s += ","
		}
		s += c.json()
		n++
	}
	return s + "]"
}

func (r *Cursors) broadcast(msg string, except dowasm.WebSocket) error {
	socks, err := r.obj.WebSockets(tag)
	if err != nil {
		return err
	}
	for _, ws := range socks {
		if ws != except {
			// A member whose socket ended since the listing is skipped: its leave comes next.
			if err := ws.Send(msg); err != nil && !errors.Is(err, dowasm.ErrNotFound) {
				return err
			}
		}
	}
	return nil
}

func (r *Cursors) Fetch(req *dowasm.Request) (*dowasm.Response, error) {
	switch req.Path {
	case "/ws":
		if !req.IsWebSocketUpgrade() {
			return dowasm.Text(426, "expected a WebSocket upgrade\n"), nil
		}
		name := req.QueryParam("name")
		if len(name) > maxName {
			return dowasm.Text(400, "name must be at most 32 bytes\n"), nil
		}
		if name == "" {
			name = "anonymous"
		}
		others, err := r.all()
		if err != nil {
			return nil, err
		}
		ws, err := r.obj.AcceptWebSocket(req, tag)
		if err != nil {
			return nil, err
		}
		me := cursor{ws: ws, x: -1, y: -1, name: name}
		if err := ws.SetAttachment(me.attachment()); err != nil {
			return nil, err
		}
		if err := ws.Send(`{"type":"hello","id":` + strconv.Itoa(int(ws)) + `,"cursors":` + list(others, ws) + `}`); err != nil {
			return nil, err
		}
		return nil, r.broadcast(`{"type":"join","id":`+strconv.Itoa(int(ws))+`,"name":`+dowasm.JSONString(name)+`}`, ws)
	case "/cursors":
		if req.Method != "GET" {
			return dowasm.NotFound(), nil
		}
		cs, err := r.all()
		if err != nil {
			return nil, err
		}
		return dowasm.JSON(200, `{"cursors":`+list(cs, 0)+`}`), nil
	}
	return dowasm.NotFound(), nil
}

// parse reads "m <x> <y>" or "c <x> <y>" with x and y in 0..10000.
func parse(s string) (kind string, x, y int, ok bool) {
	parts := strings.Split(s, " ")
	if len(parts) != 3 || (parts[0] != "m" && parts[0] != "c") {
		return "", 0, 0, false
	}
	x, ok1 := coord(parts[1])
	y, ok2 := coord(parts[2])
	if !ok1 || !ok2 {
		return "", 0, 0, false
	}
	if parts[0] == "m" {
		return "move", x, y, true
	}
	return "click", x, y, true
}

// coord reads a decimal integer 0..10000: ASCII digits only (leading zeros allowed, no sign).
func coord(s string) (int, bool) {
	if len(s) == 0 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		if n = n*10 + int(s[i]-'0'); n > 10000 {
			return 0, false
		}
	}
	return n, true
}

func (r *Cursors) WebSocketMessage(ws dowasm.WebSocket, msg dowasm.Message) error {
	kind, x, y, ok := parse(msg.String())
	if !msg.Text || !ok {
		return ws.Send(badMsg)
	}
	c, err := load(ws)
	if err != nil {
		return err
	}
	c.x, c.y = x, y
	if err := ws.SetAttachment(c.attachment()); err != nil {
		return err
	}
	return r.broadcast(`{"type":"`+kind+`","id":`+strconv.Itoa(int(ws))+`,"name":`+dowasm.JSONString(c.name)+`,"x":`+strconv.Itoa(x)+`,"y":`+strconv.Itoa(y)+`}`, ws)
}

func (r *Cursors) WebSocketClose(ws dowasm.WebSocket, code int, reason string, wasClean bool) error {
	return r.broadcast(`{"type":"leave","id":`+strconv.Itoa(int(ws))+`}`, ws)
}

func (r *Cursors) WebSocketError(ws dowasm.WebSocket, message string) error {
	return r.broadcast(`{"type":"leave","id":`+strconv.Itoa(int(ws))+`}`, ws)
}

func init() {
	dowasm.Register(func(obj *dowasm.Object) (dowasm.Class, error) {
		if err := obj.SetWebSocketAutoResponse("ping", "pong"); err != nil {
			return nil, err
		}
		return &Cursors{obj: obj}, nil
	})
}

func main() {}
