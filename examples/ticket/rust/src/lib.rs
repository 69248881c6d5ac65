//! Ticket hands out numbered tickets: 1, 2, 3, ... never a duplicate and never a gap, however
//! many clients claim at once. One object per event (the name in the URL):
//!
//! ```text
//! POST /claim              -> the new ticket number; the X-Client header (or else the body)
//!                             is recorded as the holder
//! GET  /                   -> how many tickets were issued
//! GET  /tickets?limit=N    -> issued tickets as "number holder" lines, in order
//!                             (&after=M continues after ticket M)
//! GET  /tickets/<number>   -> the holder of one ticket
//! ```

use dowasm::{
    padded_key, Context, ListOptions, Object, Request, Response, Result, Storage, TEXT_PLAIN,
};

/// The last number issued, as decimal text.
const NEXT_KEY: &str = "next";
/// ticket:<number, zero-padded to 20 digits> -> holder
const TICKET_PREFIX: &str = "ticket:";

struct Ticket {
    store: Storage,
}

impl Ticket {
    /// Issues the next number. The read of "next" and both writes form one explicit
    /// transaction: they are kept together or not at all. Events run one at a time, so no other
    /// claim can interleave, and the event's writes commit before the number is sent.
    fn claim(&self, holder: &[u8]) -> Result<u64> {
        self.store.transaction(|tx| {
            let last = tx.get_i64(NEXT_KEY)?.unwrap_or(0);
            let n = (last as u64).wrapping_add(1);
            tx.put_i64(NEXT_KEY, n as i64)?;
            tx.put(padded_key(TICKET_PREFIX, n), holder)?;
            Ok(n)
        })
    }
}

impl Object for Ticket {
    fn new(ctx: &Context) -> Result<Self> {
        Ok(Ticket {
            store: ctx.storage(),
        })
    }

    fn fetch(&mut self, req: Request) -> Result<Response> {
        let path = req.path.as_str();
        if path == "/claim" {
            if req.method != "POST" {
                return Ok(Response::method_not_allowed("POST"));
            }
            let header = req.header_bytes("X-Client").unwrap_or(b"");
            let raw = if header.is_empty() {
                trim_space(&req.body)
            } else {
                header
            };
            let mut holder = join_fields(raw); // one line in the listing
            if holder.is_empty() {
                holder = b"anonymous".to_vec();
            }
            if holder.len() > 1024 {
                return Ok(Response::text(400, "holder longer than 1024 bytes\n"));
            }
            let n = self.claim(&holder)?;
            return Ok(Response::text(200, n.to_string()));
        }
        if path == "/" {
            if req.method != "GET" {
                return Ok(Response::method_not_allowed("GET"));
            }
            let n = self.store.get_i64(NEXT_KEY)?.unwrap_or(0);
            return Ok(Response::text(200, n.to_string()));
        }
        if path == "/tickets" {
            if req.method != "GET" {
                return Ok(Response::method_not_allowed("GET"));
            }
            let (limit, after) = match (req.query_int("limit", 100), req.query_int("after", 0)) {
                (Ok(l), Ok(a)) if (1..=1000).contains(&l) && a >= 0 => (l, a),
                _ => {
                    return Ok(Response::text(
                        400,
                        "limit must be 1..1000 and after a ticket number\n",
                    ))
                }
            };
            let mut opts = ListOptions::new().prefix(TICKET_PREFIX).limit(limit as u32);
            if after > 0 {
                opts = opts.start_after(padded_key(TICKET_PREFIX, after as u64));
            }
            let mut b = Vec::new();
            for e in self.store.list(&opts)? {
                let digits = &e.key[TICKET_PREFIX.len()..];
                let first = digits
                    .iter()
                    .position(|&c| c != b'0')
                    .unwrap_or(digits.len());
                b.extend_from_slice(&digits[first..]);
                b.push(b' ');
                b.extend_from_slice(&e.value);
                b.push(b'\n');
            }
            return Ok(Response::bytes(200, b).set_header("Content-Type", TEXT_PLAIN));
        }
        if let Some(num) = path.strip_prefix("/tickets/") {
            if req.method != "GET" {
                return Ok(Response::method_not_allowed("GET"));
            }
            let n = match parse_u64(num) {
                Some(n) if n != 0 => n,
                _ => return Ok(Response::text(400, "not a ticket number\n")),
            };
            return Ok(match self.store.get(padded_key(TICKET_PREFIX, n))? {
                // The holder as stored, byte for byte.
                Some(holder) => Response::bytes(200, holder).set_header("Content-Type", TEXT_PLAIN),
                None => Response::text(404, "no such ticket\n"),
            });
        }
        Ok(Response::text(
            404,
            "not found: try POST /claim, GET /, GET /tickets or GET /tickets/1\n",
        ))
    }
}

/// An unsigned decimal number: digits only (no sign), at most u64::MAX.
fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Decodes the character at the start of `b`: (is it white space, its length). Bytes that are
/// not UTF-8 count as one non-space character each (as Go's strings functions treat them), so
/// holders are kept byte for byte.
fn next_char(b: &[u8]) -> (bool, usize) {
    let width = match b[0] {
        0x00..=0x7f => {
            return (
                matches!(b[0], b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' '),
                1,
            )
        }
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => return (false, 1),
    };
    match b.get(..width).map(std::str::from_utf8) {
        Some(Ok(s)) => (s.chars().all(char::is_whitespace), width),
        _ => (false, 1),
    }
}

/// `b` without leading and trailing white space (Unicode White_Space).
fn trim_space(mut b: &[u8]) -> &[u8] {
    while !b.is_empty() {
        let (space, n) = next_char(b);
        if !space {
            break;
        }
        b = &b[n..];
    }
    let mut end = b.len();
    let mut i = 0;
    while i < b.len() {
        let (space, n) = next_char(&b[i..]);
        if !space {
            end = i + n;
        }
        i += n;
    }
    &b[..end]
}

/// The white-space-separated fields of `b` joined with single spaces.
fn join_fields(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let mut pending_space = false;
    while i < b.len() {
        let (space, n) = next_char(&b[i..]);
        if space {
            pending_space = !out.is_empty();
        } else {
            if pending_space {
                out.push(b' ');
                pending_space = false;
            }
            out.extend_from_slice(&b[i..i + n]);
        }
        i += n;
    }
    out
}

dowasm::export!(Ticket);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_normalisation() {
        assert_eq!(join_fields(trim_space(b"  bob \n  smith \n")), b"bob smith");
        assert_eq!(join_fields(b"\xc2\xa0a\xe3\x80\x80b\xc2\x85"), b"a b");
        assert_eq!(join_fields(b"a\xff \xe2\x82 b"), b"a\xff \xe2\x82 b");
        assert_eq!(trim_space(b" \t\n "), b"");
        assert_eq!(parse_u64("+1"), None);
        assert_eq!(parse_u64("007"), Some(7));
        assert_eq!(parse_u64("18446744073709551616"), None);
    }
}
