//! The Rust guest SDK for dowasm, a runtime for Durable Objects whose classes are WebAssembly
//! modules. Write a class as a type implementing [`Object`], export it with [`export!`], and
//! compile the crate (a `cdylib`) for `wasm32-unknown-unknown`:
//!
//! ```ignore
//! use dowasm::{Context, Object, Request, Response, Result, Storage};
//!
//! struct Counter {
//!     store: Storage,
//!     value: i64,
//! }
//!
//! impl Object for Counter {
//!     fn new(ctx: &Context) -> Result<Self> {
//!         let store = ctx.storage();
//!         let value = store.get_i64("value")?.unwrap_or(0);
//!         Ok(Counter { store, value })
//!     }
//!
//!     fn fetch(&mut self, req: Request) -> Result<Response> {
//!         if req.path == "/increment" && req.method == "POST" {
//!             self.store.put_i64("value", self.value + 1)?;
//!             self.value += 1;
//!         } else if req.path != "/" {
//!             return Ok(Response::not_found());
//!         }
//!         Ok(Response::text(200, self.value.to_string()))
//!     }
//! }
//!
//! dowasm::export!(Counter);
//! ```
//!
//! dowasm then runs one instance per object ID, delivers its events one at a time, and gives it
//! private transactional storage. The SDK implements guest ABI v1 (abi/ABI.md in the dowasm
//! repository); it has no dependencies and builds with Rust 1.63.
//!
//! All `unsafe` code (the host imports) is in one private module. Off WebAssembly every host
//! call fails with [`Status::NotAllowed`], so `cargo test` runs the pure parts natively.

#![warn(missing_debug_implementations)]

mod call;
pub mod codec;
mod http;
mod json;
mod object;
mod quote;
mod status;
mod storage;
mod sys;
mod websocket;

#[cfg(test)]
mod tests;

pub use call::{Stub, MAX_CALL_DEPTH, MAX_METHOD_SIZE};
pub use http::{
    unescape, Header, Headers, Request, Response, MAX_BODY_SIZE, MAX_HEADER_COUNT, MAX_HEADER_SIZE,
    TEXT_PLAIN,
};
pub use json::push_json_string;
pub use object::{now, now_ns, AlarmInfo, Context, Level, Object};
pub use quote::quote;
pub use status::{Error, Result, Status};
pub use storage::{
    key_uint64, padded_key, uint64_key, Entry, ListOptions, Storage, MAX_BATCH, MAX_ENTRY_SIZE,
    MAX_KEY_SIZE, MAX_RESULT_SIZE, MAX_TXN_DEPTH,
};
pub use websocket::{
    Message, WebSocket, MAX_ATTACHMENT_SIZE, MAX_AUTO_RESPONSE, MAX_CLOSE_REASON_SIZE,
    MAX_SOCKET_TAGS, MAX_TAG_SIZE,
};

/// The guest ABI version this SDK implements (it exports `dowasm_abi_v1`).
pub const ABI_VERSION: u32 = 1;

#[doc(hidden)]
pub use object::rt as __rt;

/// Exports an [`Object`] type as the module's class: generates the guest exports of ABI v1
/// (`dowasm_abi_v1`, `dowasm_init`, `dowasm_fetch`, `dowasm_alarm`, `dowasm_rpc`,
/// `dowasm_ws_message`, `dowasm_ws_close`, `dowasm_ws_error`) in your crate, which must be a
/// `cdylib`. `dowasm_alarm` is always exported, so the host lets every class set alarms; the
/// default [`Object::alarm`] drops them with an error. `dowasm_rpc` is always exported too; the
/// default [`Object::rpc`] fails every call with an error. So are the WebSocket handlers: the
/// default [`Object::websocket_message`] fails the event (the socket stays open), the default
/// close and error handlers do nothing.
/// Use it once per crate:
///
/// ```ignore
/// dowasm::export!(Counter);
/// ```
#[macro_export]
macro_rules! export {
    ($class:ty) => {
        const _: () = {
            /// The ABI version marker; never called.
            #[no_mangle]
            pub extern "C" fn dowasm_abi_v1() {}

            #[no_mangle]
            pub extern "C" fn dowasm_init() -> i32 {
                $crate::__rt::init::<$class>()
            }

            #[no_mangle]
            pub extern "C" fn dowasm_fetch(req_len: i32) -> i32 {
                $crate::__rt::fetch(req_len)
            }

            #[no_mangle]
            pub extern "C" fn dowasm_alarm(retry_count: i32, is_retry: i32) -> i32 {
                $crate::__rt::alarm(retry_count, is_retry)
            }

            #[no_mangle]
            pub extern "C" fn dowasm_rpc(method_len: i32, arg_len: i32) -> i32 {
                $crate::__rt::rpc(method_len, arg_len)
            }

            #[no_mangle]
            pub extern "C" fn dowasm_ws_message(socket: i32, kind: i32, len: i32) -> i32 {
                $crate::__rt::ws_message(socket, kind, len)
            }

            #[no_mangle]
            pub extern "C" fn dowasm_ws_close(
                socket: i32,
                code: i32,
                was_clean: i32,
                reason_len: i32,
            ) -> i32 {
                $crate::__rt::ws_close(socket, code, was_clean, reason_len)
            }

            #[no_mangle]
            pub extern "C" fn dowasm_ws_error(socket: i32, msg_len: i32) -> i32 {
                $crate::__rt::ws_error(socket, msg_len)
            }
        };
    };
}
