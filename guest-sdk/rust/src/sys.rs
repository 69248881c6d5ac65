//! The host functions of guest ABI v1 (abi/ABI.md), imported from module `dowasm`, and the one
//! WASI function the SDK uses (`clock_time_get`). This is the only module with `unsafe` code:
//! everything else in the SDK works with slices and vectors.
//!
//! Every ABI parameter is an `i32` except times (`alarm_set`'s `i64` milliseconds): on wasm32 a
//! pointer and a `usize` are 32 bits, so `*const u8` and lengths lower to `i32`, as do the
//! `u32` socket IDs, message kinds and close codes. The wrappers below take slices, which keeps
//! the pointer/length pairs correct by construction.
//!
//! Memory ownership (ABI "Memory ownership"): the guest owns all of its memory. Slices passed to
//! the host are copied by the host during the call, so they may be dropped or reused as soon as
//! the call returns. Variable-sized results are *staged* on the host side: the call returns their
//! length, and [`read_result`] allocates a `Vec` of that length and copies the staged bytes into
//! it with `result_read`; the `Vec` then belongs to the caller.
//!
//! Off WebAssembly (native `cargo test`) there is no host: every host call returns
//! `-NOT_ALLOWED`, as in the Go SDK, and the clock is the system clock.

/// `-NOT_ALLOWED`, what every host call returns off WebAssembly.
#[cfg(not(target_arch = "wasm32"))]
const NOT_ALLOWED: i32 = -(crate::Status::NotAllowed as i32);

#[cfg(target_arch = "wasm32")]
mod imports {
    #[link(wasm_import_module = "dowasm")]
    extern "C" {
        pub fn result_read(ptr: *mut u8, len: usize) -> i32;
        pub fn response_set(ptr: *const u8, len: usize) -> i32;
        pub fn error_set(ptr: *const u8, len: usize) -> i32;
        pub fn object_id() -> i32;
        pub fn object_name() -> i32;
        // Imported as "log"; the Rust name differs so that it can never be confused with the
        // math library's log(f64).
        #[link_name = "log"]
        pub fn host_log(level: i32, ptr: *const u8, len: usize) -> i32;
        pub fn storage_get(key_ptr: *const u8, key_len: usize) -> i32;
        pub fn storage_put(
            key_ptr: *const u8,
            key_len: usize,
            val_ptr: *const u8,
            val_len: usize,
        ) -> i32;
        pub fn storage_delete(key_ptr: *const u8, key_len: usize) -> i32;
        pub fn storage_get_batch(keys_ptr: *const u8, keys_len: usize) -> i32;
        pub fn storage_put_batch(entries_ptr: *const u8, entries_len: usize) -> i32;
        pub fn storage_delete_batch(keys_ptr: *const u8, keys_len: usize) -> i32;
        pub fn storage_list(opts_ptr: *const u8, opts_len: usize) -> i32;
        pub fn storage_delete_all() -> i32;
        pub fn txn_begin() -> i32;
        pub fn txn_commit() -> i32;
        pub fn txn_rollback() -> i32;
        pub fn alarm_set(time_ms: i64) -> i32;
        pub fn alarm_get() -> i32;
        pub fn alarm_delete() -> i32;
        pub fn call_fetch(
            target_ptr: *const u8,
            target_len: usize,
            req_ptr: *const u8,
            req_len: usize,
        ) -> i32;
        pub fn call_rpc(
            target_ptr: *const u8,
            target_len: usize,
            method_ptr: *const u8,
            method_len: usize,
            arg_ptr: *const u8,
            arg_len: usize,
        ) -> i32;
        pub fn rpc_return(ptr: *const u8, len: usize) -> i32;
        pub fn ws_accept(tags_ptr: *const u8, tags_len: usize) -> i32;
        pub fn ws_send(socket: u32, kind: u32, ptr: *const u8, len: usize) -> i32;
        pub fn ws_close(socket: u32, code: u32, reason_ptr: *const u8, reason_len: usize) -> i32;
        pub fn ws_list(tag_ptr: *const u8, tag_len: usize) -> i32;
        pub fn ws_tags(socket: u32) -> i32;
        pub fn ws_attachment_set(socket: u32, ptr: *const u8, len: usize) -> i32;
        pub fn ws_attachment_get(socket: u32) -> i32;
        pub fn ws_auto_response(
            req_ptr: *const u8,
            req_len: usize,
            resp_ptr: *const u8,
            resp_len: usize,
        ) -> i32;
        pub fn ws_auto_response_time(socket: u32) -> i32;
    }

    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        /// (clock_id: i32, precision: i64, result_ptr: i32) -> errno
        pub fn clock_time_get(clock_id: u32, precision: u64, result: *mut u64) -> u32;
    }
}

macro_rules! host {
    // host!(name(args...)) calls the import on wasm32 and returns -NOT_ALLOWED elsewhere.
    ($name:ident($($arg:expr),*)) => {{
        #[cfg(target_arch = "wasm32")]
        {
            // SAFETY: every pointer/length pair comes from a live slice that outlives the call;
            // the host only reads (or, for result_read, writes within) that range, copies what
            // it needs and keeps no pointer after returning (ABI "Memory ownership").
            unsafe { imports::$name($($arg),*) }
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            $(let _ = $arg;)*
            NOT_ALLOWED
        }
    }};
}

/// Copies the staged result (`n` bytes) into a new vector. Returns `Err(rc)` with the raw
/// result of `result_read` when it is negative or not `n`.
pub(crate) fn read_result(n: usize) -> Result<Vec<u8>, i32> {
    let mut v: Vec<u8> = Vec::with_capacity(n);
    if n == 0 {
        return Ok(v);
    }
    let got = host!(result_read(v.as_mut_ptr(), n));
    if got < 0 || got as usize != n {
        return Err(got);
    }
    // SAFETY: the host wrote exactly n bytes (got == n) into the vector's allocation of
    // capacity n; u8 has no invalid bit patterns.
    unsafe { v.set_len(n) };
    Ok(v)
}

/// Copies at most `max` bytes of the staged result into a new vector, whatever its length (for
/// a staged message whose length the call did not return: a failed call's). Returns `Err(rc)`
/// with the raw result of `result_read` when it is negative.
pub(crate) fn read_result_upto(max: usize) -> Result<Vec<u8>, i32> {
    let mut v: Vec<u8> = Vec::with_capacity(max);
    if max == 0 {
        return Ok(v);
    }
    let got = host!(result_read(v.as_mut_ptr(), max));
    if got < 0 {
        return Err(got);
    }
    let got = (got as usize).min(max);
    // SAFETY: the host wrote `got` bytes (at most `max`, the vector's capacity) into the
    // vector's allocation; u8 has no invalid bit patterns.
    unsafe { v.set_len(got) };
    Ok(v)
}

pub(crate) fn response_set(b: &[u8]) -> i32 {
    host!(response_set(b.as_ptr(), b.len()))
}

pub(crate) fn error_set(b: &[u8]) -> i32 {
    host!(error_set(b.as_ptr(), b.len()))
}

pub(crate) fn object_id() -> i32 {
    host!(object_id())
}

pub(crate) fn object_name() -> i32 {
    host!(object_name())
}

pub(crate) fn log(level: i32, b: &[u8]) -> i32 {
    host!(host_log(level, b.as_ptr(), b.len()))
}

pub(crate) fn storage_get(key: &[u8]) -> i32 {
    host!(storage_get(key.as_ptr(), key.len()))
}

pub(crate) fn storage_put(key: &[u8], val: &[u8]) -> i32 {
    host!(storage_put(
        key.as_ptr(),
        key.len(),
        val.as_ptr(),
        val.len()
    ))
}

pub(crate) fn storage_delete(key: &[u8]) -> i32 {
    host!(storage_delete(key.as_ptr(), key.len()))
}

pub(crate) fn storage_get_batch(b: &[u8]) -> i32 {
    host!(storage_get_batch(b.as_ptr(), b.len()))
}

pub(crate) fn storage_put_batch(b: &[u8]) -> i32 {
    host!(storage_put_batch(b.as_ptr(), b.len()))
}

pub(crate) fn storage_delete_batch(b: &[u8]) -> i32 {
    host!(storage_delete_batch(b.as_ptr(), b.len()))
}

pub(crate) fn storage_list(b: &[u8]) -> i32 {
    host!(storage_list(b.as_ptr(), b.len()))
}

pub(crate) fn storage_delete_all() -> i32 {
    host!(storage_delete_all())
}

pub(crate) fn txn_begin() -> i32 {
    host!(txn_begin())
}

pub(crate) fn txn_commit() -> i32 {
    host!(txn_commit())
}

pub(crate) fn txn_rollback() -> i32 {
    host!(txn_rollback())
}

/// `time_ms` is milliseconds since the Unix epoch (the ABI's one `i64` parameter).
pub(crate) fn alarm_set(time_ms: i64) -> i32 {
    host!(alarm_set(time_ms))
}

/// Stages the alarm time (8 bytes, little-endian `i64`) and returns 8, or `-NOT_FOUND`.
pub(crate) fn alarm_get() -> i32 {
    host!(alarm_get())
}

pub(crate) fn alarm_delete() -> i32 {
    host!(alarm_delete())
}

/// Sends an encoded request to the object named by the encoded target and waits; stages the
/// encoded response and returns its length.
pub(crate) fn call_fetch(target: &[u8], req: &[u8]) -> i32 {
    host!(call_fetch(
        target.as_ptr(),
        target.len(),
        req.as_ptr(),
        req.len()
    ))
}

/// Calls `method` with `arg` on the object named by the encoded target and waits; stages the
/// callee's result bytes and returns their length.
pub(crate) fn call_rpc(target: &[u8], method: &[u8], arg: &[u8]) -> i32 {
    host!(call_rpc(
        target.as_ptr(),
        target.len(),
        method.as_ptr(),
        method.len(),
        arg.as_ptr(),
        arg.len()
    ))
}

/// Sets the result of the current RPC event; the host copies it.
pub(crate) fn rpc_return(b: &[u8]) -> i32 {
    host!(rpc_return(b.as_ptr(), b.len()))
}

/// Accepts the current fetch's WebSocket upgrade with an encoded tag list (empty: no tags);
/// returns the new socket's ID.
pub(crate) fn ws_accept(tags: &[u8]) -> i32 {
    host!(ws_accept(tags.as_ptr(), tags.len()))
}

/// Sends a message of `kind` (1 text, 2 binary) to a socket; the host copies it.
pub(crate) fn ws_send(socket: u32, kind: u32, msg: &[u8]) -> i32 {
    host!(ws_send(socket, kind, msg.as_ptr(), msg.len()))
}

/// Closes a socket with a close code and a reason; the host copies the reason.
pub(crate) fn ws_close(socket: u32, code: u32, reason: &[u8]) -> i32 {
    host!(ws_close(socket, code, reason.as_ptr(), reason.len()))
}

/// Stages the IDs of the object's open sockets (those carrying `tag`, or all of them when it is
/// empty) as a socket list; returns its length.
pub(crate) fn ws_list(tag: &[u8]) -> i32 {
    host!(ws_list(tag.as_ptr(), tag.len()))
}

/// Stages a socket's tags as a key list; returns its length.
pub(crate) fn ws_tags(socket: u32) -> i32 {
    host!(ws_tags(socket))
}

/// Replaces a socket's attachment (empty clears it); the host copies it.
pub(crate) fn ws_attachment_set(socket: u32, b: &[u8]) -> i32 {
    host!(ws_attachment_set(socket, b.as_ptr(), b.len()))
}

/// Stages a socket's attachment; returns its length.
pub(crate) fn ws_attachment_get(socket: u32) -> i32 {
    host!(ws_attachment_get(socket))
}

/// Sets the object's auto-response pair (an empty request removes it); the host copies both.
pub(crate) fn ws_auto_response(req: &[u8], resp: &[u8]) -> i32 {
    host!(ws_auto_response(
        req.as_ptr(),
        req.len(),
        resp.as_ptr(),
        resp.len()
    ))
}

/// Stages the time of a socket's last auto-response (8 bytes, little-endian `i64`) and returns
/// 8, or `-NOT_FOUND`.
pub(crate) fn ws_auto_response_time(socket: u32) -> i32 {
    host!(ws_auto_response_time(socket))
}

/// The wall clock (WASI realtime clock, id 0) in nanoseconds since the Unix epoch, or `None`
/// when the host refuses.
#[cfg(target_arch = "wasm32")]
pub(crate) fn realtime_ns() -> Option<u64> {
    let mut t: u64 = 0;
    // SAFETY: t is a live, aligned u64 the host writes 8 bytes into.
    let errno = unsafe { imports::clock_time_get(0, 1, &mut t) };
    if errno == 0 {
        Some(t)
    } else {
        None
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn realtime_ns() -> Option<u64> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_nanos() as u64)
}
