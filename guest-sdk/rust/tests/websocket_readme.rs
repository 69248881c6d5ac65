//! The README's WebSocket example compiles against the public API, and export! generates the
//! WebSocket exports for it. Natively there is no host: the constructor (which sets the
//! auto-response) fails.

use dowasm::{Context, Message, Object, Request, Response, Result, WebSocket};

struct Room {
    ctx: Context,
}

impl Room {
    /// Sends `text` to every member but `except`.
    fn broadcast(&self, except: WebSocket, text: &str) -> Result<()> {
        for ws in self.ctx.websockets(Some("member"))? {
            if ws != except {
                ws.send_text(text)?;
            }
        }
        Ok(())
    }
}

impl Object for Room {
    fn new(ctx: &Context) -> Result<Self> {
        // The host answers "ping" itself, without an event: idle clients never wake the room.
        ctx.set_websocket_auto_response("ping", "pong")?;
        Ok(Room { ctx: *ctx })
    }

    fn fetch(&mut self, req: Request) -> Result<Response> {
        if req.path != "/ws" {
            return Ok(Response::not_found());
        }
        if !req.is_websocket_upgrade() {
            return Ok(Response::text(426, "expected a WebSocket upgrade\n"));
        }
        let name = req.query_param("name").unwrap_or_default();
        let ws = self.ctx.accept_websocket(&req, &["member"])?;
        // Per-connection state goes in the attachment: it survives hibernation.
        ws.set_attachment(name.as_bytes())?;
        ws.send_text(&format!("welcome, {}", name))?;
        self.broadcast(ws, &format!("{} joined", name))?;
        Ok(Response::no_content()) // ignored: the client gets 101 Switching Protocols
    }

    fn websocket_message(&mut self, ws: WebSocket, msg: Message) -> Result<()> {
        match msg {
            Message::Text(text) => {
                let name = String::from_utf8_lossy(&ws.attachment()?).into_owned();
                self.broadcast(ws, &format!("{}: {}", name, text))
            }
            Message::Binary(_) => ws.close(4000, "text messages only"),
        }
    }

    fn websocket_close(&mut self, ws: WebSocket, _: u16, _: String, _: bool) -> Result<()> {
        // The socket is gone, but its attachment can still be read during this event.
        let name = String::from_utf8_lossy(&ws.attachment()?).into_owned();
        self.broadcast(ws, &format!("{} left", name))
    }
}

dowasm::export!(Room);

extern "C" {
    fn dowasm_init() -> i32;
    fn dowasm_ws_message(socket: i32, kind: i32, len: i32) -> i32;
    fn dowasm_ws_close(socket: i32, code: i32, was_clean: i32, reason_len: i32) -> i32;
    fn dowasm_ws_error(socket: i32, msg_len: i32) -> i32;
}

#[test]
fn readme_websocket_example_compiles() {
    unsafe {
        assert_eq!(dowasm_init(), 1, "ws_auto_response fails off WebAssembly");
        assert_eq!(dowasm_ws_message(1, 1, 0), 1, "no instance");
        assert_eq!(dowasm_ws_close(1, 1000, 1, 0), 1, "no instance");
        assert_eq!(dowasm_ws_error(1, 0), 1, "no instance");
    }
}
