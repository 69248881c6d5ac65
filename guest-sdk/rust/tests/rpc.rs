//! export! generates `dowasm_rpc`, which reads the staged method and argument, runs the class's
//! RPC handler and reports a handler error as a non-zero result. Natively there is no host:
//! only an empty staged input (0 + 0 bytes) can be read without one, and `rpc_return` (called
//! only for a non-empty result) fails.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use dowasm::{Context, Object, Request, Response, Result};

/// How many times the handler ran.
static CALLS: AtomicUsize = AtomicUsize::new(0);
/// What the handler does next: return bytes (true) or an empty result (false).
static NON_EMPTY: AtomicBool = AtomicBool::new(false);
/// Whether the handler fails next.
static FAIL: AtomicBool = AtomicBool::new(false);

struct Echo;

impl Object for Echo {
    fn new(_: &Context) -> Result<Self> {
        Ok(Echo)
    }

    fn fetch(&mut self, _: Request) -> Result<Response> {
        Ok(Response::no_content())
    }

    fn rpc(&mut self, method: &str, mut arg: Vec<u8>) -> Result<Vec<u8>> {
        CALLS.fetch_add(1, Ordering::SeqCst);
        if FAIL.load(Ordering::SeqCst) {
            return Err(format!("unknown method {:?}", method).into());
        }
        if NON_EMPTY.load(Ordering::SeqCst) {
            arg.push(b'x');
        }
        Ok(arg)
    }
}

dowasm::export!(Echo);

extern "C" {
    fn dowasm_init() -> i32;
    fn dowasm_rpc(method_len: i32, arg_len: i32) -> i32;
}

// One test: the instance lives in a thread-local, and each test runs on its own thread.
#[test]
fn rpc_export_runs_the_handler() {
    unsafe {
        assert_eq!(dowasm_rpc(0, 0), 1, "rpc before a successful init fails");
        assert_eq!(CALLS.load(Ordering::SeqCst), 0);
        assert_eq!(dowasm_init(), 0);
        // An empty result needs no rpc_return: the event succeeds.
        assert_eq!(dowasm_rpc(0, 0), 0);
        assert_eq!(CALLS.load(Ordering::SeqCst), 1);
        // A result is set with rpc_return, which fails off WebAssembly: the event fails.
        NON_EMPTY.store(true, Ordering::SeqCst);
        assert_eq!(dowasm_rpc(0, 0), 1);
        assert_eq!(CALLS.load(Ordering::SeqCst), 2);
        // A handler error fails the event.
        FAIL.store(true, Ordering::SeqCst);
        assert_eq!(dowasm_rpc(0, 0), 1);
        assert_eq!(CALLS.load(Ordering::SeqCst), 3);
        // Input that cannot be read, or negative lengths: the handler does not run.
        assert_eq!(dowasm_rpc(3, 1), 1);
        assert_eq!(dowasm_rpc(-1, 1), 1);
        assert_eq!(dowasm_rpc(1, -1), 1);
        assert_eq!(dowasm_rpc(i32::MAX, 1), 1);
        assert_eq!(CALLS.load(Ordering::SeqCst), 3);
    }
}
