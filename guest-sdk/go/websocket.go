package dowasm

import "strconv"

// WebSockets with hibernation (ABI "ws_*"). A class accepts a client's upgrade request in Fetch
// with Object.AcceptWebSocket; from then on the host owns the connection. The object can be
// evicted from memory while its clients stay connected: the next message wakes it (a new
// instance: the constructor runs again) and its sockets, their tags and attachments are still
// there. Keep per-connection state in the socket's attachment (or in storage), not only in
// memory.
//
// Everything a handler does to sockets follows the output gate: messages, closes and attachment
// changes take effect when the event commits, in the order they were made, and are dropped if
// the event fails.

// Limits of the WebSocket functions (abi/abi.go).
const (
	MaxSocketTags      = 10
	MaxTagSize         = 256
	MaxAttachmentSize  = 16 << 10
	MaxCloseReasonSize = 123
	MaxAutoResponse    = 2 << 10
)

// WebSocketHandler is implemented by a class that accepts WebSockets. Each method runs as an
// event of its own (serialized with the object's other events, in its own transaction).
//
//   - WebSocketMessage: a message from one of the object's sockets. A socket's messages arrive
//     in the order the client sent them. Returning an error fails the event (its writes and sends
//     are dropped); the socket stays open.
//   - WebSocketClose: the client closed the socket (code and reason as it sent them; 1005 when it
//     sent no code) or was lost (1006, wasClean false: a killed client, a network failure, no
//     answer to the host's pings). The socket is already gone.
//   - WebSocketError: the host dropped the socket: a slow consumer (its send buffer overflowed),
//     an oversized message or a protocol error. The socket is already gone.
//
// Every socket ends with exactly one WebSocketClose or WebSocketError, except when the object
// closed it itself (WebSocket.Close) or the server shuts down.
type WebSocketHandler interface {
	WebSocketMessage(ws WebSocket, msg Message) error
	WebSocketClose(ws WebSocket, code int, reason string, wasClean bool) error
	WebSocketError(ws WebSocket, message string) error
}

// WebSocket is one of the object's sockets, by its ID (unique in the host process).
type WebSocket uint32

// Message is a WebSocket message.
type Message struct {
	Text bool // a text message (UTF-8 as the client sent it; not checked)
	Data []byte
}

// String returns the message's data as a string.
func (m Message) String() string { return string(m.Data) }

// IsWebSocketUpgrade reports whether the request asks for a WebSocket: a GET with an Upgrade
// header naming "websocket".
func (r *Request) IsWebSocketUpgrade() bool {
	if r.Method != "GET" {
		return false
	}
	for _, h := range r.Headers {
		if equalFoldASCII(h.Name, "Upgrade") && containsTokenFold(h.Value, "websocket") {
			return true
		}
	}
	return false
}

// containsTokenFold reports whether the comma-separated list v contains tok (ASCII case-
// insensitively).
func containsTokenFold(v, tok string) bool {
	for len(v) > 0 {
		var part string
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		part, v = v[:i], v[min(i+1, len(v)):]
		for len(part) > 0 && (part[0] == ' ' || part[0] == '\t') {
			part = part[1:]
		}
		for len(part) > 0 && (part[len(part)-1] == ' ' || part[len(part)-1] == '\t') {
			part = part[:len(part)-1]
		}
		if equalFoldASCII(part, tok) {
			return true
		}
	}
	return false
}

// AcceptWebSocket accepts the request's WebSocket upgrade with up to 10 tags (1 to 256 bytes
// each; WebSockets lists sockets by tag). The socket exists at once (Send to it queues), but the
// upgrade happens only when the event commits; the response Fetch returns is then ignored
// (return nil, nil). Fails with ErrNotAllowed when req is not a client's upgrade request,
// ErrLimitExceeded when the object has as many sockets as the host allows, ErrInvalidArgument
// for bad tags.
func (o *Object) AcceptWebSocket(req *Request, tags ...string) (WebSocket, error) {
	if len(tags) > MaxSocketTags {
		return 0, &Error{Op: "ws_accept", Status: StatusInvalidArgument, Msg: strconv.Itoa(len(tags)) + " tags (at most 10)"}
	}
	var enc []byte
	if len(tags) > 0 {
		enc = appendU32(enc, uint32(len(tags)))
		for _, t := range tags {
			if len(t) == 0 || len(t) > MaxTagSize {
				return 0, &Error{Op: "ws_accept", Status: StatusInvalidArgument, Msg: "tag " + strconv.Quote(t) + " is not 1 to 256 bytes"}
			}
			enc = appendString(enc, t)
		}
	}
	_ = req // the host knows the event's request; req documents which one is accepted
	n, err := check("ws_accept", host.wsAccept(enc))
	if err != nil {
		return 0, err
	}
	return WebSocket(n), nil
}

// WebSockets returns the object's open sockets, oldest first: all of them when tag is "",
// otherwise those carrying tag.
func (o *Object) WebSockets(tag string) ([]WebSocket, error) {
	n, err := check("ws_list", host.wsList(tag))
	if err != nil {
		return nil, err
	}
	b, err := readStaged("ws_list", n)
	if err != nil {
		return nil, err
	}
	r := reader{b: b}
	cnt := r.count(4)
	out := make([]WebSocket, 0, cnt)
	for i := 0; i < cnt; i++ {
		out = append(out, WebSocket(r.u32()))
	}
	if !r.done() {
		return nil, &Error{Op: "ws_list", Status: StatusInvalidArgument, Msg: "malformed socket list from the host"}
	}
	return out, nil
}

// SetWebSocketAutoResponse makes the host answer the text message request with response on
// any of the object's sockets by itself, without an event and without waking the object (a
// keep-alive ping, typically; set it in the constructor). An empty request removes it. Each side
// is at most 2 KiB.
func (o *Object) SetWebSocketAutoResponse(request, response string) error {
	_, err := check("ws_auto_response", host.wsAutoResponse(request, response))
	return err
}

// ID returns the socket's ID.
func (ws WebSocket) ID() uint32 { return uint32(ws) }

// Send sends a text message (released when the event commits). ErrNotFound: the socket is not
// open; ErrValueTooLarge: over the host's message size limit (1 MiB by default);
// ErrLimitExceeded: the sends held for this commit would exceed the socket's send buffer (1 MiB
// by default) or 64 MiB in all, and the message is not sent.
func (ws WebSocket) Send(text string) error {
	_, err := check("ws_send", host.wsSendString(uint32(ws), 1, text))
	return err
}

// SendBytes sends a binary message.
func (ws WebSocket) SendBytes(b []byte) error {
	_, err := check("ws_send", host.wsSend(uint32(ws), 2, b))
	return err
}

// Close closes the socket with code (1000, or 3000-4999) and a reason of at most 123 bytes,
// after the messages sent before it, when the event commits. No WebSocketClose follows.
func (ws WebSocket) Close(code int, reason string) error {
	if code < 0 || code > 0xffff {
		return &Error{Op: "ws_close", Status: StatusInvalidArgument, Msg: "code " + strconv.Itoa(code)}
	}
	_, err := check("ws_close", host.wsClose(uint32(ws), uint32(code), reason))
	return err
}

// Tags returns the tags the socket was accepted with.
func (ws WebSocket) Tags() ([]string, error) {
	n, err := check("ws_tags", host.wsTags(uint32(ws)))
	if err != nil {
		return nil, err
	}
	b, err := readStaged("ws_tags", n)
	if err != nil {
		return nil, err
	}
	r := reader{b: b}
	cnt := r.count(4)
	out := make([]string, 0, cnt)
	for i := 0; i < cnt; i++ {
		out = append(out, string(r.bytes()))
	}
	if !r.done() {
		return nil, &Error{Op: "ws_tags", Status: StatusInvalidArgument, Msg: "malformed tag list from the host"}
	}
	return out, nil
}

// Attachment returns the socket's attachment (nil when none): bytes the host keeps with the
// socket, so they survive hibernation.
func (ws WebSocket) Attachment() ([]byte, error) {
	n, err := check("ws_attachment_get", host.wsAttachmentGet(uint32(ws)))
	if err != nil || n == 0 {
		return nil, err
	}
	return readStaged("ws_attachment_get", n)
}

// SetAttachment replaces the socket's attachment (at most 16 KiB; nil clears it), when the event
// commits; Attachment sees it at once.
func (ws WebSocket) SetAttachment(b []byte) error {
	_, err := check("ws_attachment_set", host.wsAttachmentSet(uint32(ws), b))
	return err
}

// AutoResponseTime returns when the host last auto-responded on this socket, in milliseconds
// since the Unix epoch; ok is false if it never did.
func (ws WebSocket) AutoResponseTime() (ms int64, ok bool, err error) {
	n, err := check("ws_auto_response_time", host.wsAutoResponseTime(uint32(ws)))
	if err != nil {
		if e, isErr := err.(*Error); isErr && e.Status == StatusNotFound {
			return 0, false, nil
		}
		return 0, false, err
	}
	b, err := readStaged("ws_auto_response_time", n)
	if err != nil {
		return 0, false, err
	}
	if len(b) != 8 {
		return 0, false, &Error{Op: "ws_auto_response_time", Status: StatusInvalidArgument, Msg: "malformed time from the host"}
	}
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return int64(v), true, nil
}

func wsHandler(op string) (WebSocketHandler, int32) {
	if inst.class == nil {
		return nil, fail(op + " before a successful dowasm_init")
	}
	h, _ := inst.class.(WebSocketHandler)
	return h, 0
}

func runWSMessage(sock, kind, n int32) int32 {
	rc := wsMessage(sock, kind, n)
	if rc == 0 {
		afterEvent()
	}
	return rc
}

func wsMessage(sock, kind, n int32) (rc int32) {
	defer func() {
		if r := recover(); r != nil {
			rc = fail("panic: " + panicMessage(r))
		}
	}()
	h, rc := wsHandler("dowasm_ws_message")
	if rc != 0 {
		return rc
	}
	if h == nil {
		return fail("dowasm_ws_message: the class does not handle WebSockets (implement dowasm.WebSocketHandler)")
	}
	b, err := readStaged("message", n)
	if err != nil {
		return fail(err.Error())
	}
	if err := h.WebSocketMessage(WebSocket(uint32(sock)), Message{Text: kind == 1, Data: b}); err != nil {
		return fail(err.Error())
	}
	return 0
}

func runWSClose(sock, code, wasClean, reasonLen int32) int32 {
	rc := wsClose(sock, code, wasClean, reasonLen)
	if rc == 0 {
		afterEvent()
	}
	return rc
}

func wsClose(sock, code, wasClean, reasonLen int32) (rc int32) {
	defer func() {
		if r := recover(); r != nil {
			rc = fail("panic: " + panicMessage(r))
		}
	}()
	h, rc := wsHandler("dowasm_ws_close")
	if rc != 0 || h == nil {
		return rc
	}
	b, err := readStaged("close reason", reasonLen)
	if err != nil {
		return fail(err.Error())
	}
	if err := h.WebSocketClose(WebSocket(uint32(sock)), int(code), string(b), wasClean != 0); err != nil {
		return fail(err.Error())
	}
	return 0
}

func runWSError(sock, msgLen int32) int32 {
	rc := wsError(sock, msgLen)
	if rc == 0 {
		afterEvent()
	}
	return rc
}

func wsError(sock, msgLen int32) (rc int32) {
	defer func() {
		if r := recover(); r != nil {
			rc = fail("panic: " + panicMessage(r))
		}
	}()
	h, rc := wsHandler("dowasm_ws_error")
	if rc != 0 || h == nil {
		return rc
	}
	b, err := readStaged("error message", msgLen)
	if err != nil {
		return fail(err.Error())
	}
	if err := h.WebSocketError(WebSocket(uint32(sock)), string(b)); err != nil {
		return fail(err.Error())
	}
	return 0
}
