//! Rooms is a room registry built from calls between objects. The object a client addresses is
//! the registry; each room is an object of the same class named `<registry name>.room.<room>`,
//! which keeps its own members:
//!
//! ```text
//! POST /rooms/<room>/join?member=<m>   -> the room's member count, after the room's "join"
//! POST /rooms/<room>/leave?member=<m>  -> the room's member count, after the room's "leave"
//! GET  /rooms                          -> "<room> <count>" per room, asking each room ("count")
//! GET  /members                        -> this object's own members, one per line
//! ```
//!
//! Room and member names are 1 to 64 characters from [a-z0-9-]. A failed call answers 502 with
//! the error's text.

use dowasm::{
    Context, Error, ListOptions, Object, Request, Response, Result, Storage, Stub, TEXT_PLAIN,
};

const CLASS: &str = "rooms";
/// In the registry: room:<room> -> empty, one per room with members.
const ROOM_PREFIX: &str = "room:";
/// In a room: member:<m> -> empty, one per member.
const MEMBER_PREFIX: &str = "member:";

struct Rooms {
    ctx: Context,
    store: Storage,
}

/// Whether `s` is a room or member name: 1 to 64 characters from [a-z0-9-].
fn valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// Answers a failed call: 502 with the error's text (the callee's message included).
fn call_failed(e: Error) -> Response {
    Response::text(502, format!("{}\n", e))
}

/// Answers a join, leave or listing on a registry addressed by ID: without a name, its rooms
/// cannot be named after it.
fn no_name() -> Response {
    Response::text(400, "a registry needs a name\n")
}

/// A 200 `text/plain; charset=utf-8` response with a body of bytes (names and counts as they
/// were stored or answered).
fn text(body: Vec<u8>) -> Response {
    Response::bytes(200, body).with_header("Content-Type", TEXT_PLAIN)
}

impl Rooms {
    /// The registry's room: the object `<registry>.room.<room>` of this class.
    fn room(&self, registry: &str, room: &str) -> Stub {
        self.ctx.stub(CLASS, &format!("{}.room.{}", registry, room))
    }

    /// The keys under `prefix`, in order, without the prefix.
    fn names(&self, prefix: &str) -> Result<Vec<Vec<u8>>> {
        let entries = self.store.list(&ListOptions::new().prefix(prefix))?;
        Ok(entries
            .into_iter()
            .map(|e| e.key[prefix.len()..].to_vec())
            .collect())
    }

    /// The number of members of this room, as decimal text.
    fn count(&self) -> Result<Vec<u8>> {
        Ok(self.names(MEMBER_PREFIX)?.len().to_string().into_bytes())
    }

    /// POST /rooms/<room>/join and /leave (`op`): the room changes its members in its own event
    /// and transaction, and the count arrives after its commit; the registry's own write
    /// commits with this event.
    fn join_or_leave(&self, req: &Request, room: &str, op: &str) -> Result<Response> {
        if req.method != "POST" {
            return Ok(Response::method_not_allowed("POST"));
        }
        if !valid_name(room) {
            return Ok(Response::text(400, "bad room name\n"));
        }
        let member = req.query_param("member").unwrap_or_default();
        if !valid_name(&member) {
            return Ok(Response::text(400, "bad member name\n"));
        }
        let registry = match self.ctx.name() {
            Some(n) => n,
            None => return Ok(no_name()),
        };
        let count = match self.room(&registry, room).call(op, member.as_bytes()) {
            Ok(c) => c,
            Err(e) => return Ok(call_failed(e)),
        };
        let key = format!("{}{}", ROOM_PREFIX, room);
        if op == "join" {
            self.store.put(key, b"")?;
        } else if count == b"0" {
            self.store.delete(key)?;
        }
        let mut body = count;
        body.push(b'\n');
        Ok(text(body))
    }

    /// GET /rooms: every room the registry knows, with the count its room object reports.
    fn list_rooms(&self) -> Result<Response> {
        let rooms = self.names(ROOM_PREFIX)?;
        let mut body = Vec::new();
        if !rooms.is_empty() {
            let registry = match self.ctx.name() {
                Some(n) => n,
                None => return Ok(no_name()),
            };
            for room in rooms {
                let name = String::from_utf8_lossy(&room);
                let count = match self.room(&registry, &name).call("count", b"") {
                    Ok(c) => c,
                    Err(e) => return Ok(call_failed(e)),
                };
                body.extend_from_slice(&room);
                body.push(b' ');
                body.extend_from_slice(&count);
                body.push(b'\n');
            }
        }
        Ok(text(body))
    }
}

impl Object for Rooms {
    fn new(ctx: &Context) -> Result<Self> {
        Ok(Rooms {
            ctx: *ctx,
            store: ctx.storage(),
        })
    }

    fn fetch(&mut self, req: Request) -> Result<Response> {
        match req.path.as_str() {
            "/rooms" => {
                if req.method != "GET" {
                    return Ok(Response::method_not_allowed("GET"));
                }
                return self.list_rooms();
            }
            "/members" => {
                if req.method != "GET" {
                    return Ok(Response::method_not_allowed("GET"));
                }
                let mut body = Vec::new();
                for m in self.names(MEMBER_PREFIX)? {
                    body.extend_from_slice(&m);
                    body.push(b'\n');
                }
                return Ok(text(body));
            }
            _ => {}
        }
        // /rooms/<room>/join and /rooms/<room>/leave: <room> is everything in between.
        let rest = match req.path.strip_prefix("/rooms/") {
            Some(r) => r,
            None => return Ok(Response::not_found()),
        };
        if let Some(room) = rest.strip_suffix("/join") {
            self.join_or_leave(&req, room, "join")
        } else if let Some(room) = rest.strip_suffix("/leave") {
            self.join_or_leave(&req, room, "leave")
        } else {
            Ok(Response::not_found())
        }
    }

    /// Answers calls from other objects (here: from the registry, to its rooms).
    fn rpc(&mut self, method: &str, arg: Vec<u8>) -> Result<Vec<u8>> {
        let mut key = MEMBER_PREFIX.as_bytes().to_vec();
        key.extend_from_slice(&arg);
        match method {
            "join" => {
                self.store.put(key, b"")?;
                self.count()
            }
            "leave" => {
                self.store.delete(key)?;
                self.count()
            }
            "count" => self.count(),
            m => Err(Error::new(format!("unknown method {}", m))),
        }
    }
}

dowasm::export!(Rooms);
