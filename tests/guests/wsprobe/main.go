// Command wsprobe is a test guest for the WebSocket ABI through the Go SDK: each text message is
// a command whose answer (or effect) a host test checks.
//
//	GET /ws?tags=a,b      accept with those tags; sends "welcome <id>"
//	GET /ws-fail          accept, send, then fail: the upgrade must not happen (500)
//	GET /accept-plain     try to accept a request that is no upgrade: answers the error
//
// Messages: "att:<v>" (set the attachment, answer it read back), "get" (the attachment), "tags",
// "list:<tag>" (IDs), "fail:<text>" (send text, set the attachment to "failed", then fail),
// "close" (close with 4000 "asked"), "count" (increment storage, answer the value),
// "all:<text>" (send to every socket), "accept" (try to accept from a message event),
// "autotime" (the last auto-response time or "none"), "send-after-close" (close, then send).
package main

import (
	"errors"
	"strconv"
	"strings"

	dowasm "github.com/dowasm/dowasm/guest-sdk/go"
)

type probe struct {
	obj   *dowasm.Object
	store *dowasm.Storage
}

func (p *probe) Fetch(req *dowasm.Request) (*dowasm.Response, error) {
	switch req.Path {
	case "/ws":
		var tags []string
		if t := req.QueryParam("tags"); t != "" {
			tags = strings.Split(t, ",")
		}
		ws, err := p.obj.AcceptWebSocket(req, tags...)
		if err != nil {
			return dowasm.Text(400, err.Error()), nil
		}
		return nil, ws.Send("welcome " + strconv.Itoa(int(ws)))
	case "/ws-fail":
		ws, err := p.obj.AcceptWebSocket(req)
		if err != nil {
			return nil, err
		}
		ws.Send("you should never see this")
		return nil, errors.New("failing after accept")
	case "/accept-plain":
		_, err := p.obj.AcceptWebSocket(req)
		return dowasm.Text(200, errString(err)), nil
	}
	return dowasm.NotFound(), nil
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func (p *probe) WebSocketMessage(ws dowasm.WebSocket, msg dowasm.Message) error {
	cmd, arg, _ := strings.Cut(msg.String(), ":")
	switch cmd {
	case "att":
		if err := ws.SetAttachment([]byte(arg)); err != nil {
			return ws.Send(err.Error())
		}
		b, err := ws.Attachment()
		if err != nil {
			return err
		}
		return ws.Send("att=" + string(b))
	case "get":
		b, err := ws.Attachment()
		if err != nil {
			return err
		}
		return ws.Send("att=" + string(b))
	case "tags":
		tags, err := ws.Tags()
		if err != nil {
			return err
		}
		return ws.Send("tags=" + strings.Join(tags, ","))
	case "list":
		socks, err := p.obj.WebSockets(arg)
		if err != nil {
			return err
		}
		s := "list="
		for i, w := range socks {
			if i > 0 {
				s += ","
			}
			s += strconv.Itoa(int(w))
		}
		return ws.Send(s)
	case "fail":
		ws.Send(arg)
		ws.SetAttachment([]byte("failed"))
		p.store.PutInt64("count", 1000)
		return errors.New("failing on purpose")
	case "close":
		return ws.Close(4000, "asked")
	case "send-after-close":
		if err := ws.Close(4001, "closed first"); err != nil {
			return err
		}
		if err := ws.Send("after close"); !errors.Is(err, dowasm.ErrNotFound) {
			return errors.New("send after close: " + errString(err))
		}
		return nil
	case "count":
		n, _, err := p.store.GetInt64("count")
		if err != nil {
			return err
		}
		n++
		if err := p.store.PutInt64("count", n); err != nil {
			return err
		}
		return ws.Send("count=" + strconv.FormatInt(n, 10))
	case "all":
		socks, err := p.obj.WebSockets("")
		if err != nil {
			return err
		}
		for _, w := range socks {
			if err := w.Send(arg); err != nil {
				return err
			}
		}
		return nil
	case "accept":
		_, err := p.obj.AcceptWebSocket(&dowasm.Request{Method: "GET"})
		return ws.Send("accept: " + errString(err))
	case "autotime":
		ms, ok, err := ws.AutoResponseTime()
		if err != nil {
			return err
		}
		if !ok {
			return ws.Send("autotime=none")
		}
		return ws.Send("autotime=" + strconv.FormatInt(ms, 10))
	case "big":
		n, _ := strconv.Atoi(arg)
		return ws.Send(errString(ws.Send(strings.Repeat("b", n))))
	}
	return ws.Send("unknown command " + strconv.Quote(msg.String()))
}

func (p *probe) WebSocketClose(ws dowasm.WebSocket, code int, reason string, wasClean bool) error {
	return nil
}

func (p *probe) WebSocketError(ws dowasm.WebSocket, message string) error { return nil }

func init() {
	dowasm.Register(func(obj *dowasm.Object) (dowasm.Class, error) {
		if err := obj.SetWebSocketAutoResponse("ping", "pong"); err != nil {
			return nil, err
		}
		return &probe{obj: obj, store: obj.Storage()}, nil
	})
}

func main() {}
