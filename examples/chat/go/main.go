// Command chat is a chat room on WebSockets (see ../README.md for the protocol). One object per
// room; the host keeps the members' sockets while the room object hibernates, and each member's
// name lives in its socket's attachment, so a woken room knows everyone without any storage
// read.
package main

import (
	"errors"
	"strconv"

	dowasm "github.com/dowasm/dowasm/guest-sdk/go"
)

const (
	tag     = "member"
	maxName = 32
)

type Chat struct {
	obj   *dowasm.Object
	store *dowasm.Storage
}

func (c *Chat) Fetch(req *dowasm.Request) (*dowasm.Response, error) {
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
		others, err := c.members()
		if err != nil {
			return nil, err
		}
		ws, err := c.obj.AcceptWebSocket(req, tag)
		if err != nil {
			return nil, err
		}
		if err := ws.SetAttachment([]byte(name)); err != nil {
			return nil, err
		}
		welcome := `{"type":"welcome","name":` + dowasm.JSONString(name) + `,"members":[`
		for i, m := range others {
			if i > 0 {
				welcome += ","
			}
			welcome += dowasm.JSONString(m.name)
		}
		if err := ws.Send(welcome + "]}"); err != nil {
			return nil, err
		}
		return nil, c.broadcast(`{"type":"join","name":`+dowasm.JSONString(name)+`}`, ws)
	case "/members":
		if req.Method != "GET" {
			return dowasm.NotFound(), nil
		}
		ms, err := c.members()
		if err != nil {
			return nil, err
		}
		body := `{"members":[`
		for i, m := range ms {
			if i > 0 {
				body += ","
			}
			body += dowasm.JSONString(m.name)
		}
		return dowasm.JSON(200, body+"]}"), nil
	}
	return dowasm.NotFound(), nil
}

type member struct {
	ws   dowasm.WebSocket
	name string
}

// members returns the room's members, oldest first, with the names from their attachments.
func (c *Chat) members() ([]member, error) {
	socks, err := c.obj.WebSockets(tag)
	if err != nil {
		return nil, err
	}
	out := make([]member, 0, len(socks))
	for _, ws := range socks {
		name, err := ws.Attachment()
		if err != nil {
			return nil, err
		}
		out = append(out, member{ws, string(name)})
	}
	return out, nil
}

// broadcast sends msg to every member except one.
func (c *Chat) broadcast(msg string, except dowasm.WebSocket) error {
	socks, err := c.obj.WebSockets(tag)
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

func (c *Chat) WebSocketMessage(ws dowasm.WebSocket, msg dowasm.Message) error {
	if !msg.Text {
		return ws.Send(`{"type":"error","error":"binary messages are not supported"}`)
	}
	name, err := ws.Attachment()
	if err != nil {
		return err
	}
	seq, _, err := c.store.GetInt64("seq")
	if err != nil {
		return err
	}
	seq++
	if err := c.store.PutInt64("seq", seq); err != nil {
		return err
	}
	return c.broadcast(`{"type":"message","seq":`+strconv.FormatInt(seq, 10)+`,"name":`+dowasm.JSONString(string(name))+`,"text":`+dowasm.JSONString(msg.String())+`}`, ws)
}

func (c *Chat) WebSocketClose(ws dowasm.WebSocket, code int, reason string, wasClean bool) error {
	return c.left(ws)
}

func (c *Chat) WebSocketError(ws dowasm.WebSocket, message string) error {
	return c.left(ws)
}

// left tells the others that ws's member left. The ended socket's attachment is still readable
// during its close or error event.
func (c *Chat) left(ws dowasm.WebSocket) error {
	name, err := ws.Attachment()
	if err != nil {
		return err
	}
	return c.broadcast(`{"type":"leave","name":`+dowasm.JSONString(string(name))+`}`, ws)
}

func init() {
	dowasm.Register(func(obj *dowasm.Object) (dowasm.Class, error) {
		if err := obj.SetWebSocketAutoResponse("ping", "pong"); err != nil {
			return nil, err
		}
		return &Chat{obj: obj, store: obj.Storage()}, nil
	})
}

func main() {}
