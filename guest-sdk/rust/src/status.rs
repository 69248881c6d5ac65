//! Status codes of guest ABI v1 (abi/ABI.md, "Status codes") and the SDK's error type.
//!
//! A host test checks the `Status` enum against abi/abi.go, so keep one variant per line in the
//! form `    CamelName = N,` (four spaces, the ABI name in CamelCase, ` = `, the value, a comma).

use std::fmt;

/// A status of the dowasm guest ABI v1. Host functions return a non-negative value on success
/// and `-status` on failure; the SDK turns failures into [`Error`]s carrying the status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i32)]
pub enum Status {
    Ok = 0,
    NotFound = 1,
    BadPointer = 2,
    KeyTooLarge = 3,
    ValueTooLarge = 4,
    TooManyKeys = 5,
    InvalidArgument = 6,
    StorageFailure = 7,
    NoTransaction = 8,
    TooDeep = 9,
    ResultTooLarge = 10,
    NotAllowed = 11,
    EventCancelled = 12,
    CallCycle = 13,
    CallFailed = 14,
    Overloaded = 15,
    LimitExceeded = 16,
}

impl Status {
    /// Every status, in numeric order.
    pub const ALL: [Status; 17] = [
        Status::Ok,
        Status::NotFound,
        Status::BadPointer,
        Status::KeyTooLarge,
        Status::ValueTooLarge,
        Status::TooManyKeys,
        Status::InvalidArgument,
        Status::StorageFailure,
        Status::NoTransaction,
        Status::TooDeep,
        Status::ResultTooLarge,
        Status::NotAllowed,
        Status::EventCancelled,
        Status::CallCycle,
        Status::CallFailed,
        Status::Overloaded,
        Status::LimitExceeded,
    ];

    /// The status with this numeric value, if the ABI has one.
    pub fn from_code(code: i32) -> Option<Status> {
        if code >= 0 && (code as usize) < Status::ALL.len() {
            Some(Status::ALL[code as usize])
        } else {
            None
        }
    }

    /// The numeric value.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The ABI name of the status: `"KEY_TOO_LARGE"`.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::NotFound => "NOT_FOUND",
            Status::BadPointer => "BAD_POINTER",
            Status::KeyTooLarge => "KEY_TOO_LARGE",
            Status::ValueTooLarge => "VALUE_TOO_LARGE",
            Status::TooManyKeys => "TOO_MANY_KEYS",
            Status::InvalidArgument => "INVALID_ARGUMENT",
            Status::StorageFailure => "STORAGE_FAILURE",
            Status::NoTransaction => "NO_TRANSACTION",
            Status::TooDeep => "TOO_DEEP",
            Status::ResultTooLarge => "RESULT_TOO_LARGE",
            Status::NotAllowed => "NOT_ALLOWED",
            Status::EventCancelled => "EVENT_CANCELLED",
            Status::CallCycle => "CALL_CYCLE",
            Status::CallFailed => "CALL_FAILED",
            Status::Overloaded => "OVERLOADED",
            Status::LimitExceeded => "LIMIT_EXCEEDED",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The ABI name of a raw status code: `KEY_TOO_LARGE`, or `STATUS_<n>` for a value the ABI does
/// not define.
pub(crate) fn code_name(code: i32) -> String {
    match Status::from_code(code) {
        Some(s) => s.name().to_string(),
        None => format!("STATUS_{}", code),
    }
}

/// The error type of the SDK and of object classes.
///
/// A failed host call gives an error with the operation and the ABI status the host returned;
/// it displays as `dowasm: storage_put: KEY_TOO_LARGE`, like the Go SDK's errors. A class's own
/// errors (made with [`Error::new`], or `From<&str>`/`From<String>`) have no status. Returning
/// any error from a handler fails the event: the client gets a 500 naming [`Display`] of the error.
///
/// [`Display`]: std::fmt::Display
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    status: Option<Status>,
    code: i32,
    op: String,
    message: String,
}

/// `Result<T, dowasm::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An application error with this message and no status.
    pub fn new(message: impl Into<String>) -> Error {
        Error {
            status: None,
            code: 0,
            op: String::new(),
            message: message.into(),
        }
    }

    /// An error with an ABI status and a message (displayed as the message alone).
    pub fn with_status(status: Status, message: impl Into<String>) -> Error {
        Error {
            status: Some(status),
            code: status.code(),
            op: String::new(),
            message: message.into(),
        }
    }

    /// A failed host call: `op` is the host function (`"storage_put"`), `code` the status it
    /// returned (positive). Displays as `dowasm: storage_put: KEY_TOO_LARGE`.
    pub fn host(op: impl Into<String>, code: i32) -> Error {
        let op = op.into();
        let message = if op.is_empty() {
            format!("dowasm: {}", code_name(code))
        } else {
            format!("dowasm: {}: {}", op, code_name(code))
        };
        Error {
            status: Status::from_code(code),
            code,
            op,
            message,
        }
    }

    /// A failed host call with an explanation (the SDK refused the call itself, or knows why
    /// the host refused it). Displays as `dowasm: alarm_set: <msg> (INVALID_ARGUMENT)`, like
    /// the Go SDK's errors with a message.
    pub(crate) fn host_msg(op: &str, code: i32, msg: &str) -> Error {
        Error {
            status: Status::from_code(code),
            code,
            op: op.to_string(),
            message: format!("dowasm: {}: {} ({})", op, msg, code_name(code)),
        }
    }

    /// The ABI status of a failed host call (or of [`Error::with_status`]); `None` for
    /// application errors.
    pub fn status(&self) -> Option<Status> {
        self.status
    }

    /// Whether this error carries `status`: `err.is(Status::KeyTooLarge)`.
    pub fn is(&self, status: Status) -> bool {
        self.status == Some(status)
    }

    /// The raw status code (0 for application errors); differs from [`status`](Self::status)
    /// only for a code this SDK does not know.
    pub fn code(&self) -> i32 {
        self.code
    }

    /// The host function that failed (`"storage_put"`), or `""`.
    pub fn op(&self) -> &str {
        &self.op
    }

    /// The full message, as displayed.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// This error followed by another one (as Go's errors.Join: the messages on two lines);
    /// keeps this error's status.
    pub(crate) fn join(mut self, other: Error) -> Error {
        self.message.push('\n');
        self.message.push_str(&other.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<&str> for Error {
    fn from(s: &str) -> Error {
        Error::new(s)
    }
}

impl From<String> for Error {
    fn from(s: String) -> Error {
        Error::new(s)
    }
}

/// Turns a host function's raw result into the value or an [`Error`] naming `op`.
pub(crate) fn check(op: &str, rc: i32) -> Result<i32> {
    if rc < 0 {
        Err(Error::host(op, rc.wrapping_neg()))
    } else {
        Ok(rc)
    }
}
