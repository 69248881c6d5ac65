//! Chat is a chat room on WebSockets with hibernation: one object per room, and the host owns
//! the sockets, so an idle room is evicted from memory and wakes, members and names intact, at
//! the next message (the protocol is in ../README.md):
//!
//! ```text
//! GET /chat/<room>/ws?name=<name>   WebSocket upgrade: join the room
//! GET /chat/<room>/members          {"members":["<a>","<b>"]}, oldest first
//! ```
//!
//! Every socket carries the tag `member` and keeps its member's name in its attachment; the
//! room's message counter is the storage key `seq` (decimal text). `ping` is answered `pong` by
//! the host without waking the room.

use dowasm::{
    push_json_string, Context, Message, Object, Request, Response, Result, Status, Storage,
    WebSocket,
};

/// The tag of every member's socket.
const TAG: &str = "member";
/// The storage key of the room's message counter.
const SEQ: &str = "seq";
/// The longest name, in bytes.
const MAX_NAME: usize = 32;

struct Chat {
    ctx: Context,
    store: Storage,
}

/// Appends `["<a>","<b>"]`.
fn push_json_names(out: &mut Vec<u8>, names: &[Vec<u8>]) {
    out.push(b'[');
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_json_string(out, n);
    }
    out.push(b']');
}

/// `{"type":"<kind>","name":"<name>"}` (join and leave notices).
fn notice(kind: &str, name: &[u8]) -> Vec<u8> {
    let mut b = format!("{{\"type\":\"{}\",\"name\":", kind).into_bytes();
    push_json_string(&mut b, name);
    b.push(b'}');
    b
}

/// Sends a text message. Text frames should be UTF-8; the JSON is, unless a name is not
/// (possible with a percent-encoded name), and then its invalid bytes become U+FFFD.
fn send(ws: WebSocket, msg: &[u8]) -> Result<()> {
    ws.send_text(&String::from_utf8_lossy(msg))
}

/// Sends to a member that may have left during this event (its socket is then gone): that
/// member is skipped.
fn send_to_other(ws: WebSocket, msg: &[u8]) -> Result<()> {
    match send(ws, msg) {
        Err(e) if e.is(Status::NotFound) => Ok(()),
        r => r,
    }
}

impl Chat {
    /// The open member sockets, oldest first (socket IDs grow with time).
    fn members(&self) -> Result<Vec<WebSocket>> {
        let mut socks = self.ctx.websockets(Some(TAG))?;
        socks.sort();
        Ok(socks)
    }

    /// The names of the open members, oldest first (a member that left meanwhile is skipped).
    fn member_names(&self, socks: &[WebSocket]) -> Result<Vec<Vec<u8>>> {
        let mut names = Vec::with_capacity(socks.len());
        for ws in socks {
            match ws.attachment() {
                Ok(n) => names.push(n),
                Err(e) if e.is(Status::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(names)
    }

    /// Sends `msg` to every member except `except`.
    fn broadcast(&self, except: WebSocket, msg: &[u8]) -> Result<()> {
        for ws in self.members()? {
            if ws != except {
                send_to_other(ws, msg)?;
            }
        }
        Ok(())
    }

    /// GET /ws: joins the room with a WebSocket.
    fn join(&self, req: &Request) -> Result<Response> {
        if !req.is_websocket_upgrade() {
            return Ok(Response::text(426, "expected a WebSocket upgrade\n"));
        }
        let name = match req.query_param_bytes("name") {
            Some(n) if !n.is_empty() => n,
            _ => b"anonymous".to_vec(),
        };
        if name.len() > MAX_NAME {
            return Ok(Response::text(400, "name must be at most 32 bytes\n"));
        }
        let others = self.members()?;
        let ws = self.ctx.accept_websocket(req, &[TAG])?;
        ws.set_attachment(&name)?;

        let mut welcome = b"{\"type\":\"welcome\",\"name\":".to_vec();
        push_json_string(&mut welcome, &name);
        welcome.extend_from_slice(b",\"members\":");
        push_json_names(&mut welcome, &self.member_names(&others)?);
        welcome.push(b'}');
        send(ws, &welcome)?;

        let join = notice("join", &name);
        for other in others {
            send_to_other(other, &join)?;
        }
        // The client gets 101 Switching Protocols: after an accept the response is ignored.
        Ok(Response::no_content())
    }

    /// A member left (closed, was lost, or was dropped by the host): tell the others.
    fn leave(&self, ws: WebSocket) -> Result<()> {
        let name = ws.attachment()?;
        self.broadcast(ws, &notice("leave", &name))
    }
}

impl Object for Chat {
    fn new(ctx: &Context) -> Result<Self> {
        // Answered by the host itself, without waking the room.
        ctx.set_websocket_auto_response("ping", "pong")?;
        Ok(Chat {
            ctx: *ctx,
            store: ctx.storage(),
        })
    }

    fn fetch(&mut self, req: Request) -> Result<Response> {
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/ws") => self.join(&req),
            ("GET", "/members") => {
                let mut body = b"{\"members\":".to_vec();
                push_json_names(&mut body, &self.member_names(&self.members()?)?);
                body.push(b'}');
                Ok(Response::bytes(200, body).with_header("Content-Type", "application/json"))
            }
            _ => Ok(Response::not_found()),
        }
    }

    fn websocket_message(&mut self, ws: WebSocket, msg: Message) -> Result<()> {
        let text = match msg {
            Message::Text(t) => t,
            Message::Binary(_) => {
                return send(
                    ws,
                    b"{\"type\":\"error\",\"error\":\"binary messages are not supported\"}",
                )
            }
        };
        let seq = self.store.get_i64(SEQ)?.unwrap_or(0) + 1;
        self.store.put_i64(SEQ, seq)?;
        let name = ws.attachment()?;
        let mut out = format!("{{\"type\":\"message\",\"seq\":{},\"name\":", seq).into_bytes();
        push_json_string(&mut out, &name);
        out.extend_from_slice(b",\"text\":");
        push_json_string(&mut out, text.as_bytes());
        out.push(b'}');
        self.broadcast(ws, &out)
    }

    fn websocket_close(
        &mut self,
        ws: WebSocket,
        _code: u16,
        _reason: String,
        _was_clean: bool,
    ) -> Result<()> {
        self.leave(ws)
    }

    fn websocket_error(&mut self, ws: WebSocket, _error: String) -> Result<()> {
        self.leave(ws)
    }
}

dowasm::export!(Chat);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_notices() {
        let mut b = Vec::new();
        push_json_names(&mut b, &[]);
        assert_eq!(b, b"[]");
        push_json_names(&mut b, &[b"a".to_vec(), b"b\"".to_vec()]);
        assert_eq!(b, b"[][\"a\",\"b\\\"\"]");
        assert_eq!(
            notice("join", b"ann"),
            b"{\"type\":\"join\",\"name\":\"ann\"}"
        );
    }
}
