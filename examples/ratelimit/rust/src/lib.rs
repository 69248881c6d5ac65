//! Ratelimit is a per-user sliding-window rate limiter. Each user is one object (the object's
//! name is the user) holding a log of that user's hits inside the window:
//!
//! ```text
//! POST /hit?limit=10&window=60  -> 200 {"allowed":true,"remaining":N}, or once over the limit
//!                                  429 {"allowed":false,"remaining":0,"retryAfter":S} with a
//!                                  Retry-After: S header (whole seconds, rounded up)
//! GET  /status?limit=10&window=60 -> the same answer (always 200) without counting a hit
//! ```
//!
//! GET /hit works too. limit is 1..1000 hits (default 10), window 1..86400 seconds (default 60).

use dowasm::{
    key_uint64, quote, uint64_key, Context, Level, ListOptions, Object, Request, Response, Result,
    Storage, MAX_BATCH,
};

/// Hits are stored under "t:" + 8-byte big-endian unix milliseconds + 4-byte big-endian
/// sequence number (for hits in the same millisecond), with an empty value. Keys sort by time,
/// so expired hits are a key range and the newest hits are the end of the range.
const HIT_PREFIX: &str = "t:";

fn hit_key(ms: i64, seq: u32) -> Vec<u8> {
    let mut k = uint64_key(HIT_PREFIX, ms as u64);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn parse_hit_key(k: &[u8]) -> (i64, u32) {
    let ms = key_uint64(k, HIT_PREFIX).unwrap_or(0) as i64;
    let mut seq = 0;
    if k.len() == HIT_PREFIX.len() + 12 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&k[HIT_PREFIX.len() + 8..]);
        seq = u32::from_be_bytes(b);
    }
    (ms, seq)
}

struct Limiter {
    ctx: Context,
    store: Storage,
}

impl Limiter {
    /// Deletes the hits at or before `cutoff` (unix ms), at most MAX_BATCH keys per call.
    fn expire(&self, cutoff: i64) -> Result<()> {
        let opts = ListOptions::new()
            .prefix(HIT_PREFIX)
            .end(hit_key(cutoff.wrapping_add(1), 0))
            .limit(MAX_BATCH as u32);
        loop {
            let old = self.store.list(&opts)?;
            if old.is_empty() {
                return Ok(());
            }
            let keys: Vec<Vec<u8>> = old.into_iter().map(|e| e.key).collect();
            self.store.delete_many(&keys)?;
        }
    }
}

impl Object for Limiter {
    fn new(ctx: &Context) -> Result<Self> {
        Ok(Limiter {
            ctx: *ctx,
            store: ctx.storage(),
        })
    }

    fn fetch(&mut self, req: Request) -> Result<Response> {
        let hit = match req.path.as_str() {
            "/hit" => {
                if req.method != "POST" && req.method != "GET" {
                    return Ok(Response::method_not_allowed("GET, POST"));
                }
                true
            }
            "/status" => {
                if req.method != "GET" {
                    return Ok(Response::method_not_allowed("GET"));
                }
                false
            }
            _ => {
                return Ok(Response::text(
                    404,
                    "not found: try POST /hit or GET /status\n",
                ))
            }
        };
        let (limit, window) = match (req.query_int("limit", 10), req.query_int("window", 60)) {
            (Ok(l), Ok(w)) if (1..=1000).contains(&l) && (1..=86400).contains(&w) => (l, w),
            _ => {
                return Ok(Response::text(
                    400,
                    "limit must be 1..1000 hits and window 1..86400 seconds\n",
                ))
            }
        };
        let window_ms = window * 1000;
        let now = dowasm::now(); // the WASI wall clock

        // The window is (now-window, now]: forget older hits, then look at the newest `limit` ones.
        self.expire(now - window_ms)?;
        let recent = self.store.list(
            &ListOptions::new()
                .prefix(HIT_PREFIX)
                .reverse(true)
                .limit(limit as u32),
        )?;

        if recent.len() as i64 >= limit {
            // One more hit is allowed once the limit-th newest hit leaves the window.
            let (oldest, _) = parse_hit_key(&recent[limit as usize - 1].key);
            let wait = ((oldest + window_ms - now + 999) / 1000).max(1);
            let body = format!(r#"{{"allowed":false,"remaining":0,"retryAfter":{}}}"#, wait);
            if !hit {
                return Ok(Response::json(200, body));
            }
            if let Some(user) = self.ctx.name() {
                self.ctx
                    .log(Level::Debug, &format!("rate limited {}", quote(&user)));
            }
            return Ok(Response::json(429, body).set_header("Retry-After", wait.to_string()));
        }

        let mut remaining = limit - recent.len() as i64;
        if hit {
            let (mut ms, mut seq) = (now, 0u32);
            if let Some(newest) = recent.first() {
                // Keep keys unique and increasing even if the clock stands still or steps back.
                let (last_ms, last_seq) = parse_hit_key(&newest.key);
                if last_ms >= ms {
                    ms = last_ms;
                    seq = last_seq.wrapping_add(1);
                }
            }
            self.store.put(hit_key(ms, seq), b"")?;
            remaining -= 1;
        }
        Ok(Response::json(
            200,
            format!(r#"{{"allowed":true,"remaining":{}}}"#, remaining),
        ))
    }
}

dowasm::export!(Limiter);
