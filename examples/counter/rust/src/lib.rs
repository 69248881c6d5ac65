//! Counter is the Durable Objects tutorial counter as a dowasm class. Every name is its own
//! object with its own value:
//!
//! ```text
//! POST /increment      -> the new value, as decimal text
//! POST /decrement      -> the new value
//! GET  /  (or /value)  -> the current value
//! ```
//!
//! Other paths answer 404, other methods 405.

use dowasm::{Context, Object, Request, Response, Result, Storage};

/// Counter keeps the value in memory, rebuilt from storage by the constructor, and writes every
/// change through to storage under the key "value".
struct Counter {
    store: Storage,
    value: i64,
}

impl Object for Counter {
    /// The constructor: it runs when the object is first used and every time it wakes (after
    /// eviction or a failed event), inside the first event's transaction.
    fn new(ctx: &Context) -> Result<Self> {
        let store = ctx.storage();
        let value = store.get_i64("value")?.unwrap_or(0); // 0 when the object is new
        Ok(Counter { store, value })
    }

    fn fetch(&mut self, req: Request) -> Result<Response> {
        match req.path.as_str() {
            "/increment" | "/decrement" => {
                if req.method != "POST" {
                    return Ok(Response::method_not_allowed("POST"));
                }
                let next = if req.path == "/decrement" {
                    self.value.wrapping_sub(1)
                } else {
                    self.value.wrapping_add(1)
                };
                // Write through. The response leaves only after this write is committed; if the
                // event fails instead, the host discards this instance and the next one reads
                // storage again.
                self.store.put_i64("value", next)?;
                self.value = next;
            }
            "/" | "/value" => {
                if req.method != "GET" && req.method != "HEAD" {
                    return Ok(Response::method_not_allowed("GET, HEAD"));
                }
            }
            _ => {
                return Ok(Response::text(
                    404,
                    "not found: try POST /increment, POST /decrement or GET /\n",
                ))
            }
        }
        Ok(Response::text(200, self.value.to_string()))
    }
}

dowasm::export!(Counter);
