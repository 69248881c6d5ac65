// Command wsfloor is the speed and memory floor for the WebSocket benchmarks (bench/ws.sh): a
// bare coder/websocket server with no WebAssembly and no storage, measured in the same run as
// dowasm's cursors class.
//
//	/echo            echoes every message back
//	/room/<r>?name=n a hub speaking the cursors protocol (examples/cursors/README.md) closely
//	                 enough that the load client and the bytes on the wire are the same: the
//	                 joiner gets {"type":"hello","id":..,"cursors":[..]}, the others a join;
//	                 text "m <x> <y>" reaches every other member as
//	                 {"type":"move","id":..,"name":"..","x":..,"y":..}; a leave when one goes.
//
// Each connection has one reader goroutine and one writer goroutine draining a bounded channel,
// as a careful server would; a member whose channel is full is dropped with 1008 (the client
// then fails loudly: the benchmark's regime never fills it).
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/coder/websocket"
)

const sendQueue = 1024 // messages queued for one member before it is dropped

type member struct {
	id   int
	name string
	x, y int
	out  chan []byte
	conn *websocket.Conn
	once sync.Once
}

// drop closes a member that cannot keep up.
func (m *member) drop() {
	m.once.Do(func() { go m.conn.Close(websocket.StatusPolicyViolation, "send queue full") })
}

type room struct {
	mu      sync.Mutex
	members []*member // join order: broadcasts go oldest first, as in dowasm's guest
}

type hub struct {
	mu     sync.Mutex
	rooms  map[string]*room
	nextID int
}

func (h *hub) room(name string) *room {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rooms[name]
	if r == nil {
		r = &room{}
		h.rooms[name] = r
	}
	return r
}

// sendLocked queues msg for every member but except; r.mu is held.
func (r *room) sendLocked(msg []byte, except *member) {
	for _, m := range r.members {
		if m == except {
			continue
		}
		select {
		case m.out <- msg:
		default:
			m.drop()
		}
	}
}

func appendCursor(b []byte, m *member) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, int64(m.id), 10)
	b = append(b, `,"name":`...)
	b = strconv.AppendQuote(b, m.name) // names in the benchmark are plain ASCII
	b = append(b, `,"x":`...)
	b = strconv.AppendInt(b, int64(m.x), 10)
	b = append(b, `,"y":`...)
	b = strconv.AppendInt(b, int64(m.y), 10)
	return append(b, '}')
}

// coord parses a decimal integer 0..10000.
func coord(s string) (int, bool) {
	if len(s) == 0 || len(s) > 5 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, n <= 10000
}

func (h *hub) serveRoom(w http.ResponseWriter, req *http.Request, name string) {
	conn, err := websocket.Accept(w, req, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	conn.SetReadLimit(1 << 20)
	r := h.room(name)
	who := req.URL.Query().Get("name")
	if who == "" {
		who = "anonymous"
	}
	h.mu.Lock()
	h.nextID++
	me := &member{id: h.nextID, name: who, x: -1, y: -1, out: make(chan []byte, sendQueue), conn: conn}
	h.mu.Unlock()

	r.mu.Lock()
	hello := append([]byte(`{"type":"hello","id":`), strconv.Itoa(me.id)...)
	hello = append(hello, `,"cursors":[`...)
	for i, m := range r.members {
		if i > 0 {
			hello = append(hello, ',')
		}
		hello = appendCursor(hello, m)
	}
	hello = append(hello, "]}"...)
	me.out <- hello
	join := append([]byte(`{"type":"join","id":`), strconv.Itoa(me.id)...)
	join = append(join, `,"name":`...)
	join = append(strconv.AppendQuote(join, me.name), '}')
	r.sendLocked(join, me)
	r.members = append(r.members, me)
	r.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	go func() { // the writer
		for {
			select {
			case msg := <-me.out:
				if err := conn.Write(ctx, websocket.MessageText, msg); err != nil {
					conn.CloseNow()
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()

	bad := []byte(`{"type":"error","error":"bad message: want m|c <x> <y> with 0..10000"}`)
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			break
		}
		parts := strings.Split(string(data), " ")
		var x, y int
		ok := typ == websocket.MessageText && len(parts) == 3 && (parts[0] == "m" || parts[0] == "c")
		if ok {
			var ok1, ok2 bool
			x, ok1 = coord(parts[1])
			y, ok2 = coord(parts[2])
			ok = ok1 && ok2
		}
		if !ok {
			select {
			case me.out <- bad:
			default:
				me.drop()
			}
			continue
		}
		kind := "move"
		if parts[0] == "c" {
			kind = "click"
		}
		r.mu.Lock()
		me.x, me.y = x, y
		msg := append([]byte(`{"type":"`), kind...)
		msg = append(msg, `",`...)
		msg = appendCursor(msg, me)
		// appendCursor wrote `{"id":...}` after the type: fuse the two objects into one.
		i := len(`{"type":"`) + len(kind) + len(`",`)
		msg = append(msg[:i], msg[i+1:]...)
		r.sendLocked(msg, me)
		r.mu.Unlock()
	}
	cancel()
	r.mu.Lock()
	for i, m := range r.members {
		if m == me {
			r.members = append(r.members[:i:i], r.members[i+1:]...)
			break
		}
	}
	r.sendLocked([]byte(`{"type":"leave","id":`+strconv.Itoa(me.id)+`}`), me)
	r.mu.Unlock()
	conn.CloseNow()
}

func serveEcho(w http.ResponseWriter, req *http.Request) {
	conn, err := websocket.Accept(w, req, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	for {
		typ, data, err := conn.Read(context.Background())
		if err != nil {
			return
		}
		if err := conn.Write(context.Background(), typ, data); err != nil {
			return
		}
	}
}

func main() {
	addr := flag.String("listen", "127.0.0.1:0", "address")
	flag.Parse()
	h := &hub{rooms: map[string]*room{}}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("wsfloor listening on http://%s\n", ln.Addr())
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case req.URL.Path == "/echo":
			serveEcho(w, req)
		case strings.HasPrefix(req.URL.Path, "/room/") && len(req.URL.Path) > len("/room/"):
			h.serveRoom(w, req, strings.TrimPrefix(req.URL.Path, "/room/"))
		default:
			http.NotFound(w, req)
		}
	}))
}
