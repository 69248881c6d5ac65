//! HTTP requests and responses of fetch events.

use std::borrow::Cow;

use crate::quote::quote;
use crate::status::{Error, Result};

/// One HTTP header line. A header with several values appears several times.
///
/// The value is bytes: HTTP allows bytes that are not UTF-8 in header values, and the host
/// passes them on as they arrived. [`value_str`](Header::value_str) views it as a string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: Vec<u8>,
}

impl Header {
    /// The value as a string, or `None` when it is not UTF-8.
    pub fn value_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }
}

/// Header lines in the order they were received or added. Names from the host are in canonical
/// form (`Content-Type`); lookups ignore ASCII case.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    list: Vec<Header>,
}

impl Headers {
    pub fn new() -> Headers {
        Headers { list: Vec::new() }
    }

    /// The first value of the named header as a string; `None` when there is none or when that
    /// value is not UTF-8 (see [`get_bytes`](Self::get_bytes)).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The first value of the named header, as bytes.
    pub fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        self.list
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_slice())
    }

    /// Every value of the named header, in order, as bytes.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.list
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_slice())
    }

    /// Appends a header line.
    pub fn add(&mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) {
        self.list.push(Header {
            name: name.into(),
            value: value.into(),
        });
    }

    /// Replaces every line of the named header with one line (at the end).
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) {
        let name = name.into();
        self.del(&name);
        self.add(name, value);
    }

    /// Removes every line of the named header.
    pub fn del(&mut self, name: &str) {
        self.list.retain(|h| !h.name.eq_ignore_ascii_case(name));
    }

    /// The header lines, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Header> {
        self.list.iter()
    }

    /// The number of header lines.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = &'a Header;
    type IntoIter = std::slice::Iter<'a, Header>;
    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

impl From<Vec<Header>> for Headers {
    fn from(list: Vec<Header>) -> Headers {
        Headers { list }
    }
}

/// The HTTP request of a fetch event.
///
/// `path` and `query` arrive as the client sent them (the path is still percent-encoded, the
/// query is the raw query string; were either not UTF-8, its invalid bytes would become U+FFFD).
/// Header values and the body are bytes, untouched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// `"GET"`, `"POST"`, ...
    pub method: String,
    /// The part of the URL after `/<class>/<name>`, always starting with `/`.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// Canonical names; repeated headers appear repeatedly.
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of the named request header (name compared ignoring ASCII case) as a
    /// string; `None` when there is none or it is not UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The first value of the named request header, as bytes.
    pub fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.headers.get_bytes(name)
    }

    /// The first value of the named query parameter, percent-decoded (`+` is a space), as raw
    /// bytes; `None` when it is absent (`?a` and `?a=` are present with an empty value).
    pub fn query_param_bytes(&self, name: &str) -> Option<Vec<u8>> {
        let mut q = self.query.as_bytes();
        while !q.is_empty() {
            let (kv, rest) = cut(q, b'&');
            q = rest;
            let (k, v) = cut(kv, b'=');
            if k == name.as_bytes() || &*unescape(k) == name.as_bytes() {
                return Some(unescape(v).into_owned());
            }
        }
        None
    }

    /// The first value of the named query parameter, percent-decoded (`+` is a space); `None`
    /// when it is absent. Decoded bytes that are not UTF-8 become U+FFFD.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_param_bytes(name)
            .map(|v| match String::from_utf8(v) {
                Ok(s) => s,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            })
    }

    /// The named query parameter as a decimal integer (an optional sign, then digits): `default`
    /// when the parameter is absent or empty, an error when it is not an integer.
    pub fn query_int(&self, name: &str, default: i64) -> Result<i64> {
        let v = match self.query_param_bytes(name) {
            Some(v) if !v.is_empty() => v,
            _ => return Ok(default),
        };
        match std::str::from_utf8(&v)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
        {
            Some(n) => Ok(n),
            None => Err(Error::new(format!(
                "query parameter {}={} is not an integer",
                name,
                quote(&v)
            ))),
        }
    }
}

/// Splits at the first `sep`: (before, after), or (all, empty) when there is none.
fn cut(b: &[u8], sep: u8) -> (&[u8], &[u8]) {
    match b.iter().position(|&c| c == sep) {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &[]),
    }
}

fn unhex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` and `+` (query-string encoding); a malformed escape is kept as it is.
pub fn unescape(s: &[u8]) -> Cow<'_, [u8]> {
    if !s.iter().any(|&c| c == b'%' || c == b'+') {
        return Cow::Borrowed(s);
    }
    let mut b = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == b'+' {
            b.push(b' ');
        } else if c == b'%' && i + 2 < s.len() {
            match (unhex(s[i + 1]), unhex(s[i + 2])) {
                (Some(hi), Some(lo)) => {
                    b.push(hi << 4 | lo);
                    i += 2;
                }
                _ => b.push(c),
            }
        } else {
            b.push(c);
        }
        i += 1;
    }
    Cow::Owned(b)
}

/// The `Content-Type` of [`Response::text`].
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// Response limits (abi/ABI.md, "response").
pub const MAX_HEADER_SIZE: usize = 64 << 10;
pub const MAX_HEADER_COUNT: usize = 4096;
pub const MAX_BODY_SIZE: usize = 32 << 20;

/// What a fetch handler answers. The status must be 200–599; headers may total 64 KiB (at most
/// 4,096 lines) and the body 32 MiB: a response over a limit fails the event with a message
/// saying why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl Response {
    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response::bytes(status, body.into().into_bytes()).with_header("Content-Type", TEXT_PLAIN)
    }

    /// An `application/json` response with an already encoded body.
    pub fn json(status: u16, body: impl Into<String>) -> Response {
        Response::bytes(status, body.into().into_bytes())
            .with_header("Content-Type", "application/json")
    }

    /// A response with this body and no headers (add a `Content-Type` with
    /// [`set_header`](Self::set_header)).
    pub fn bytes(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: Headers::new(),
            body: body.into(),
        }
    }

    /// `204 No Content`, no headers, no body.
    pub fn no_content() -> Response {
        Response::bytes(204, Vec::new())
    }

    /// A 404 text response, `not found\n`.
    pub fn not_found() -> Response {
        Response::text(404, "not found\n")
    }

    /// A 405 text response, `method not allowed\n`, with an `Allow` header listing the allowed
    /// methods (`"GET, POST"`).
    pub fn method_not_allowed(allow: &str) -> Response {
        Response::text(405, "method not allowed\n").set_header("Allow", allow)
    }

    /// Replaces every line of the named header with one line; returns the response, for
    /// chaining.
    pub fn set_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Response {
        self.headers.set(name, value);
        self
    }

    /// Adds a header line (keeping existing ones of that name); returns the response, for
    /// chaining.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Response {
        self.headers.add(name, value);
        self
    }

    /// Why the host would refuse this response, or `None`.
    pub fn check(&self) -> Option<String> {
        if self.status < 200 || self.status > 599 {
            return Some(format!("status {} is not 200-599", self.status));
        }
        if self.headers.len() > MAX_HEADER_COUNT {
            return Some(format!("{} headers; the limit is 4096", self.headers.len()));
        }
        let total: usize = self
            .headers
            .iter()
            .map(|h| h.name.len() + h.value.len())
            .sum();
        if total > MAX_HEADER_SIZE {
            return Some(format!(
                "headers total {} bytes; the limit is 64 KiB",
                total
            ));
        }
        if self.body.len() > MAX_BODY_SIZE {
            return Some(format!(
                "body is {} bytes; the limit is 32 MiB",
                self.body.len()
            ));
        }
        None
    }
}
