//! Shards is a sharded counter built from calls between objects. The object a client addresses
//! is the front; its four shards are objects of the same class named `<front name>.shard0` ...
//! `<front name>.shard3`:
//!
//! ```text
//! POST /increment  -> "<i> <value>": the front picks shard i round robin and calls its "add"
//! GET  /total      -> the sum of the four shards (an RPC "get" to each)
//! GET  /shards     -> "<i> <value>" per shard, each fetched with an HTTP request (GET /value)
//! GET  /value      -> this object's own shard value
//! ```
//!
//! Every object answers the RPC methods "add" (argument: a decimal amount; returns the new value)
//! and "get" (returns the value). A failed call answers 502 with the error's text.

use dowasm::{Context, Error, Object, Request, Response, Result, Storage, Stub, TEXT_PLAIN};

const CLASS: &str = "shards";
const SHARDS: i64 = 4;
/// In the front: how many increments were sent, as decimal text.
const NEXT_KEY: &str = "next";
/// In a shard: its value, as decimal text.
const VALUE_KEY: &str = "value";

struct Shards {
    ctx: Context,
    store: Storage,
}

/// Answers a failed call: 502 with the error's text (the callee's message included).
fn call_failed(e: Error) -> Response {
    Response::text(502, format!("{}\n", e))
}

impl Shards {
    /// Shard `i` of the front named `front`: the object `<front>.shard<i>` of this class.
    fn shard(&self, front: &str, i: i64) -> Stub {
        self.ctx.stub(CLASS, &format!("{}.shard{}", front, i))
    }

    fn value(&self) -> Result<i64> {
        Ok(self.store.get_i64(VALUE_KEY)?.unwrap_or(0))
    }

    fn increment(&self, front: &str) -> Result<Response> {
        let next = self.store.get_i64(NEXT_KEY)?.unwrap_or(0);
        let i = next % SHARDS;
        self.store.put_i64(NEXT_KEY, next.wrapping_add(1))?;
        // The shard adds in its own event and transaction; its new value arrives after its
        // commit.
        match self.shard(front, i).call("add", b"1") {
            Ok(v) => {
                let mut body = format!("{} ", i).into_bytes();
                body.extend_from_slice(&v);
                body.push(b'\n');
                Ok(text(body))
            }
            Err(e) => Ok(call_failed(e)),
        }
    }

    fn total(&self, front: &str) -> Result<Response> {
        let mut sum: i64 = 0;
        for i in 0..SHARDS {
            let v = match self.shard(front, i).call("get", b"") {
                Ok(v) => v,
                Err(e) => return Ok(call_failed(e)),
            };
            match parse_i64(&v) {
                Some(n) => sum = sum.wrapping_add(n),
                None => {
                    return Err(Error::new(format!(
                        "shard {} answered get with {}",
                        i,
                        dowasm::quote(&v)
                    )))
                }
            }
        }
        Ok(Response::text(200, format!("{}\n", sum)))
    }

    fn shards(&self, front: &str) -> Result<Response> {
        let req = Request {
            method: "GET".into(),
            path: "/value".into(),
            ..Request::default()
        };
        let mut body = Vec::new();
        for i in 0..SHARDS {
            let resp = match self.shard(front, i).fetch(&req) {
                Ok(r) => r,
                Err(e) => return Ok(call_failed(e)),
            };
            let v = resp.body.strip_suffix(b"\n").unwrap_or(&resp.body);
            body.extend_from_slice(format!("{} ", i).as_bytes());
            body.extend_from_slice(v);
            body.push(b'\n');
        }
        Ok(text(body))
    }
}

/// A 200 `text/plain; charset=utf-8` response with a body of bytes (a callee's answer need not
/// be UTF-8).
fn text(body: Vec<u8>) -> Response {
    Response::bytes(200, body).with_header("Content-Type", TEXT_PLAIN)
}

/// A decimal integer (an optional sign, then digits), as Go's strconv.ParseInt.
fn parse_i64(b: &[u8]) -> Option<i64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

impl Object for Shards {
    fn new(ctx: &Context) -> Result<Self> {
        Ok(Shards {
            ctx: *ctx,
            store: ctx.storage(),
        })
    }

    fn fetch(&mut self, req: Request) -> Result<Response> {
        let allow = match req.path.as_str() {
            "/increment" => "POST",
            "/total" | "/shards" | "/value" => "GET",
            _ => return Ok(Response::not_found()),
        };
        if req.method != allow {
            return Ok(Response::method_not_allowed(allow));
        }
        if req.path == "/value" {
            return Ok(Response::text(200, format!("{}\n", self.value()?)));
        }
        let front = match self.ctx.name() {
            Some(n) => n,
            None => return Ok(Response::text(400, "a front needs a name\n")),
        };
        match req.path.as_str() {
            "/increment" => self.increment(&front),
            "/total" => self.total(&front),
            _ => self.shards(&front),
        }
    }

    /// Answers calls from other objects (here: from the front, to its shards).
    fn rpc(&mut self, method: &str, arg: Vec<u8>) -> Result<Vec<u8>> {
        match method {
            "add" => {
                let amount = parse_i64(&arg).ok_or("add: bad amount")?;
                let v = self.value()?.wrapping_add(amount);
                self.store.put_i64(VALUE_KEY, v)?;
                Ok(v.to_string().into_bytes())
            }
            "get" => Ok(self.value()?.to_string().into_bytes()),
            m => Err(Error::new(format!("unknown method {}", m))),
        }
    }
}

dowasm::export!(Shards);
