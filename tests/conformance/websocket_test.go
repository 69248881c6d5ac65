package conformance

import (
	"context"
	"fmt"

	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dowasm/dowasm/host"
)

// The WebSocket examples (chat, cursors) run one scripted session per build: clients join, talk
// and leave, and every message each client receives must be exactly the one README.md specifies,
// byte for byte, in every language. With a 1 ms idle timeout the room is evicted after every
// step, so each step also crosses a hibernation.

// wsAction is one step of a socket script: a client joins (arg: the query), sends text or binary,
// closes; or a plain HTTP request (req). want lists, per client, the messages the step makes it
// receive, in order.
type wsAction struct {
	do   string // join, text, binary, close, http
	who  string
	arg  string
	req  step
	want map[string][]string
}

type wsClient struct {
	conn *websocket.Conn
	msgs chan string
}

func (s *server) wsRun(t *testing.T, object string, script []wsAction, evictBetween bool) {
	t.Helper()
	clients := map[string]*wsClient{}
	base := "ws" + strings.TrimPrefix(s.http.URL, "http") + "/" + s.class.Name() + "/" + object
	for i, a := range script {
		what := fmt.Sprintf("step %d (%s %s %q)", i, a.do, a.who, a.arg)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		switch a.do {
		case "join":
			conn, _, err := websocket.Dial(ctx, base+"/ws?"+a.arg, nil)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			c := &wsClient{conn: conn, msgs: make(chan string, 100)}
			clients[a.who] = c
			go func() {
				defer close(c.msgs)
				for {
					typ, b, err := conn.Read(context.Background())
					if err != nil {
						return
					}
					if typ == websocket.MessageBinary {
						b = append([]byte("binary:"), b...)
					}
					c.msgs <- string(b)
				}
			}()
		case "text", "binary":
			typ := websocket.MessageText
			if a.do == "binary" {
				typ = websocket.MessageBinary
			}
			if err := clients[a.who].conn.Write(ctx, typ, []byte(a.arg)); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		case "close":
			clients[a.who].conn.Close(websocket.StatusNormalClosure, "bye")
			delete(clients, a.who)
		case "http":
			s.exchange(object, a.req)
		}
		cancel()
		for who, want := range a.want {
			c := clients[who]
			for _, w := range want {
				select {
				case got, ok := <-c.msgs:
					if !ok {
						t.Fatalf("%s: %s's connection ended; want %s", what, who, w)
					}
					if got != w {
						t.Errorf("%s: %s received\n  %s\nwant\n  %s", what, who, got, w)
					}
				case <-time.After(30 * time.Second):
					t.Fatalf("%s: %s received nothing; want %s", what, who, w)
				}
			}
		}
		for evictBetween && s.rt.Stats().LiveInstances > 0 {
			time.Sleep(time.Millisecond)
		}
	}
	// Nothing unexpected is left: a last round trip through the auto-response on each client
	// (answered by the host, after anything the room sent earlier on that socket).
	for who, c := range clients {
		c.conn.Write(context.Background(), websocket.MessageText, []byte("ping"))
		select {
		case got := <-c.msgs:
			if got != "pong" {
				t.Errorf("%s received an unexpected %q at the end", who, got)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s got no pong", who)
		}
	}
	for _, c := range clients {
		c.conn.CloseNow()
	}
}

var upgrade = [2]string{"Upgrade", "websocket"}

var wsScripts = map[string][]wsAction{
	"chat": {
		{do: "join", who: "ann", arg: "name=ann", want: map[string][]string{"ann": {`{"type":"welcome","name":"ann","members":[]}`}}},
		{do: "join", who: "bob", arg: "name=bob", want: map[string][]string{
			"bob": {`{"type":"welcome","name":"bob","members":["ann"]}`},
			"ann": {`{"type":"join","name":"bob"}`}}},
		{do: "text", who: "ann", arg: "hello \"world\"\n\t\\ é \x01", want: map[string][]string{
			"bob": {`{"type":"message","seq":1,"name":"ann","text":"hello \"world\"\n\t\\ é \u0001"}`}}},
		{do: "text", who: "bob", arg: "ping", want: map[string][]string{"bob": {"pong"}}},
		{do: "binary", who: "bob", arg: "\x00\x01", want: map[string][]string{
			"bob": {`{"type":"error","error":"binary messages are not supported"}`}}},
		{do: "text", who: "bob", arg: "hi ann", want: map[string][]string{
			"ann": {`{"type":"message","seq":2,"name":"bob","text":"hi ann"}`}}},
		{do: "http", req: step{method: "GET", path: "/members", status: 200, want: `{"members":["ann","bob"]}`, headers: map[string]string{"Content-Type": "application/json"}}},
		{do: "join", who: "cd", arg: "name=c%20d", want: map[string][]string{
			"cd":  {`{"type":"welcome","name":"c d","members":["ann","bob"]}`},
			"ann": {`{"type":"join","name":"c d"}`},
			"bob": {`{"type":"join","name":"c d"}`}}},
		{do: "join", who: "anon", arg: "", want: map[string][]string{
			"anon": {`{"type":"welcome","name":"anonymous","members":["ann","bob","c d"]}`},
			"ann":  {`{"type":"join","name":"anonymous"}`},
			"bob":  {`{"type":"join","name":"anonymous"}`},
			"cd":   {`{"type":"join","name":"anonymous"}`}}},
		{do: "close", who: "bob", want: map[string][]string{
			"ann":  {`{"type":"leave","name":"bob"}`},
			"cd":   {`{"type":"leave","name":"bob"}`},
			"anon": {`{"type":"leave","name":"bob"}`}}},
		{do: "text", who: "cd", arg: "bye", want: map[string][]string{
			"ann":  {`{"type":"message","seq":3,"name":"c d","text":"bye"}`},
			"anon": {`{"type":"message","seq":3,"name":"c d","text":"bye"}`}}},
		{do: "http", req: step{method: "GET", path: "/ws", status: 426, want: "expected a WebSocket upgrade\n", headers: text}},
		{do: "http", req: step{method: "GET", path: "/ws?name=" + strings.Repeat("n", 33), header: upgrade, status: 400, want: "name must be at most 32 bytes\n", headers: text}},
		{do: "http", req: step{method: "POST", path: "/members", status: 404, want: "not found\n", headers: text}},
		{do: "http", req: step{method: "GET", path: "/nope", status: 404, want: "not found\n", headers: text}},
	},
	"cursors": {
		{do: "join", who: "ann", arg: "name=ann", want: map[string][]string{"ann": {`{"type":"hello","id":1,"cursors":[]}`}}},
		{do: "join", who: "bob", arg: "name=bob", want: map[string][]string{
			"bob": {`{"type":"hello","id":2,"cursors":[{"id":1,"name":"ann","x":-1,"y":-1}]}`},
			"ann": {`{"type":"join","id":2,"name":"bob"}`}}},
		{do: "text", who: "ann", arg: "m 100 200", want: map[string][]string{
			"bob": {`{"type":"move","id":1,"name":"ann","x":100,"y":200}`}}},
		{do: "text", who: "bob", arg: "c 10000 0", want: map[string][]string{
			"ann": {`{"type":"click","id":2,"name":"bob","x":10000,"y":0}`}}},
		{do: "text", who: "ann", arg: "m 10001 5", want: map[string][]string{"ann": {badCursor}}},
		{do: "text", who: "ann", arg: "m 1 2 3", want: map[string][]string{"ann": {badCursor}}},
		{do: "text", who: "ann", arg: "x 1 2", want: map[string][]string{"ann": {badCursor}}},
		{do: "text", who: "ann", arg: "m -1 2", want: map[string][]string{"ann": {badCursor}}},
		{do: "text", who: "ann", arg: "m +5 2", want: map[string][]string{"ann": {badCursor}}},
		{do: "text", who: "ann", arg: "m 99999999999999999999 2", want: map[string][]string{"ann": {badCursor}}},
		{do: "text", who: "ann", arg: "m 0000000100 0200", want: map[string][]string{
			"bob": {`{"type":"move","id":1,"name":"ann","x":100,"y":200}`}}},
		{do: "binary", who: "ann", arg: "m 1 2", want: map[string][]string{"ann": {badCursor}}},
		{do: "http", req: step{method: "GET", path: "/cursors", status: 200, want: `{"cursors":[{"id":1,"name":"ann","x":100,"y":200},{"id":2,"name":"bob","x":10000,"y":0}]}`, headers: map[string]string{"Content-Type": "application/json"}}},
		{do: "join", who: "q", arg: "name=%22q%22", want: map[string][]string{
			"q":   {`{"type":"hello","id":3,"cursors":[{"id":1,"name":"ann","x":100,"y":200},{"id":2,"name":"bob","x":10000,"y":0}]}`},
			"ann": {`{"type":"join","id":3,"name":"\"q\""}`},
			"bob": {`{"type":"join","id":3,"name":"\"q\""}`}}},
		{do: "close", who: "ann", want: map[string][]string{
			"bob": {`{"type":"leave","id":1}`},
			"q":   {`{"type":"leave","id":1}`}}},
		{do: "text", who: "q", arg: "m 5000 5000", want: map[string][]string{
			"bob": {`{"type":"move","id":3,"name":"\"q\"","x":5000,"y":5000}`}}},
		{do: "http", req: step{method: "GET", path: "/cursors", status: 200, want: `{"cursors":[{"id":2,"name":"bob","x":10000,"y":0},{"id":3,"name":"\"q\"","x":5000,"y":5000}]}`}},
		{do: "http", req: step{method: "GET", path: "/ws", status: 426, want: "expected a WebSocket upgrade\n", headers: text}},
		{do: "http", req: step{method: "GET", path: "/ws?name=" + strings.Repeat("n", 33), header: upgrade, status: 400, want: "name must be at most 32 bytes\n"}},
		{do: "http", req: step{method: "POST", path: "/cursors", status: 404, want: "not found\n", headers: text}},
		{do: "http", req: step{method: "GET", path: "/nope", status: 404, want: "not found\n", headers: text}},
	},
}

const badCursor = `{"type":"error","error":"bad message: want m|c <x> <y> with 0..10000"}`

// TestWebSocketExamplesConform runs each WebSocket example's script against every build, with the
// room kept warm and with it evicted after every step.
func TestWebSocketExamplesConform(t *testing.T) {
	for _, ex := range []string{"chat", "cursors"} {
		t.Run(ex, func(t *testing.T) {
			for _, tc := range toolchains {
				t.Run(string(tc.kind), func(t *testing.T) {
					wasm := module(t, ex, tc.kind, tc.dir)
					for _, idle := range []time.Duration{10 * time.Second, time.Millisecond} {
						t.Run(fmt.Sprintf("idle=%s", idle), func(t *testing.T) {
							data := t.TempDir()
							s := start(t, data, ex, wasm, idle, host.NewManualClock(epoch))
							id := s.class.Namespace().FromName("conformance").String()
							s.wsRun(t, "conformance", wsScripts[ex], idle < time.Second)
							s.stop()
							want := map[string][]string{"chat": {"seq=3"}, "cursors": nil}[ex]
							if got := dump(t, data, ex, id, nil); strings.Join(got, "\n") != strings.Join(want, "\n") {
								t.Errorf("stored state %q, want %q", got, want)
							}
						})
					}
				})
			}
		})
	}
}
