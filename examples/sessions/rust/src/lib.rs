//! Sessions keeps expiring sessions. Each user is one object (the name in the URL) holding that
//! user's sessions; the object's alarm deletes them once they expire, even when nobody asks:
//!
//! ```text
//! POST   /sessions?ttl=S   -> 201 "<id>\n": a new session holding the body (at most 1024
//!                             bytes) that expires in S seconds (1..86400, default 60)
//! GET    /sessions         -> the live sessions as "<id> <expiresAt>\n" lines, in id order
//! GET    /sessions/<id>    -> the session's data; 404 once it expired
//! DELETE /sessions/<id>    -> 204, or 404 when there is no such session
//! GET    /alarm            -> when the alarm fires next (unix ms), or "none"
//! ```
//!
//! Times are unix milliseconds from `dowasm::now()`, read afresh in every event.

use dowasm::{
    padded_key, AlarmInfo, Context, Level, ListOptions, Object, Request, Response, Result, Storage,
    MAX_BATCH, TEXT_PLAIN,
};

/// The next session id, as decimal text (absent: 1).
const NEXT_KEY: &str = "next";
/// session:<id, zero-padded to 20 digits> -> "<expiresAt> <data>"
const SESSION_PREFIX: &str = "session:";
/// Session data, in bytes.
const MAX_DATA: usize = 1024;

/// One stored session, without its data: its key and when it expires (unix ms).
struct Stored {
    key: Vec<u8>,
    expires_at: i64,
}

/// Splits a stored session value, "<expiresAt> <data>", into its parts.
fn parse_value(v: &[u8]) -> Option<(i64, &[u8])> {
    let sp = v.iter().position(|&c| c == b' ')?;
    let t = std::str::from_utf8(&v[..sp]).ok()?.parse().ok()?;
    Some((t, &v[sp + 1..]))
}

/// The id in a session key (the 20 digits after the prefix).
fn key_id(key: &[u8]) -> Option<u64> {
    std::str::from_utf8(key.get(SESSION_PREFIX.len()..)?)
        .ok()?
        .parse()
        .ok()
}

/// A session id in a path: a decimal integer >= 1, digits only, no leading zeros.
fn parse_id(s: &str) -> Option<u64> {
    if s.is_empty() || s.starts_with('0') || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

struct Sessions {
    ctx: Context,
    store: Storage,
}

impl Sessions {
    /// Every stored session (expired or not) in id order, read a page at a time.
    fn all(&self) -> Result<Vec<Stored>> {
        let mut out = Vec::new();
        let mut opts = ListOptions::new()
            .prefix(SESSION_PREFIX)
            .limit(MAX_BATCH as u32);
        loop {
            let page = self.store.list(&opts)?;
            let n = page.len();
            for e in page {
                let expires_at = match parse_value(&e.value) {
                    Some((t, _)) => t,
                    None => return Err(malformed(&e.key)),
                };
                out.push(Stored {
                    key: e.key,
                    expires_at,
                });
            }
            match out.last() {
                Some(last) if n == MAX_BATCH => opts = opts.start_after(&last.key),
                _ => return Ok(out),
            }
        }
    }

    fn create(&self, req: &Request) -> Result<Response> {
        let ttl = match req.query_int("ttl", 60) {
            Ok(t) if (1..=86400).contains(&t) => t,
            _ => return Ok(Response::text(400, "ttl must be 1..86400 seconds\n")),
        };
        if req.body.len() > MAX_DATA {
            return Ok(Response::text(400, "data longer than 1024 bytes\n"));
        }
        let expires_at = dowasm::now() + ttl * 1000;
        let id = self.store.get_i64(NEXT_KEY)?.unwrap_or(1) as u64;
        let mut value = expires_at.to_string().into_bytes();
        value.push(b' ');
        value.extend_from_slice(&req.body);
        // Both writes in one call: kept together or not at all (and the whole event's writes,
        // the alarm included, commit before the answer leaves).
        self.store.put_many(&[
            (
                NEXT_KEY.as_bytes().to_vec(),
                (id + 1).to_string().into_bytes(),
            ),
            (padded_key(SESSION_PREFIX, id), value),
        ])?;
        // The alarm stays at the earliest expiry.
        match self.store.get_alarm()? {
            Some(t) if t <= expires_at => {}
            _ => self.store.set_alarm(expires_at)?,
        }
        Ok(Response::text(201, format!("{}\n", id)))
    }

    fn list(&self) -> Result<Response> {
        let now = dowasm::now();
        let mut body = String::new();
        for s in self.all()? {
            if s.expires_at > now {
                let id = key_id(&s.key).ok_or_else(|| malformed(&s.key))?;
                body.push_str(&format!("{} {}\n", id, s.expires_at));
            }
        }
        Ok(Response::text(200, body))
    }

    fn get(&self, id: u64) -> Result<Response> {
        let key = padded_key(SESSION_PREFIX, id);
        if let Some(v) = self.store.get(&key)? {
            let (expires_at, data) = parse_value(&v).ok_or_else(|| malformed(&key))?;
            // Expired is gone, even before the alarm deleted it.
            if expires_at > dowasm::now() {
                return Ok(Response::bytes(200, data).set_header("Content-Type", TEXT_PLAIN));
            }
        }
        Ok(no_such_session())
    }

    fn delete(&self, id: u64) -> Result<Response> {
        Ok(if self.store.delete(padded_key(SESSION_PREFIX, id))? {
            Response::no_content()
        } else {
            no_such_session()
        })
    }
}

fn no_such_session() -> Response {
    Response::text(404, "no such session\n")
}

fn malformed(key: &[u8]) -> dowasm::Error {
    format!("malformed session under {}", dowasm::quote(key)).into()
}

impl Object for Sessions {
    fn new(ctx: &Context) -> Result<Self> {
        Ok(Sessions {
            ctx: *ctx,
            store: ctx.storage(),
        })
    }

    fn fetch(&mut self, req: Request) -> Result<Response> {
        let path = req.path.as_str();
        if path == "/sessions" {
            return match req.method.as_str() {
                "GET" => self.list(),
                "POST" => self.create(&req),
                _ => Ok(Response::method_not_allowed("GET, POST")),
            };
        }
        if let Some(num) = path.strip_prefix("/sessions/") {
            if req.method != "GET" && req.method != "DELETE" {
                return Ok(Response::method_not_allowed("GET, DELETE"));
            }
            let id = match parse_id(num) {
                Some(id) => id,
                None => return Ok(Response::text(400, "not a session id\n")),
            };
            return if req.method == "GET" {
                self.get(id)
            } else {
                self.delete(id)
            };
        }
        if path == "/alarm" {
            if req.method != "GET" {
                return Ok(Response::method_not_allowed("GET"));
            }
            return Ok(Response::text(
                200,
                match self.store.get_alarm()? {
                    Some(t) => format!("{}\n", t),
                    None => "none\n".to_string(),
                },
            ));
        }
        Ok(Response::not_found())
    }

    /// Deletes the expired sessions and sets the alarm to the next expiry, if any. The alarm
    /// may fire late, or twice (delivery is at least once): each run only looks at the clock
    /// and at what is stored, so that is harmless.
    fn alarm(&mut self, _info: AlarmInfo) -> Result<()> {
        let now = dowasm::now();
        let mut expired = Vec::new();
        let mut next: Option<i64> = None;
        for s in self.all()? {
            if s.expires_at <= now {
                expired.push(s.key);
            } else if next.map_or(true, |t| s.expires_at < t) {
                next = Some(s.expires_at);
            }
        }
        let mut deleted = 0;
        for keys in expired.chunks(MAX_BATCH) {
            deleted += self.store.delete_many(keys)?;
        }
        if let Some(t) = next {
            self.store.set_alarm(t)?;
        }
        self.ctx.log(
            Level::Info,
            &format!("deleted {} expired sessions", deleted),
        );
        Ok(())
    }
}

dowasm::export!(Sessions);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_values() {
        assert_eq!(parse_id("1"), Some(1));
        assert_eq!(parse_id("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "0",
            "01",
            "+1",
            "-1",
            "1x",
            " 1",
            "18446744073709551616",
        ] {
            assert_eq!(parse_id(bad), None, "{:?}", bad);
        }
        assert_eq!(key_id(&padded_key(SESSION_PREFIX, 42)), Some(42));
        assert_eq!(
            parse_value(b"1700000000000 a b"),
            Some((1_700_000_000_000, &b"a b"[..]))
        );
        assert_eq!(parse_value(b"5 "), Some((5, &b""[..])));
        assert_eq!(parse_value(b"5"), None);
        assert_eq!(parse_value(b"x y"), None);
    }
}
