//! export! generates `dowasm_ws_message`, `dowasm_ws_close` and `dowasm_ws_error`, which read
//! the staged message, reason or error, run the class's handler with the decoded arguments and
//! report a handler error as a non-zero result. Natively there is no host: only empty staged
//! input (0 bytes) can be read without one.

use std::sync::Mutex;

use dowasm::{Context, Message, Object, Request, Response, Result, WebSocket};

/// What the handlers saw, one line per event.
static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Room;

impl Object for Room {
    fn new(_: &Context) -> Result<Self> {
        Ok(Room)
    }

    fn fetch(&mut self, _: Request) -> Result<Response> {
        Ok(Response::no_content())
    }

    fn websocket_message(&mut self, ws: WebSocket, msg: Message) -> Result<()> {
        SEEN.lock()
            .unwrap()
            .push(format!("message {} {:?}", ws.id(), msg));
        match msg {
            Message::Binary(_) => Err("binary messages are not supported".into()),
            Message::Text(_) => Ok(()),
        }
    }

    fn websocket_close(
        &mut self,
        ws: WebSocket,
        code: u16,
        reason: String,
        was_clean: bool,
    ) -> Result<()> {
        SEEN.lock().unwrap().push(format!(
            "close {} {} {:?} {}",
            ws.id(),
            code,
            reason,
            was_clean
        ));
        Ok(())
    }

    fn websocket_error(&mut self, ws: WebSocket, error: String) -> Result<()> {
        SEEN.lock()
            .unwrap()
            .push(format!("error {} {:?}", ws.id(), error));
        Err("cannot recover".into())
    }
}

dowasm::export!(Room);

extern "C" {
    fn dowasm_init() -> i32;
    fn dowasm_ws_message(socket: i32, kind: i32, len: i32) -> i32;
    fn dowasm_ws_close(socket: i32, code: i32, was_clean: i32, reason_len: i32) -> i32;
    fn dowasm_ws_error(socket: i32, msg_len: i32) -> i32;
}

// One test: the instance lives in a thread-local, and each test runs on its own thread.
#[test]
fn websocket_exports_run_the_handlers() {
    unsafe {
        assert_eq!(dowasm_ws_message(7, 1, 0), 1, "before a successful init");
        assert_eq!(dowasm_init(), 0);
        assert_eq!(dowasm_ws_message(7, 1, 0), 0);
        assert_eq!(dowasm_ws_message(8, 2, 0), 1, "the handler's error");
        // An unknown kind, or input that cannot be read: the handler does not run.
        assert_eq!(dowasm_ws_message(7, 3, 0), 1);
        assert_eq!(dowasm_ws_message(7, 0, 0), 1);
        assert_eq!(dowasm_ws_message(7, 1, 5), 1);
        assert_eq!(dowasm_ws_message(7, 1, -1), 1);
        assert_eq!(dowasm_ws_close(9, 1006, 0, 0), 0);
        assert_eq!(dowasm_ws_close(9, 1000, 1, 0), 0);
        assert_eq!(dowasm_ws_close(9, 70_000, 1, 0), 1);
        assert_eq!(dowasm_ws_close(9, -1, 1, 0), 1);
        assert_eq!(dowasm_ws_close(9, 1000, 1, 3), 1);
        assert_eq!(dowasm_ws_error(10, 0), 1, "the handler's error");
        assert_eq!(dowasm_ws_error(10, 4), 1);
    }
    assert_eq!(
        *SEEN.lock().unwrap(),
        vec![
            r#"message 7 Text("")"#,
            "message 8 Binary([])",
            r#"close 9 1006 "" false"#,
            r#"close 9 1000 "" true"#,
            r#"error 10 """#,
        ]
    );
}
