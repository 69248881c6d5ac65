//! export! generates `dowasm_alarm`, which runs the class's alarm handler with the decoded
//! arguments and reports a handler error as a non-zero result. The constructor touches no
//! storage, so it succeeds natively.

use std::sync::atomic::{AtomicI64, Ordering};

use dowasm::{AlarmInfo, Context, Object, Request, Response, Result};

/// The last AlarmInfo the handler saw, as retry_count * 2 + is_retry (-1: none).
static SEEN: AtomicI64 = AtomicI64::new(-1);

struct Reminder;

impl Object for Reminder {
    fn new(_: &Context) -> Result<Self> {
        Ok(Reminder)
    }

    fn fetch(&mut self, _: Request) -> Result<Response> {
        Ok(Response::no_content())
    }

    fn alarm(&mut self, info: AlarmInfo) -> Result<()> {
        SEEN.store(
            info.retry_count as i64 * 2 + info.is_retry as i64,
            Ordering::SeqCst,
        );
        if info.retry_count == 5 {
            return Err("not yet".into());
        }
        Ok(())
    }
}

dowasm::export!(Reminder);

extern "C" {
    fn dowasm_init() -> i32;
    fn dowasm_alarm(retry_count: i32, is_retry: i32) -> i32;
}

// One test: the instance lives in a thread-local, and each test runs on its own thread.
#[test]
fn alarm_export_runs_the_handler() {
    unsafe {
        assert_eq!(
            dowasm_alarm(0, 0),
            1,
            "alarm before a successful init fails"
        );
        assert_eq!(SEEN.load(Ordering::SeqCst), -1);
        assert_eq!(dowasm_init(), 0);
        assert_eq!(dowasm_alarm(0, 0), 0);
        assert_eq!(SEEN.load(Ordering::SeqCst), 0);
        assert_eq!(dowasm_alarm(2, 1), 0);
        assert_eq!(SEEN.load(Ordering::SeqCst), 5);
        assert_eq!(dowasm_alarm(5, 1), 1, "a handler error fails the attempt");
        assert_eq!(SEEN.load(Ordering::SeqCst), 11);
    }
}
