//! Cursors is a live room where every open page sees the others' cursors: one object per room,
//! one WebSocket per page, and nothing in storage: the room's whole state is its sockets'
//! attachments, which the host keeps while the room hibernates (the protocol is in
//! ../README.md):
//!
//! ```text
//! GET /cursors/<room>/ws?name=<name>   WebSocket upgrade: join the room
//! GET /cursors/<room>/cursors          {"cursors":[{"id":1,"name":"ann","x":5000,"y":2500}]}
//! ```
//!
//! Pages send `m <x> <y>` (a move) and `c <x> <y>` (a click) with coordinates 0-10000; every
//! other page gets the move or click. Every socket carries the tag `cursor` and the attachment
//! `<x> <y> <name>` (`-1 -1 <name>` until the page moves). `ping` is answered `pong` by the host
//! without waking the room.

use dowasm::{
    push_json_string, Context, Error, Message, Object, Request, Response, Result, Status, WebSocket,
};

/// The tag of every page's socket.
const TAG: &str = "cursor";
/// The longest name, in bytes.
const MAX_NAME: usize = 32;
/// The largest coordinate.
const MAX_COORD: i64 = 10_000;
/// The answer to a malformed message.
const BAD_MESSAGE: &[u8] =
    b"{\"type\":\"error\",\"error\":\"bad message: want m|c <x> <y> with 0..10000\"}";

struct Cursors {
    ctx: Context,
}

/// A page's cursor, as kept in its socket's attachment.
struct Cursor {
    x: i64,
    y: i64,
    name: Vec<u8>,
}

impl Cursor {
    /// The attachment: `<x> <y> <name>`.
    fn encode(&self) -> Vec<u8> {
        let mut b = format!("{} {} ", self.x, self.y).into_bytes();
        b.extend_from_slice(&self.name);
        b
    }

    /// Parses an attachment; `None` when it is not `<x> <y> <name>`.
    fn decode(b: &[u8]) -> Option<Cursor> {
        let (x, rest) = cut(b, b' ')?;
        let (y, name) = cut(rest, b' ')?;
        Some(Cursor {
            x: std::str::from_utf8(x).ok()?.parse().ok()?,
            y: std::str::from_utf8(y).ok()?.parse().ok()?,
            name: name.to_vec(),
        })
    }

    /// Appends `{"id":<id>,"name":"<name>","x":<x>,"y":<y>}`.
    fn push_json(&self, out: &mut Vec<u8>, id: u32) {
        out.push(b'{');
        self.push_fields(out, id);
        out.push(b'}');
    }

    /// Appends `"id":<id>,"name":"<name>","x":<x>,"y":<y>` (shared by the cursor object and
    /// the move and click messages).
    fn push_fields(&self, out: &mut Vec<u8>, id: u32) {
        out.extend_from_slice(format!("\"id\":{},\"name\":", id).as_bytes());
        push_json_string(out, &self.name);
        out.extend_from_slice(format!(",\"x\":{},\"y\":{}", self.x, self.y).as_bytes());
    }
}

/// Splits at the first `sep`: (before, after), or `None` when there is none.
fn cut(b: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let i = b.iter().position(|&c| c == sep)?;
    Some((&b[..i], &b[i + 1..]))
}

/// A coordinate: decimal digits (no sign) whose value is 0 to 10000.
fn coord(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut v: i64 = 0;
    for &c in b {
        v = v * 10 + (c - b'0') as i64;
        if v > MAX_COORD {
            return None;
        }
    }
    Some(v)
}

/// Parses a client message, `m <x> <y>` or `c <x> <y>`: ("move" or "click", x, y).
fn parse_message(text: &str) -> Option<(&'static str, i64, i64)> {
    let (kind, rest) = cut(text.as_bytes(), b' ')?;
    let kind = match kind {
        b"m" => "move",
        b"c" => "click",
        _ => return None,
    };
    let (x, y) = cut(rest, b' ')?;
    Some((kind, coord(x)?, coord(y)?))
}

/// Sends a text message. Text frames should be UTF-8; the JSON is, unless a name is not
/// (possible with a percent-encoded name), and then its invalid bytes become U+FFFD.
fn send(ws: WebSocket, msg: &[u8]) -> Result<()> {
    ws.send_text(&String::from_utf8_lossy(msg))
}

/// Sends to a page that may have left during this event (its socket is then gone): that page
/// is skipped.
fn send_to_other(ws: WebSocket, msg: &[u8]) -> Result<()> {
    match send(ws, msg) {
        Err(e) if e.is(Status::NotFound) => Ok(()),
        r => r,
    }
}

impl Cursors {
    /// The open pages' sockets, oldest first (socket IDs grow with time).
    fn pages(&self) -> Result<Vec<WebSocket>> {
        let mut socks = self.ctx.websockets(Some(TAG))?;
        socks.sort();
        Ok(socks)
    }

    /// The socket's cursor, from its attachment; `None` when the page left meanwhile.
    fn cursor(ws: WebSocket) -> Result<Option<Cursor>> {
        let b = match ws.attachment() {
            Ok(b) => b,
            Err(e) if e.is(Status::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        match Cursor::decode(&b) {
            Some(c) => Ok(Some(c)),
            None => Err(Error::new(format!(
                "socket {}: malformed attachment {}",
                ws.id(),
                dowasm::quote(&b)
            ))),
        }
    }

    /// Appends `[<cursor>,...]` for these sockets, oldest first.
    fn push_cursors(&self, out: &mut Vec<u8>, socks: &[WebSocket]) -> Result<()> {
        out.push(b'[');
        let mut first = true;
        for &ws in socks {
            if let Some(c) = Cursors::cursor(ws)? {
                if !first {
                    out.push(b',');
                }
                first = false;
                c.push_json(out, ws.id());
            }
        }
        out.push(b']');
        Ok(())
    }

    /// Sends `msg` to every page except `except`.
    fn broadcast(&self, except: WebSocket, msg: &[u8]) -> Result<()> {
        for ws in self.pages()? {
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
        let others = self.pages()?;
        let ws = self.ctx.accept_websocket(req, &[TAG])?;
        let me = Cursor { x: -1, y: -1, name };
        ws.set_attachment(&me.encode())?;

        let mut hello =
            format!("{{\"type\":\"hello\",\"id\":{},\"cursors\":", ws.id()).into_bytes();
        self.push_cursors(&mut hello, &others)?;
        hello.push(b'}');
        send(ws, &hello)?;

        let mut join = format!("{{\"type\":\"join\",\"id\":{},\"name\":", ws.id()).into_bytes();
        push_json_string(&mut join, &me.name);
        join.push(b'}');
        for other in others {
            send_to_other(other, &join)?;
        }
        // The client gets 101 Switching Protocols: after an accept the response is ignored.
        Ok(Response::no_content())
    }

    /// A page left (closed, was lost, or was dropped by the host): tell the others.
    fn leave(&self, ws: WebSocket) -> Result<()> {
        self.broadcast(
            ws,
            format!("{{\"type\":\"leave\",\"id\":{}}}", ws.id()).as_bytes(),
        )
    }
}

impl Object for Cursors {
    fn new(ctx: &Context) -> Result<Self> {
        // Answered by the host itself, without waking the room.
        ctx.set_websocket_auto_response("ping", "pong")?;
        Ok(Cursors { ctx: *ctx })
    }

    fn fetch(&mut self, req: Request) -> Result<Response> {
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/ws") => self.join(&req),
            ("GET", "/cursors") => {
                let mut body = b"{\"cursors\":".to_vec();
                self.push_cursors(&mut body, &self.pages()?)?;
                body.push(b'}');
                Ok(Response::bytes(200, body).with_header("Content-Type", "application/json"))
            }
            _ => Ok(Response::not_found()),
        }
    }

    fn websocket_message(&mut self, ws: WebSocket, msg: Message) -> Result<()> {
        let parsed = match &msg {
            Message::Text(t) => parse_message(t),
            Message::Binary(_) => None,
        };
        let (kind, x, y) = match parsed {
            Some(p) => p,
            None => return send(ws, BAD_MESSAGE),
        };
        let mut me = match Cursors::cursor(ws)? {
            Some(c) => c,
            None => return Ok(()), // the page left during this event
        };
        me.x = x;
        me.y = y;
        ws.set_attachment(&me.encode())?;
        let mut out = format!("{{\"type\":\"{}\",", kind).into_bytes();
        me.push_fields(&mut out, ws.id());
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

dowasm::export!(Cursors);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        assert_eq!(parse_message("m 0 10000"), Some(("move", 0, 10000)));
        assert_eq!(parse_message("c 5000 2500"), Some(("click", 5000, 2500)));
        assert_eq!(parse_message("m 007 1"), Some(("move", 7, 1)));
        for bad in [
            "",
            "m",
            "m 1",
            "m 1 ",
            "m  1 2",
            "m 1  2",
            "m 1 2 ",
            " m 1 2",
            "x 1 2",
            "mm 1 2",
            "M 1 2",
            "m -1 2",
            "m +1 2",
            "m 1 10001",
            "m 99999999999999999999 1",
            "m 1.5 2",
            "m 1 2 3",
            "m\t1 2",
            "ping",
        ] {
            assert_eq!(parse_message(bad), None, "{:?}", bad);
        }
    }

    #[test]
    fn attachments_and_json() {
        let c = Cursor {
            x: -1,
            y: -1,
            name: b"ann lee".to_vec(),
        };
        assert_eq!(c.encode(), b"-1 -1 ann lee");
        let d = Cursor::decode(b"5000 2500 ann lee").unwrap();
        assert_eq!((d.x, d.y, d.name.as_slice()), (5000, 2500, &b"ann lee"[..]));
        assert!(Cursor::decode(b"1 2").is_none());
        assert!(Cursor::decode(b"x 2 a").is_none());
        let d = Cursor::decode(b"1 2 ").unwrap();
        assert_eq!(d.name, b"");
        let mut b = Vec::new();
        c.push_json(&mut b, 7);
        assert_eq!(
            b,
            b"{\"id\":7,\"name\":\"ann lee\",\"x\":-1,\"y\":-1}".to_vec()
        );
        let mut b = b"{\"type\":\"move\",".to_vec();
        d.push_fields(&mut b, 12);
        b.push(b'}');
        assert_eq!(
            b,
            b"{\"type\":\"move\",\"id\":12,\"name\":\"\",\"x\":1,\"y\":2}".to_vec()
        );
    }
}
