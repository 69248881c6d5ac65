//! The README's object compiles against the public API, and export! generates the guest exports.
//! Natively there is no host, so the constructor (which reads storage) fails.

use dowasm::{Context, Object, Request, Response, Result, Storage};

struct Counter {
    store: Storage,
    value: i64,
}

impl Object for Counter {
    fn new(ctx: &Context) -> Result<Self> {
        let store = ctx.storage();
        let value = store.get_i64("value")?.unwrap_or(0);
        Ok(Counter { store, value })
    }

    fn fetch(&mut self, req: Request) -> Result<Response> {
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", "/increment") => {
                self.store.put_i64("value", self.value + 1)?;
                self.value += 1;
            }
            ("GET", "/") => {}
            _ => return Ok(Response::not_found()),
        }
        Ok(Response::text(200, self.value.to_string()))
    }
}

dowasm::export!(Counter);

// The exports are #[no_mangle] functions inside an anonymous const: reach them by symbol.
extern "C" {
    fn dowasm_abi_v1();
    fn dowasm_init() -> i32;
    fn dowasm_fetch(req_len: i32) -> i32;
    fn dowasm_alarm(retry_count: i32, is_retry: i32) -> i32;
    fn dowasm_rpc(method_len: i32, arg_len: i32) -> i32;
    fn dowasm_ws_message(socket: i32, kind: i32, len: i32) -> i32;
    fn dowasm_ws_close(socket: i32, code: i32, was_clean: i32, reason_len: i32) -> i32;
    fn dowasm_ws_error(socket: i32, msg_len: i32) -> i32;
}

#[test]
fn exports_exist_and_fail_without_a_host() {
    unsafe {
        dowasm_abi_v1();
        assert_eq!(dowasm_fetch(0), 1, "fetch before a successful init fails");
        assert_eq!(
            dowasm_alarm(0, 0),
            1,
            "alarm before a successful init fails"
        );
        assert_eq!(dowasm_rpc(0, 0), 1, "rpc before a successful init fails");
        assert_eq!(
            dowasm_ws_message(1, 1, 0),
            1,
            "ws_message before init fails"
        );
        assert_eq!(
            dowasm_ws_close(1, 1000, 1, 0),
            1,
            "ws_close before init fails"
        );
        assert_eq!(dowasm_ws_error(1, 0), 1, "ws_error before init fails");
        assert_eq!(
            dowasm_init(),
            1,
            "the constructor's storage read fails off WebAssembly"
        );
    }
}
