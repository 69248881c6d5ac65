//! WebSockets with hibernation: a fetch handler accepts a client's upgrade with
//! [`Context::accept_websocket`], the host then owns the connection (the object may be evicted
//! while it stays open), and the socket's messages and end arrive as events of the object
//! ([`Object::websocket_message`](crate::Object::websocket_message),
//! [`websocket_close`](crate::Object::websocket_close),
//! [`websocket_error`](crate::Object::websocket_error)).

use crate::codec;
use crate::http::Request;
use crate::object::Context;
use crate::status::{check, Error, Result, Status};
use crate::storage::read_staged;
use crate::sys;

/// Tags on one WebSocket (`INVALID_ARGUMENT` beyond).
pub const MAX_SOCKET_TAGS: usize = 10;
/// Bytes of one WebSocket tag; a tag is 1 to this many bytes (`INVALID_ARGUMENT` otherwise).
pub const MAX_TAG_SIZE: usize = 256;
/// Bytes of one WebSocket's attachment (`VALUE_TOO_LARGE` beyond).
pub const MAX_ATTACHMENT_SIZE: usize = 16 << 10;
/// Bytes of a WebSocket close reason (`INVALID_ARGUMENT` beyond): a close frame holds 125
/// bytes, two of them the code.
pub const MAX_CLOSE_REASON_SIZE: usize = 123;
/// Bytes of each side of the auto-response pair (`VALUE_TOO_LARGE` beyond).
pub const MAX_AUTO_RESPONSE: usize = 2 << 10;

/// One of the object's WebSockets: a handle holding the socket's ID, which the host assigns
/// (unique in the host process, positive) and which stays the same across hibernation. Made by
/// [`Context::accept_websocket`], listed by [`Context::websockets`], and passed to the
/// WebSocket handlers of [`Object`](crate::Object). Copy it, compare it, keep it in maps: the
/// IDs grow with time, so the order of `WebSocket`s is the order in which they were accepted.
///
/// Sends, closes and attachment changes take effect when the current event commits and are
/// dropped if it fails (the output gate); messages leave in the order they were sent. Calls on
/// a socket that is no longer open (the client left, or the object closed it) fail with
/// [`Status::NotFound`], except reading its attachment and tags during its own close or error
/// event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WebSocket(u32);

/// A message from a WebSocket client, passed to
/// [`Object::websocket_message`](crate::Object::websocket_message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message. The host does not check that it is UTF-8: bytes that are not become
    /// U+FFFD.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

impl Request {
    /// Whether this request asks for a WebSocket upgrade: a `GET` with an `Upgrade` header
    /// naming `websocket` (ignoring ASCII case; a header may list several protocols separated by
    /// commas, as the host's gateway and the Go SDK read it). Only such a request can be
    /// accepted with [`Context::accept_websocket`].
    pub fn is_websocket_upgrade(&self) -> bool {
        self.method == "GET"
            && self.headers.values("Upgrade").any(|v| {
                v.split(|&c| c == b',')
                    .any(|p| trim_space(p).eq_ignore_ascii_case(b"websocket"))
            })
    }
}

/// `b` without leading and trailing spaces and tabs.
fn trim_space(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

/// Why `tags` cannot be a socket's tags (at most [`MAX_SOCKET_TAGS`], each 1 to
/// [`MAX_TAG_SIZE`] bytes), as an `INVALID_ARGUMENT` error of `ws_accept`.
pub(crate) fn check_tags(tags: &[&str]) -> Result<()> {
    let invalid = |msg: String| Error::host_msg("ws_accept", Status::InvalidArgument.code(), &msg);
    if tags.len() > MAX_SOCKET_TAGS {
        return Err(invalid(format!(
            "{} tags; the limit is {}",
            tags.len(),
            MAX_SOCKET_TAGS
        )));
    }
    for (i, t) in tags.iter().enumerate() {
        if t.is_empty() {
            return Err(invalid(format!("tags[{}] is empty", i)));
        }
        if t.len() > MAX_TAG_SIZE {
            return Err(invalid(format!(
                "tags[{}] is {} bytes; the limit is {}",
                i,
                t.len(),
                MAX_TAG_SIZE
            )));
        }
    }
    Ok(())
}

/// Why `code` and `reason` cannot close a socket, as an `INVALID_ARGUMENT` error of `ws_close`.
pub(crate) fn check_close(code: u16, reason: &str) -> Result<()> {
    let invalid = |msg: String| Error::host_msg("ws_close", Status::InvalidArgument.code(), &msg);
    if code != 1000 && !(3000..=4999).contains(&code) {
        return Err(invalid(format!(
            "close code {} is not 1000 or 3000-4999",
            code
        )));
    }
    if reason.len() > MAX_CLOSE_REASON_SIZE {
        return Err(invalid(format!(
            "close reason is {} bytes; the limit is {}",
            reason.len(),
            MAX_CLOSE_REASON_SIZE
        )));
    }
    Ok(())
}

/// A `VALUE_TOO_LARGE` error of `op` when `what` (`len` bytes) is longer than `limit`.
fn check_size(op: &str, what: &str, len: usize, limit: usize) -> Result<()> {
    if len > limit {
        return Err(Error::host_msg(
            op,
            Status::ValueTooLarge.code(),
            &format!("{} is {} bytes; the limit is {}", what, len, limit),
        ));
    }
    Ok(())
}

/// Decodes a staged socket list into handles.
fn decode_sockets(op: &str, b: &[u8]) -> Result<Vec<WebSocket>> {
    match codec::decode_socket_list(b) {
        Some(ids) => Ok(ids.into_iter().map(WebSocket).collect()),
        None => Err(Error::host_msg(
            op,
            Status::InvalidArgument.code(),
            &format!("malformed socket list from the host ({} bytes)", b.len()),
        )),
    }
}

impl Context {
    /// Accepts the WebSocket upgrade of the current fetch event and returns the new socket,
    /// carrying `tags` (at most [`MAX_SOCKET_TAGS`], each 1 to [`MAX_TAG_SIZE`] bytes; select
    /// sockets by tag with [`websockets`](Self::websockets)). `req` is the event's request: it
    /// must be a WebSocket upgrade ([`Request::is_websocket_upgrade`]) from a client, not from
    /// another object.
    ///
    /// The socket exists from this call on (it is listed, and messages sent to it wait), but
    /// the upgrade happens only when the event commits: if the event fails, the socket never
    /// existed and the client gets the error response. After a successful accept the client
    /// gets `101 Switching Protocols`, whatever response the handler returns. The host owns
    /// the connection from then on: the object may be evicted while the socket stays open
    /// (hibernation), and the socket's next message wakes it.
    ///
    /// Errors: [`Status::NotAllowed`] (not a WebSocket upgrade, not in a fetch event, already
    /// accepted), [`Status::InvalidArgument`] (tags; checked before calling the host),
    /// [`Status::LimitExceeded`] (the object has as many sockets as the host allows).
    pub fn accept_websocket(&self, req: &Request, tags: &[&str]) -> Result<WebSocket> {
        if !req.is_websocket_upgrade() {
            return Err(Error::host_msg(
                "ws_accept",
                Status::NotAllowed.code(),
                "the request is not a WebSocket upgrade (GET with Upgrade: websocket)",
            ));
        }
        check_tags(tags)?;
        let list = if tags.is_empty() {
            Vec::new()
        } else {
            codec::encode_key_list(tags)
        };
        let id = check("ws_accept", sys::ws_accept(&list))?;
        Ok(WebSocket(id as u32))
    }

    /// The object's open WebSockets, oldest first: all of them with `None`, those carrying the
    /// tag with `Some(tag)` (`Some("")` matches none: tags are never empty). Sockets accepted
    /// in the current event are included; sockets closed by it, or whose client left, are not.
    pub fn websockets(&self, tag: Option<&str>) -> Result<Vec<WebSocket>> {
        let tag = match tag {
            None => "",
            Some("") => return Ok(Vec::new()),
            Some(t) => t,
        };
        if tag.len() > MAX_TAG_SIZE {
            return Err(Error::host_msg(
                "ws_list",
                Status::InvalidArgument.code(),
                &format!("tag is {} bytes; the limit is {}", tag.len(), MAX_TAG_SIZE),
            ));
        }
        let n = check("ws_list", sys::ws_list(tag.as_bytes()))?;
        let b = read_staged("ws_list", n)?;
        decode_sockets("ws_list", &b)
    }

    /// Sets the object's auto-response: from then on a text message equal to `request`, from
    /// any of the object's sockets, is answered with the text `response` by the host itself,
    /// without an event and without waking a hibernated object (a `ping`/`pong` keep-alive).
    /// [`WebSocket::auto_response_time`] tells when a socket was last answered. Each side is at
    /// most [`MAX_AUTO_RESPONSE`] bytes; an empty `request` removes the pair. It takes effect
    /// when the event commits and lasts as long as the object has sockets: set it in the
    /// constructor, which runs again when the object wakes.
    pub fn set_websocket_auto_response(&self, request: &str, response: &str) -> Result<()> {
        let op = "ws_auto_response";
        if request.is_empty() {
            return check(op, sys::ws_auto_response(b"", b"")).map(|_| ());
        }
        check_size(op, "request", request.len(), MAX_AUTO_RESPONSE)?;
        check_size(op, "response", response.len(), MAX_AUTO_RESPONSE)?;
        check(
            op,
            sys::ws_auto_response(request.as_bytes(), response.as_bytes()),
        )
        .map(|_| ())
    }
}

impl WebSocket {
    /// The socket's ID, as the host assigned it.
    pub fn id(&self) -> u32 {
        self.0
    }

    /// The socket with this ID (one [`id`](Self::id) returned): a handle only, nothing is
    /// checked until it is used.
    pub fn from_id(id: u32) -> WebSocket {
        WebSocket(id)
    }

    /// Sends a text message. It leaves when the event commits (and is dropped if it fails), in
    /// the order of the sends. The host never blocks: a client that does not read is
    /// disconnected when its buffer overflows. Errors: [`Status::NotFound`] (not open),
    /// [`Status::ValueTooLarge`] (over the host's message limit, 1 MiB by default),
    /// [`Status::LimitExceeded`] (the sends held for this commit would exceed the socket's send
    /// buffer, 1 MiB by default, or 64 MiB in all: the message is not sent).
    pub fn send_text(&self, text: &str) -> Result<()> {
        self.send(codec::ws_kind::TEXT, text.as_bytes())
    }

    /// Sends a binary message, like [`send_text`](Self::send_text).
    pub fn send_binary(&self, data: &[u8]) -> Result<()> {
        self.send(codec::ws_kind::BINARY, data)
    }

    fn send(&self, kind: u32, b: &[u8]) -> Result<()> {
        check("ws_send", sys::ws_send(self.0, kind, b)).map(|_| ())
    }

    /// Closes the socket with `code` (1000, or 3000–4999 for applications) and `reason` (at
    /// most [`MAX_CLOSE_REASON_SIZE`] bytes), after the event commits and after the messages
    /// sent before. From this call on the socket is no longer listed and sends to it fail with
    /// [`Status::NotFound`]; no [`websocket_close`](crate::Object::websocket_close) follows for
    /// a socket the object closed itself. Errors: [`Status::InvalidArgument`] (code or reason;
    /// checked before calling the host), [`Status::NotFound`].
    pub fn close(&self, code: u16, reason: &str) -> Result<()> {
        check_close(code, reason)?;
        check(
            "ws_close",
            sys::ws_close(self.0, code as u32, reason.as_bytes()),
        )
        .map(|_| ())
    }

    /// The tags the socket was accepted with (bytes that are not UTF-8 become U+FFFD). Readable
    /// while the socket is open and during its own close or error event.
    pub fn tags(&self) -> Result<Vec<String>> {
        let n = check("ws_tags", sys::ws_tags(self.0))?;
        let b = read_staged("ws_tags", n)?;
        match codec::decode_key_list(&b) {
            Some(tags) => Ok(tags.iter().map(|t| codec::string(t)).collect()),
            None => Err(Error::host_msg(
                "ws_tags",
                Status::InvalidArgument.code(),
                &format!("malformed tag list from the host ({} bytes)", b.len()),
            )),
        }
    }

    /// The socket's attachment, as the current event last set it (empty when there is none).
    /// Readable while the socket is open and during its own close or error event
    /// ([`Object::websocket_close`](crate::Object::websocket_close),
    /// [`Object::websocket_error`](crate::Object::websocket_error)), to say who left.
    pub fn attachment(&self) -> Result<Vec<u8>> {
        let n = check("ws_attachment_get", sys::ws_attachment_get(self.0))?;
        read_staged("ws_attachment_get", n)
    }

    /// Replaces the socket's attachment: at most [`MAX_ATTACHMENT_SIZE`] bytes the host keeps
    /// with the socket, so they survive hibernation (per-connection state such as a user name).
    /// Like a storage write it takes effect when the event commits and is discarded if the
    /// event fails; [`attachment`](Self::attachment) sees it at once. Empty clears it.
    pub fn set_attachment(&self, data: &[u8]) -> Result<()> {
        let op = "ws_attachment_set";
        check_size(op, "attachment", data.len(), MAX_ATTACHMENT_SIZE)?;
        check(op, sys::ws_attachment_set(self.0, data)).map(|_| ())
    }

    /// When the host last answered this socket with the auto-response
    /// ([`Context::set_websocket_auto_response`]), in milliseconds since the Unix epoch; `None`
    /// if it never did (or the socket is not open).
    pub fn auto_response_time(&self) -> Result<Option<i64>> {
        let op = "ws_auto_response_time";
        let rc = sys::ws_auto_response_time(self.0);
        if rc == -Status::NotFound.code() {
            return Ok(None);
        }
        let n = check(op, rc)?;
        let b = read_staged(op, n)?;
        match codec::decode_alarm_time(&b) {
            Some(t) => Ok(Some(t)),
            None => Err(Error::host_msg(
                op,
                Status::InvalidArgument.code(),
                &format!("malformed result: {} bytes, not 8", b.len()),
            )),
        }
    }
}
