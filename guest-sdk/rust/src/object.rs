//! Object classes, the running object's context, and the runtime behind the guest exports.

use std::cell::{Cell, RefCell};

use crate::call::Stub;
use crate::codec;
use crate::http::{Request, Response};
use crate::status::{check, code_name, Error, Result};
use crate::storage::{read_staged, Storage, MAX_RESULT_SIZE};
use crate::sys;
use crate::websocket::{Message, WebSocket};

/// An object class. Implement it for your type and export it with [`export!`](crate::export).
///
/// dowasm runs one instance per object ID and delivers its events one at a time, so a handler
/// never runs concurrently with itself and may keep state in `self`.
///
/// Handlers for other kinds of events ([`alarm`](Object::alarm), [`rpc`](Object::rpc), and the
/// WebSocket events [`websocket_message`](Object::websocket_message),
/// [`websocket_close`](Object::websocket_close) and [`websocket_error`](Object::websocket_error))
/// are methods with default implementations, so a class implements only the ones it uses.
pub trait Object {
    /// The constructor. It runs once per instance, before the instance's first event (when the
    /// object is first used, and whenever it wakes after eviction or a failed event), inside
    /// that event's transaction, so it can read storage to rebuild in-memory state. An error
    /// (or a panic) fails that event.
    fn new(ctx: &Context) -> Result<Self>
    where
        Self: Sized;

    /// Handles one HTTP request. Returning `Err` fails the event: its storage writes are rolled
    /// back, the client gets a 500 naming the error, and the instance is discarded (the next
    /// event constructs a fresh one from storage). A panic fails the event the same way.
    fn fetch(&mut self, req: Request) -> Result<Response>;

    /// Handles the object's alarm, set with [`Storage::set_alarm`]. An event like any other:
    /// it runs one at a time with the object's other events, in its own transaction, and its
    /// writes commit before the host considers the alarm delivered. When it runs the alarm is
    /// no longer set ([`Storage::get_alarm`] answers `None`); set a new one to run again.
    ///
    /// Returning `Err` (or panicking) fails the attempt: its writes are rolled back and the host
    /// retries after 2 s, 4 s, 8 s, ... (with jitter), at most 6 times, then drops the alarm
    /// and logs an error; `info` says which attempt this is. Delivery is at least once: after a
    /// crash the handler may run again for an alarm it already handled, so make it idempotent.
    ///
    /// A class that calls [`Storage::set_alarm`] must override this method. The default
    /// implementation deletes the alarm, which cancels its retries (each would fail the same
    /// way), and fails with an error saying that the class has no alarm handler: the host logs
    /// that error once, as the reason it dropped the alarm.
    fn alarm(&mut self, info: AlarmInfo) -> Result<()> {
        let _ = info;
        // Best effort: if the delete fails, the retries fail with the same message.
        let _ = Storage::new().delete_alarm();
        Err(Error::new(NO_ALARM_HANDLER))
    }

    /// Handles an RPC from another object ([`Stub::call`]): `method` names what to do, `arg`
    /// are the caller's bytes, and the bytes returned go back to the caller. An event like any
    /// other: one at a time with the object's other events, in its own transaction, committed
    /// before the caller gets the result.
    ///
    /// Returning `Err` (or panicking) fails the event: its writes are rolled back, the instance
    /// is discarded, and the caller's [`Stub::call`] fails with
    /// [`Status::CallFailed`](crate::Status::CallFailed) and this error's message. The default
    /// implementation fails with an error saying that the class has no RPC handler.
    fn rpc(&mut self, method: &str, arg: Vec<u8>) -> Result<Vec<u8>> {
        let _ = (method, arg);
        Err(Error::new(NO_RPC_HANDLER))
    }

    /// Handles a message from one of the object's WebSockets (accepted with
    /// [`Context::accept_websocket`]). An event like any other: one at a time with the object's
    /// other events, in its own transaction; the messages it sends leave after its commit. A
    /// socket's messages arrive in the order the client sent them, and the host reads a
    /// socket's next message only when this event is done. If the object was evicted
    /// (hibernation), the constructor runs first.
    ///
    /// Returning `Err` (or panicking) fails the event: its writes, sends and attachment changes
    /// are dropped, the instance is discarded, the socket stays open and the host logs the
    /// error. The default implementation fails with an error saying that the class does not
    /// handle WebSocket messages.
    fn websocket_message(&mut self, ws: WebSocket, msg: Message) -> Result<()> {
        let _ = (ws, msg);
        Err(Error::new(NO_WEBSOCKET_HANDLER))
    }

    /// Handles the end of a WebSocket that the client closed or lost: `code` is the client's
    /// close code (1005 when it sent none, 1006 when the connection ended without a close
    /// frame), `reason` its reason, `was_clean` whether the close handshake completed. The
    /// socket is already gone from [`Context::websockets`] and sends to it fail, but during this
    /// event its [`attachment`](WebSocket::attachment) and [`tags`](WebSocket::tags) can still
    /// be read (to say who left). Each socket ends with exactly one `websocket_close` or
    /// [`websocket_error`](Object::websocket_error), except when the object closed it itself
    /// ([`WebSocket::close`]) or the server shuts down. The default implementation does
    /// nothing.
    fn websocket_close(
        &mut self,
        ws: WebSocket,
        code: u16,
        reason: String,
        was_clean: bool,
    ) -> Result<()> {
        let _ = (ws, code, reason, was_clean);
        Ok(())
    }

    /// Handles the end of a WebSocket that the host closed because of an error (the client did
    /// not read and its send buffer overflowed, it sent a message over the size limit, or it
    /// broke the protocol); `error` says which. The socket is already gone; as in
    /// [`websocket_close`](Object::websocket_close), its attachment and tags can still be read
    /// during this event. The default implementation does nothing.
    fn websocket_error(&mut self, ws: WebSocket, error: String) -> Result<()> {
        let _ = (ws, error);
        Ok(())
    }
}

/// The error of the default [`Object::websocket_message`].
pub(crate) const NO_WEBSOCKET_HANDLER: &str =
    "dowasm: this class does not handle WebSocket messages (override Object::websocket_message)";

/// The error of the default [`Object::rpc`].
pub(crate) const NO_RPC_HANDLER: &str =
    "dowasm: this class has no RPC handler (override Object::rpc to answer Stub::call)";

/// The error of the default [`Object::alarm`].
pub(crate) const NO_ALARM_HANDLER: &str =
    "dowasm: this class has no alarm handler (override Object::alarm to use Storage::set_alarm)";

/// Which delivery of an alarm this is, passed to [`Object::alarm`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlarmInfo {
    /// 0 on the first attempt, then how many attempts failed before this one.
    pub retry_count: u32,
    /// Whether an earlier attempt to deliver this alarm failed.
    pub is_retry: bool,
}

impl AlarmInfo {
    /// The arguments of `dowasm_alarm(retry_count, is_retry)`; a negative count (which the host
    /// never passes) counts as 0.
    pub(crate) fn from_abi(retry_count: i32, is_retry: i32) -> AlarmInfo {
        AlarmInfo {
            retry_count: retry_count.max(0) as u32,
            is_retry: is_retry != 0,
        }
    }
}

/// A log level of [`Context::log`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

/// The running object: its identity, its storage and its log. A zero-sized handle: copy it into
/// your object if you need it after the constructor.
#[derive(Clone, Copy, Debug)]
pub struct Context {
    storage: Storage,
}

impl Context {
    pub(crate) const fn new() -> Context {
        Context {
            storage: Storage::new(),
        }
    }

    /// The object's private, transactional key-value storage.
    pub fn storage(&self) -> Storage {
        self.storage
    }

    /// The object's ID as 64 lowercase hex characters (`""` off WebAssembly).
    pub fn id(&self) -> String {
        check("object_id", sys::object_id())
            .and_then(|n| read_staged("object_id", n))
            .map(|b| codec::string(&b))
            .unwrap_or_default()
    }

    /// The name the object's ID was derived from (the `<name>` of `/<class>/<name>/...`), or
    /// `None` for an ID that was not derived from a name (`/<class>/id/<hex>/...`).
    pub fn name(&self) -> Option<String> {
        check("object_name", sys::object_name())
            .and_then(|n| read_staged("object_name", n))
            .map(|b| codec::string(&b))
            .ok()
    }

    /// Another object, by name: the object of class `class` whose ID derives from `name`
    /// (the object `/<class>/<name>/...` reaches). Use it with [`Stub::fetch`] and
    /// [`Stub::call`]. Nothing is checked until a call: an unknown class is
    /// [`Status::NotFound`](crate::Status::NotFound), an empty name or one longer than 1,024
    /// bytes [`Status::InvalidArgument`](crate::Status::InvalidArgument).
    pub fn stub(&self, class: &str, name: &str) -> Stub {
        Stub::new(class, codec::target_kind::NAME, name)
    }

    /// Another object, by ID: 64 hex characters as [`id`](Self::id) returns them, minted by the
    /// namespace of class `class` (an ID of another class is
    /// [`Status::InvalidArgument`](crate::Status::InvalidArgument) at the first call).
    pub fn stub_by_id(&self, class: &str, id_hex: &str) -> Stub {
        Stub::new(class, codec::target_kind::ID, id_hex)
    }

    /// Writes one line (at most 16 KiB; the host truncates longer lines) to the host's
    /// structured log, tagged with the class and the object's ID. Format with `format!`.
    pub fn log(&self, level: Level, msg: &str) {
        sys::log(level as i32, msg.as_bytes());
    }
}

/// The wall clock: milliseconds since the Unix epoch (WASI `clock_time_get`, realtime clock);
/// 0 if the host refuses.
pub fn now() -> i64 {
    now_ns() / 1_000_000
}

/// The wall clock in nanoseconds since the Unix epoch; 0 if the host refuses.
pub fn now_ns() -> i64 {
    sys::realtime_ns().map(|t| t as i64).unwrap_or(0)
}

// The state of this WebAssembly instance: it serves exactly one object. WebAssembly instances
// are single-threaded, so a thread-local is the instance's global.
thread_local! {
    static INSTANCE: RefCell<Option<Box<dyn Object>>> = RefCell::new(None);
    static IN_CONSTRUCTOR: Cell<bool> = Cell::new(false);
}

/// Reports `msg` as the reason the current handler failed and returns the failing result.
fn fail(msg: &str) -> i32 {
    let msg = if msg.is_empty() {
        "error with an empty message"
    } else {
        msg
    };
    sys::error_set(msg.as_bytes());
    1
}

/// Reports a panic before the module traps: on wasm32-unknown-unknown a panic aborts (the
/// module traps), so no handler returns. The message and location go to `error_set`, for the
/// host's report of the failed event, and to the log at error level.
fn panic_hook(info: &std::panic::PanicInfo<'_>) {
    let payload = info.payload();
    let msg = if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.as_str()
    } else {
        "a value that is not a string"
    };
    let prefix = if IN_CONSTRUCTOR.with(|c| c.get()) {
        "constructor panicked: "
    } else {
        "panic: "
    };
    let text = match info.location() {
        Some(l) => format!(
            "{}{} [{}:{}:{}]",
            prefix,
            msg,
            l.file(),
            l.line(),
            l.column()
        ),
        None => format!("{}{}", prefix, msg),
    };
    sys::error_set(text.as_bytes());
    sys::log(Level::Error as i32, text.as_bytes());
}

/// The implementation of the guest exports; [`export!`](crate::export) calls these.
#[doc(hidden)]
pub mod rt {
    use super::*;

    /// `dowasm_init`: runs the constructor and keeps the object.
    pub fn init<T: Object + 'static>() -> i32 {
        std::panic::set_hook(Box::new(panic_hook));
        IN_CONSTRUCTOR.with(|c| c.set(true));
        let r = T::new(&Context::new());
        IN_CONSTRUCTOR.with(|c| c.set(false));
        match r {
            Ok(obj) => {
                INSTANCE.with(|i| *i.borrow_mut() = Some(Box::new(obj)));
                0
            }
            Err(e) => fail(&format!("constructor: {}", e)),
        }
    }

    /// `dowasm_fetch`: reads and decodes the staged request, runs the handler and sets the
    /// response.
    pub fn fetch(req_len: i32) -> i32 {
        INSTANCE.with(|cell| {
            let mut guard = cell.borrow_mut();
            let obj = match guard.as_mut() {
                Some(obj) => obj,
                None => return fail("dowasm_fetch before a successful dowasm_init"),
            };
            let req = match read_staged("request", req_len) {
                Ok(b) => match codec::decode_request(&b) {
                    Some(req) => req,
                    None => {
                        return fail(&format!(
                            "malformed request encoding from the host ({} bytes)",
                            req_len
                        ))
                    }
                },
                Err(e) => return fail(&e.to_string()),
            };
            let resp = match obj.fetch(req) {
                Ok(resp) => resp,
                Err(e) => return fail(&e.to_string()),
            };
            if let Some(msg) = resp.check() {
                return fail(&format!("invalid response: {}", msg));
            }
            let rc = sys::response_set(&codec::encode_response(&resp));
            if rc < 0 {
                return fail(&format!("response_set: {}", code_name(rc.wrapping_neg())));
            }
            0
        })
    }

    /// `dowasm_alarm`: runs the alarm handler.
    pub fn alarm(retry_count: i32, is_retry: i32) -> i32 {
        INSTANCE.with(|cell| {
            let mut guard = cell.borrow_mut();
            let obj = match guard.as_mut() {
                Some(obj) => obj,
                None => return fail("dowasm_alarm before a successful dowasm_init"),
            };
            match obj.alarm(AlarmInfo::from_abi(retry_count, is_retry)) {
                Ok(()) => 0,
                Err(e) => fail(&e.to_string()),
            }
        })
    }

    /// `dowasm_rpc`: reads the staged method and argument, runs the RPC handler and sets the
    /// result.
    pub fn rpc(method_len: i32, arg_len: i32) -> i32 {
        INSTANCE.with(|cell| {
            let mut guard = cell.borrow_mut();
            let obj = match guard.as_mut() {
                Some(obj) => obj,
                None => return fail("dowasm_rpc before a successful dowasm_init"),
            };
            let total = match method_len.checked_add(arg_len) {
                Some(n) if method_len >= 0 && arg_len >= 0 => n,
                _ => {
                    return fail(&format!(
                        "malformed RPC lengths from the host ({} + {} bytes)",
                        method_len, arg_len
                    ))
                }
            };
            let mut method = match read_staged("rpc", total) {
                Ok(b) => b,
                Err(e) => return fail(&e.to_string()),
            };
            let arg = method.split_off(method_len as usize);
            let method = codec::string(&method);
            let result = match obj.rpc(&method, arg) {
                Ok(r) => r,
                Err(e) => return fail(&e.to_string()),
            };
            if result.is_empty() {
                return 0; // the caller gets empty bytes when none were set
            }
            if result.len() > MAX_RESULT_SIZE {
                return fail(&format!(
                    "RPC result is {} bytes; the limit is 32 MiB",
                    result.len()
                ));
            }
            let rc = sys::rpc_return(&result);
            if rc < 0 {
                return fail(&format!("rpc_return: {}", code_name(rc.wrapping_neg())));
            }
            0
        })
    }

    /// `dowasm_ws_message`: reads the staged message and runs the message handler.
    pub fn ws_message(socket: i32, kind: i32, len: i32) -> i32 {
        ws_event(socket, WsEvent::Message { kind }, len)
    }

    /// `dowasm_ws_close`: reads the staged reason and runs the close handler.
    pub fn ws_close(socket: i32, code: i32, was_clean: i32, reason_len: i32) -> i32 {
        ws_event(socket, WsEvent::Close { code, was_clean }, reason_len)
    }

    /// `dowasm_ws_error`: reads the staged message and runs the error handler.
    pub fn ws_error(socket: i32, msg_len: i32) -> i32 {
        ws_event(socket, WsEvent::Error, msg_len)
    }

    /// The arguments of a WebSocket export besides the socket and the staged length.
    enum WsEvent {
        Message { kind: i32 },
        Close { code: i32, was_clean: i32 },
        Error,
    }

    /// Runs a WebSocket event: reads the `len` staged bytes (the message, the close reason or
    /// the error) and calls the handler. One function for the three exports keeps modules
    /// small.
    fn ws_event(socket: i32, ev: WsEvent, len: i32) -> i32 {
        let export = match ev {
            WsEvent::Message { .. } => "dowasm_ws_message",
            WsEvent::Close { .. } => "dowasm_ws_close",
            WsEvent::Error => "dowasm_ws_error",
        };
        INSTANCE.with(|cell| {
            let mut guard = cell.borrow_mut();
            let obj = match guard.as_mut() {
                Some(obj) => obj,
                None => return fail(&format!("{} before a successful dowasm_init", export)),
            };
            match ev {
                WsEvent::Message { kind }
                    if kind as u32 != codec::ws_kind::TEXT
                        && kind as u32 != codec::ws_kind::BINARY =>
                {
                    return fail(&format!(
                        "unknown WebSocket message kind {} from the host",
                        kind
                    ));
                }
                WsEvent::Close { code, .. } if !(0..=0xffff).contains(&code) => {
                    return fail(&format!("malformed close code {} from the host", code));
                }
                _ => {}
            }
            let b = match read_staged(export, len) {
                Ok(b) => b,
                Err(e) => return fail(&e.to_string()),
            };
            let ws = WebSocket::from_id(socket as u32);
            let r = match ev {
                WsEvent::Message { kind } if kind as u32 == codec::ws_kind::BINARY => {
                    obj.websocket_message(ws, Message::Binary(b))
                }
                WsEvent::Message { .. } => obj.websocket_message(ws, Message::Text(lossy(b))),
                WsEvent::Close { code, was_clean } => {
                    obj.websocket_close(ws, code as u16, lossy(b), was_clean != 0)
                }
                WsEvent::Error => obj.websocket_error(ws, lossy(b)),
            };
            match r {
                Ok(()) => 0,
                Err(e) => fail(&e.to_string()),
            }
        })
    }
}

/// Bytes as a string, without copying when they are UTF-8; invalid bytes become U+FFFD.
fn lossy(b: Vec<u8>) -> String {
    match String::from_utf8(b) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}
