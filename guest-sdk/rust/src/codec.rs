//! The byte encodings of abi/ABI.md ("Encodings"): little-endian `u32` integers, and `bytes` as a
//! `u32` length followed by the data. The SDK uses these functions for every host call; they are
//! public so that tests and tools can build and check the bytes that cross the boundary.

use crate::http::{Headers, Request, Response, MAX_BODY_SIZE, MAX_HEADER_COUNT, MAX_HEADER_SIZE};
use crate::storage::{Entry, ListOptions};

/// Appends a little-endian `u32`.
pub fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}

/// Appends a `bytes` field: the length as a `u32`, then the data.
pub fn put_bytes(b: &mut Vec<u8>, v: &[u8]) {
    put_u32(b, v.len() as u32);
    b.extend_from_slice(v);
}

/// Consumes encoded fields; after the first failure every read returns zero or empty and the
/// reader stays bad.
#[derive(Debug)]
pub struct Reader<'a> {
    b: &'a [u8],
    bad: bool,
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8]) -> Reader<'a> {
        Reader { b, bad: false }
    }

    pub fn u32(&mut self) -> u32 {
        if self.bad || self.b.len() < 4 {
            self.bad = true;
            return 0;
        }
        let v = u32::from_le_bytes([self.b[0], self.b[1], self.b[2], self.b[3]]);
        self.b = &self.b[4..];
        v
    }

    pub fn bytes(&mut self) -> &'a [u8] {
        let n = self.u32() as usize;
        if self.bad || n > self.b.len() {
            self.bad = true;
            return &[];
        }
        let (v, rest) = self.b.split_at(n);
        self.b = rest;
        v
    }

    /// Reads an element count and checks that the rest of the input can hold that many elements
    /// of at least `min_size` bytes each, so a corrupt count never drives a large allocation.
    pub fn count(&mut self, min_size: usize) -> usize {
        let n = self.u32() as u64;
        if self.bad || n * min_size as u64 > self.b.len() as u64 {
            self.bad = true;
            return 0;
        }
        n as usize
    }

    /// Whether the input was consumed exactly, without a failure.
    pub fn done(&self) -> bool {
        !self.bad && self.b.is_empty()
    }
}

/// A string field; bytes that are not UTF-8 are replaced with U+FFFD.
pub(crate) fn string(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => String::from_utf8_lossy(b).into_owned(),
    }
}

/// Encodes a *request* (the host's side of `dowasm_fetch`; used by tests).
pub fn encode_request(r: &Request) -> Vec<u8> {
    let mut b = Vec::new();
    put_bytes(&mut b, r.method.as_bytes());
    put_bytes(&mut b, r.path.as_bytes());
    put_bytes(&mut b, r.query.as_bytes());
    put_u32(&mut b, r.headers.len() as u32);
    for h in r.headers.iter() {
        put_bytes(&mut b, h.name.as_bytes());
        put_bytes(&mut b, &h.value);
    }
    put_bytes(&mut b, &r.body);
    b
}

/// Decodes a *request*; `None` when it is malformed. Header values and the body stay bytes;
/// method, path, query and header names that are not UTF-8 are decoded with U+FFFD.
pub fn decode_request(b: &[u8]) -> Option<Request> {
    let mut r = Reader::new(b);
    let method = string(r.bytes());
    let path = string(r.bytes());
    let query = string(r.bytes());
    let n = r.count(8);
    let mut headers = Headers::new();
    for _ in 0..n {
        let name = string(r.bytes());
        let value = r.bytes().to_vec();
        headers.add(name, value);
    }
    let body = r.bytes().to_vec();
    if !r.done() {
        return None;
    }
    Some(Request {
        method,
        path,
        query,
        headers,
        body,
    })
}

/// Encodes a *response* (status, headers, body).
pub fn encode_response(r: &Response) -> Vec<u8> {
    let mut size = 12 + r.body.len();
    for h in r.headers.iter() {
        size += 8 + h.name.len() + h.value.len();
    }
    let mut b = Vec::with_capacity(size);
    put_u32(&mut b, r.status as u32);
    put_u32(&mut b, r.headers.len() as u32);
    for h in r.headers.iter() {
        put_bytes(&mut b, h.name.as_bytes());
        put_bytes(&mut b, &h.value);
    }
    put_bytes(&mut b, &r.body);
    b
}

/// Decodes a *response* as `call_fetch` stages it (the inverse of [`encode_response`]); `None`
/// when it is malformed or outside the response limits (status 200–599, at most 4,096 headers
/// totalling 64 KiB, a body of at most 32 MiB), as the host's own decoding.
pub fn decode_response(b: &[u8]) -> Option<Response> {
    let mut r = Reader::new(b);
    let status = r.u32();
    let n = r.count(8);
    if n > MAX_HEADER_COUNT {
        return None;
    }
    let mut headers = Headers::new();
    let mut total = 0;
    for _ in 0..n {
        let name = r.bytes();
        let value = r.bytes();
        total += name.len() + value.len();
        headers.add(string(name), value.to_vec());
    }
    let body = r.bytes();
    if !r.done()
        || !(200..=599).contains(&status)
        || total > MAX_HEADER_SIZE
        || body.len() > MAX_BODY_SIZE
    {
        return None;
    }
    Some(Response {
        status: status as u16,
        headers,
        body: body.to_vec(),
    })
}

/// The kinds of the call *target* encoding.
pub mod target_kind {
    /// `value` is a name: the object whose ID derives from it.
    pub const NAME: u32 = 0;
    /// `value` is an object ID in hex, as minted by the class.
    pub const ID: u32 = 1;
}

/// Encodes a call *target* (`call_fetch`, `call_rpc`): `bytes class`, `u32 kind`, `bytes value`.
pub fn encode_target(class: &[u8], kind: u32, value: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(12 + class.len() + value.len());
    put_bytes(&mut b, class);
    put_u32(&mut b, kind);
    put_bytes(&mut b, value);
    b
}

/// Decodes a call *target* into (class, kind, value); `None` when it is malformed (the host's
/// side, used by tests). The kind is not checked.
pub fn decode_target(b: &[u8]) -> Option<(Vec<u8>, u32, Vec<u8>)> {
    let mut r = Reader::new(b);
    let class = r.bytes().to_vec();
    let kind = r.u32();
    let value = r.bytes().to_vec();
    if r.done() {
        Some((class, kind, value))
    } else {
        None
    }
}

/// Encodes a *key list*.
pub fn encode_key_list<K: AsRef<[u8]>>(keys: &[K]) -> Vec<u8> {
    let mut b = Vec::with_capacity(4 + keys.iter().map(|k| 4 + k.as_ref().len()).sum::<usize>());
    put_u32(&mut b, keys.len() as u32);
    for k in keys {
        put_bytes(&mut b, k.as_ref());
    }
    b
}

/// Decodes a *key list* (as `ws_tags` stages a socket's tags); `None` when it is malformed.
pub fn decode_key_list(b: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut r = Reader::new(b);
    let n = r.count(4);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(r.bytes().to_vec());
    }
    if r.done() {
        Some(out)
    } else {
        None
    }
}

/// Encodes a *socket list*: `u32 count`, then the socket IDs, each a `u32` (the host's side of
/// `ws_list`; used by tests).
pub fn encode_socket_list(ids: &[u32]) -> Vec<u8> {
    let mut b = Vec::with_capacity(4 + 4 * ids.len());
    put_u32(&mut b, ids.len() as u32);
    for &id in ids {
        put_u32(&mut b, id);
    }
    b
}

/// Decodes a *socket list* as `ws_list` stages it; `None` when it is malformed.
pub fn decode_socket_list(b: &[u8]) -> Option<Vec<u32>> {
    let mut r = Reader::new(b);
    let n = r.count(4);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(r.u32());
    }
    if r.done() {
        Some(out)
    } else {
        None
    }
}

/// The message kinds of `ws_send` and `dowasm_ws_message`.
pub mod ws_kind {
    /// A text message (UTF-8 expected, not checked by the host).
    pub const TEXT: u32 = 1;
    /// A binary message.
    pub const BINARY: u32 = 2;
}

/// Encodes an *entry list* from (key, value) pairs.
pub fn encode_entry_list<K: AsRef<[u8]>, V: AsRef<[u8]>>(entries: &[(K, V)]) -> Vec<u8> {
    let size = entries
        .iter()
        .map(|(k, v)| 8 + k.as_ref().len() + v.as_ref().len())
        .sum::<usize>();
    let mut b = Vec::with_capacity(4 + size);
    put_u32(&mut b, entries.len() as u32);
    for (k, v) in entries {
        put_bytes(&mut b, k.as_ref());
        put_bytes(&mut b, v.as_ref());
    }
    b
}

/// Decodes an *entry list*; `None` when it is malformed.
pub fn decode_entry_list(b: &[u8]) -> Option<Vec<Entry>> {
    let mut r = Reader::new(b);
    let n = r.count(8);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let key = r.bytes().to_vec();
        let value = r.bytes().to_vec();
        out.push(Entry { key, value });
    }
    if r.done() {
        Some(out)
    } else {
        None
    }
}

/// Decodes a *batch get result*: one `Some(value)` or `None` per requested key, in request
/// order; `None` when it is malformed.
pub fn decode_batch_get(b: &[u8]) -> Option<Vec<Option<Vec<u8>>>> {
    let mut r = Reader::new(b);
    let n = r.count(8);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let found = r.u32() == 1;
        let v = r.bytes();
        out.push(if found { Some(v.to_vec()) } else { None });
    }
    if r.done() {
        Some(out)
    } else {
        None
    }
}

/// Encodes an alarm time as `alarm_get` stages it: 8 bytes, a little-endian `i64` (milliseconds
/// since the Unix epoch; the host's side, used by tests).
pub fn encode_alarm_time(time_ms: i64) -> [u8; 8] {
    time_ms.to_le_bytes()
}

/// Decodes the alarm time staged by `alarm_get`; `None` unless it is exactly 8 bytes.
pub fn decode_alarm_time(b: &[u8]) -> Option<i64> {
    let mut t = [0u8; 8];
    if b.len() != t.len() {
        return None;
    }
    t.copy_from_slice(b);
    Some(i64::from_le_bytes(t))
}

/// The flags of the *list options* encoding.
pub mod list_flags {
    pub const REVERSE: u32 = 1;
    pub const START: u32 = 2;
    pub const START_AFTER: u32 = 4;
    pub const END: u32 = 8;
    pub const PREFIX: u32 = 16;
}

/// Encodes *list options*.
pub fn encode_list_options(o: &ListOptions) -> Vec<u8> {
    use list_flags::*;
    let mut flags = 0;
    if o.reverse {
        flags |= REVERSE;
    }
    if o.start.is_some() {
        flags |= START;
    }
    if o.start_after.is_some() {
        flags |= START_AFTER;
    }
    if o.end.is_some() {
        flags |= END;
    }
    if o.prefix.is_some() {
        flags |= PREFIX;
    }
    let mut b = Vec::new();
    put_u32(&mut b, flags);
    put_u32(&mut b, o.limit);
    for f in [&o.start, &o.start_after, &o.end, &o.prefix]
        .iter()
        .copied()
        .flatten()
    {
        put_bytes(&mut b, f);
    }
    b
}
