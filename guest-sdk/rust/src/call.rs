//! Calls between objects: a [`Stub`] names another object of the same host, and
//! [`Stub::fetch`] / [`Stub::call`] send it an HTTP request or an RPC and wait for the answer.

use crate::codec;
use crate::http::{Request, Response};
use crate::status::{Error, Result, Status};
use crate::storage::read_staged;
use crate::sys;

/// Bytes of an RPC method name (`INVALID_ARGUMENT` beyond).
pub const MAX_METHOD_SIZE: usize = 256;
/// Objects in one chain of waiting calls, the first caller included (`TOO_DEEP` beyond).
pub const MAX_CALL_DEPTH: usize = 16;
/// Bytes of a failed call's staged message that the SDK reads (the host's error limit).
const MAX_ERROR_SIZE: usize = 16 << 10;

/// Another object: made with [`Context::stub`](crate::Context::stub) (by name) or
/// [`Context::stub_by_id`](crate::Context::stub_by_id). Making a stub calls nothing; each
/// [`fetch`](Stub::fetch) or [`call`](Stub::call) is one event of the callee, and the caller's
/// event waits for it.
///
/// The callee runs the call as its own event, with its own transaction: its writes are committed
/// before the answer arrives, and they stay even if the caller's event later fails (the caller's
/// writes and the callee's are two transactions). A callee that is the caller, or that is
/// waiting on it through other calls, is refused at once with `CALL_CYCLE` instead of
/// deadlocking; chains of waiting objects are at most 16 long (`TOO_DEEP`); a callee whose queue
/// is full answers `OVERLOADED`; the call cannot outlive the caller's event (the callee's
/// deadline is the caller's, `EVENT_CANCELLED` past it). A callee whose handler fails (an error,
/// a panic, a timeout) is a `CALL_FAILED` error carrying the callee's message; its writes were
/// rolled back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stub {
    /// The encoded target (abi/ABI.md, `call_fetch`).
    target: Vec<u8>,
    /// The object in error messages: `class/name` or `class/id/<hex>`.
    label: String,
}

impl Stub {
    pub(crate) fn new(class: &str, kind: u32, value: &str) -> Stub {
        let label = if kind == codec::target_kind::ID {
            format!("{}/id/{}", class, value)
        } else {
            format!("{}/{}", class, value)
        };
        Stub {
            target: codec::encode_target(class.as_bytes(), kind, value.as_bytes()),
            label,
        }
    }

    /// The object in messages: `class/name`, or `class/id/<hex>` for a stub made from an ID.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Sends an HTTP request to the object and waits for its response, as if a client had sent
    /// it: the callee's [`Object::fetch`](crate::Object::fetch) gets `req` (`path` is the part
    /// after `/<class>/<name>` and starts with `/`). A callee's answer is a response, whatever
    /// its status (a 500 it answered is `Ok`); a callee whose event failed is an error with
    /// [`Status::CallFailed`] and the callee's message.
    pub fn fetch(&self, req: &Request) -> Result<Response> {
        let op = format!("call_fetch {} {} {}", self.label, req.method, req.path);
        let rc = sys::call_fetch(&self.target, &codec::encode_request(req));
        if rc < 0 {
            return Err(call_error(&op, rc));
        }
        let b = read_staged(&op, rc)?;
        codec::decode_response(&b).ok_or_else(|| {
            Error::host_msg(
                &op,
                Status::InvalidArgument.code(),
                &format!("malformed response from the host ({} bytes)", b.len()),
            )
        })
    }

    /// Calls `method` with `arg` on the object and waits for the bytes its
    /// [`Object::rpc`](crate::Object::rpc) returns. `method` is at most 256 bytes. A callee
    /// whose handler returned an error (or has none, or panicked) is an error with
    /// [`Status::CallFailed`] and the callee's message:
    /// `dowasm: call_rpc shards/c.shard1 add: add: bad amount (CALL_FAILED)`.
    pub fn call(&self, method: &str, arg: &[u8]) -> Result<Vec<u8>> {
        if method.len() > MAX_METHOD_SIZE {
            return Err(Error::host_msg(
                &format!("call_rpc {}", self.label),
                Status::InvalidArgument.code(),
                &format!(
                    "method name is {} bytes; the limit is {}",
                    method.len(),
                    MAX_METHOD_SIZE
                ),
            ));
        }
        let op = format!("call_rpc {} {}", self.label, method);
        let rc = sys::call_rpc(&self.target, method.as_bytes(), arg);
        if rc < 0 {
            return Err(call_error(&op, rc));
        }
        read_staged(&op, rc)
    }
}

/// The error of a failed call (`rc` negative). For `CALL_FAILED` and `CALL_CYCLE` the host
/// stages a message (the callee's error, the chain of waiting objects) although the call
/// failed: it becomes the error's message, `dowasm: <op>: <message> (CALL_FAILED)`.
pub(crate) fn call_error(op: &str, rc: i32) -> Error {
    let code = rc.wrapping_neg();
    if code == Status::CallFailed.code() || code == Status::CallCycle.code() {
        if let Ok(msg) = sys::read_result_upto(MAX_ERROR_SIZE) {
            if !msg.is_empty() {
                return Error::host_msg(op, code, &codec::string(&msg));
            }
        }
    }
    Error::host(op, code)
}
