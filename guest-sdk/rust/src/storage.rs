//! The object's private, transactional key-value storage.

use crate::codec;
use crate::quote::quote;
use crate::status::{check, Error, Result, Status};
use crate::sys;

/// Bytes per key (`KEY_TOO_LARGE` beyond).
pub const MAX_KEY_SIZE: usize = 2048;
/// Bytes per key plus value (`VALUE_TOO_LARGE` beyond).
pub const MAX_ENTRY_SIZE: usize = 2 << 20;
/// Keys or entries per batch call (`TOO_MANY_KEYS` beyond).
pub const MAX_BATCH: usize = 128;
/// Nested explicit transactions (`TOO_DEEP` beyond).
pub const MAX_TXN_DEPTH: usize = 16;
/// Bytes of one listing or batch result (`RESULT_TOO_LARGE` beyond).
pub const MAX_RESULT_SIZE: usize = 32 << 20;

/// A key and its value.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// Which keys [`Storage::list`] returns. `None` fields are unset; `Some(vec![])` is set to the
/// empty key. Build with the methods: `ListOptions::new().prefix("t:").limit(10)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// First key, inclusive.
    pub start: Option<Vec<u8>>,
    /// List the keys after this one (exclusive); cannot be combined with `start`.
    pub start_after: Option<Vec<u8>>,
    /// Stop before this key (exclusive).
    pub end: Option<Vec<u8>>,
    /// Only keys with this prefix.
    pub prefix: Option<Vec<u8>>,
    /// From the highest key down; `limit` then counts from that end.
    pub reverse: bool,
    /// At most this many entries; 0 means no limit.
    pub limit: u32,
}

impl ListOptions {
    /// Every key, in ascending order, no limit.
    pub fn new() -> ListOptions {
        ListOptions::default()
    }
    pub fn start(mut self, key: impl AsRef<[u8]>) -> ListOptions {
        self.start = Some(key.as_ref().to_vec());
        self
    }
    pub fn start_after(mut self, key: impl AsRef<[u8]>) -> ListOptions {
        self.start_after = Some(key.as_ref().to_vec());
        self
    }
    pub fn end(mut self, key: impl AsRef<[u8]>) -> ListOptions {
        self.end = Some(key.as_ref().to_vec());
        self
    }
    pub fn prefix(mut self, prefix: impl AsRef<[u8]>) -> ListOptions {
        self.prefix = Some(prefix.as_ref().to_vec());
        self
    }
    pub fn reverse(mut self, reverse: bool) -> ListOptions {
        self.reverse = reverse;
        self
    }
    pub fn limit(mut self, limit: u32) -> ListOptions {
        self.limit = limit;
        self
    }
}

/// The object's private key-value storage. Keys and values are bytes; keys sort in byte order
/// (memcmp). Every call acts inside the current event's transaction: its writes become durable,
/// and visible to later events, only if the event succeeds, and the response is released only
/// after they are committed. Reads see the event's own writes.
///
/// `Storage` is a zero-sized handle: copy it into your object freely. Keys and values passed in
/// are copied by the host during the call; vectors returned are new and belong to the caller.
#[derive(Clone, Copy, Debug)]
pub struct Storage {
    _private: (),
}

/// Copies the host's staged result (`n` bytes, as returned by the call named `op`).
pub(crate) fn read_staged(op: &str, n: i32) -> Result<Vec<u8>> {
    if n < 0 {
        return Err(Error::host(
            format!("{} (negative length)", op),
            Status::InvalidArgument.code(),
        ));
    }
    sys::read_result(n as usize).map_err(|got| {
        if got < 0 {
            Error::host(format!("{} (result_read)", op), got.wrapping_neg())
        } else {
            Error::host(
                format!("{} (result_read short)", op),
                Status::InvalidArgument.code(),
            )
        }
    })
}

impl Storage {
    pub(crate) const fn new() -> Storage {
        Storage { _private: () }
    }

    /// The value stored under `key`, or `None`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        let rc = sys::storage_get(key.as_ref());
        if rc == -Status::NotFound.code() {
            return Ok(None);
        }
        let n = check("storage_get", rc)?;
        read_staged("storage_get", n).map(Some)
    }

    /// Stores `value` under `key` (an empty value is a value).
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        check(
            "storage_put",
            sys::storage_put(key.as_ref(), value.as_ref()),
        )
        .map(|_| ())
    }

    /// Removes `key`; returns whether it existed.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        check("storage_delete", sys::storage_delete(key.as_ref())).map(|n| n == 1)
    }

    /// Looks up at most [`MAX_BATCH`] keys in one call; the answers are in the order of `keys`.
    pub fn get_many<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<Option<Vec<u8>>>> {
        let n = check(
            "storage_get_batch",
            sys::storage_get_batch(&codec::encode_key_list(keys)),
        )?;
        let b = read_staged("storage_get_batch", n)?;
        match codec::decode_batch_get(&b) {
            Some(vals) if vals.len() == keys.len() => Ok(vals),
            _ => Err(Error::host(
                "storage_get_batch (malformed result)",
                Status::InvalidArgument.code(),
            )),
        }
    }

    /// Stores at most [`MAX_BATCH`] (key, value) pairs atomically: every entry is checked first,
    /// and a failure writes none of them.
    pub fn put_many<K: AsRef<[u8]>, V: AsRef<[u8]>>(&self, entries: &[(K, V)]) -> Result<()> {
        check(
            "storage_put_batch",
            sys::storage_put_batch(&codec::encode_entry_list(entries)),
        )
        .map(|_| ())
    }

    /// Removes at most [`MAX_BATCH`] keys; returns how many of them existed.
    pub fn delete_many<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<usize> {
        check(
            "storage_delete_batch",
            sys::storage_delete_batch(&codec::encode_key_list(keys)),
        )
        .map(|n| n as usize)
    }

    /// The selected entries in key byte order (highest first with `reverse`). One listing is at
    /// most 32 MiB (`RESULT_TOO_LARGE` beyond): page with `limit` and `start_after` (or `end`, in
    /// reverse).
    pub fn list(&self, opts: &ListOptions) -> Result<Vec<Entry>> {
        let n = check(
            "storage_list",
            sys::storage_list(&codec::encode_list_options(opts)),
        )?;
        let b = read_staged("storage_list", n)?;
        codec::decode_entry_list(&b).ok_or_else(|| {
            Error::host(
                "storage_list (malformed result)",
                Status::InvalidArgument.code(),
            )
        })
    }

    /// Removes every key of the object, and its alarm (atomically, as part of the event's
    /// transaction).
    pub fn delete_all(&self) -> Result<()> {
        check("storage_delete_all", sys::storage_delete_all()).map(|_| ())
    }

    /// Sets the object's alarm to `time_ms` (milliseconds since the Unix epoch, as
    /// [`now`](crate::now)), replacing any alarm already set: an object has at most one. When
    /// the time comes, the host delivers an alarm event to [`Object::alarm`](crate::Object::alarm)
    /// (at or after `time_ms`; a time in the past fires as soon as possible).
    ///
    /// Like every storage write, the alarm is part of the event's transaction: it takes effect
    /// when the event commits and is discarded if the event fails. Setting an alarm resets the
    /// retry count of a failing one.
    ///
    /// The class must override [`Object::alarm`](crate::Object::alarm). `export!` always
    /// exports the alarm handler, so the host accepts the alarm of any class; when it fires, the
    /// default handler drops it and fails with an error saying the class has no alarm handler
    /// (the host logs it).
    ///
    /// Errors (`Status::InvalidArgument`): a negative time, refused without calling the host,
    /// and a time beyond the host's horizon (10 years from now by default, `alarm_horizon` in
    /// the host's configuration).
    pub fn set_alarm(&self, time_ms: i64) -> Result<()> {
        let invalid = Status::InvalidArgument.code();
        if time_ms < 0 {
            let msg = format!("alarm time {} ms is negative", time_ms);
            return Err(Error::host_msg("alarm_set", invalid, &msg));
        }
        let rc = sys::alarm_set(time_ms);
        if rc == -invalid {
            let msg = format!(
                "alarm time {} ms is beyond the host's alarm horizon",
                time_ms
            );
            return Err(Error::host_msg("alarm_set", invalid, &msg));
        }
        check("alarm_set", rc).map(|_| ())
    }

    /// The time the alarm is set to (milliseconds since the Unix epoch), or `None` when no
    /// alarm is set. While [`Object::alarm`](crate::Object::alarm) runs, the alarm being
    /// delivered is no longer set: this answers `None` unless the handler set a new one.
    pub fn get_alarm(&self) -> Result<Option<i64>> {
        let rc = sys::alarm_get();
        if rc == -Status::NotFound.code() {
            return Ok(None);
        }
        let n = check("alarm_get", rc)?;
        let b = read_staged("alarm_get", n)?;
        match codec::decode_alarm_time(&b) {
            Some(t) => Ok(Some(t)),
            None => Err(Error::host_msg(
                "alarm_get",
                Status::InvalidArgument.code(),
                &format!("malformed result: {} bytes, not 8", b.len()),
            )),
        }
    }

    /// Deletes the alarm (in the event's transaction); returns whether one was set. Called from
    /// an alarm handler that then fails, it also cancels the retry.
    pub fn delete_alarm(&self) -> Result<bool> {
        check("alarm_delete", sys::alarm_delete()).map(|n| n == 1)
    }

    /// Runs `f` inside an explicit transaction nested in the event's own (a savepoint). If `f`
    /// returns `Ok`, its writes are kept (they commit with the event); if it returns `Err`, every
    /// write made since the transaction began is discarded and the error is returned.
    /// Transactions nest up to [`MAX_TXN_DEPTH`] deep (`TOO_DEEP` beyond).
    ///
    /// `tx` is this same storage, passed so the closure reads naturally. Only storage is
    /// transactional: undo in-memory changes yourself when `f` fails. A panic aborts the
    /// instance; the open transaction is rolled back with the failed event.
    pub fn transaction<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Storage) -> Result<T>,
    {
        check("txn_begin", sys::txn_begin())?;
        match f(self) {
            Ok(v) => {
                check("txn_commit", sys::txn_commit())?;
                Ok(v)
            }
            Err(e) => match check("txn_rollback", sys::txn_rollback()) {
                Ok(_) => Err(e),
                Err(e2) => Err(e.join(e2)),
            },
        }
    }

    /// The value under `key` as a string (bytes that are not UTF-8 become U+FFFD), or `None`.
    pub fn get_string(&self, key: &str) -> Result<Option<String>> {
        Ok(self.get(key)?.map(|v| match String::from_utf8(v) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }))
    }

    /// Stores a string value under `key`.
    pub fn put_string(&self, key: &str, value: &str) -> Result<()> {
        self.put(key, value)
    }

    /// The integer under `key`, or `None`. Integers are stored as decimal text (`"42"`), as by
    /// every dowasm SDK, so they stay readable with any SQLite tool and objects can change
    /// language; a value that is not a decimal integer is an error.
    pub fn get_i64(&self, key: &str) -> Result<Option<i64>> {
        let v = match self.get(key)? {
            Some(v) => v,
            None => return Ok(None),
        };
        match std::str::from_utf8(&v)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
        {
            Some(n) => Ok(Some(n)),
            None => Err(Error::new(format!(
                "dowasm: the value under {} is not a decimal integer: {}",
                quote(key),
                quote(&v)
            ))),
        }
    }

    /// Stores an integer as decimal text.
    pub fn put_i64(&self, key: &str, value: i64) -> Result<()> {
        self.put(key, value.to_string())
    }
}

/// `prefix` followed by `v` as 8 big-endian bytes: such keys sort numerically.
pub fn uint64_key(prefix: &str, v: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 8);
    k.extend_from_slice(prefix.as_bytes());
    k.extend_from_slice(&v.to_be_bytes());
    k
}

/// Decodes the 8 big-endian bytes that follow `prefix` in a key made by [`uint64_key`]; `None`
/// when the key does not start with `prefix` or is shorter than `prefix` + 8 bytes (bytes after
/// those 8 are ignored).
pub fn key_uint64(key: &[u8], prefix: &str) -> Option<u64> {
    let p = prefix.as_bytes();
    if key.len() < p.len() + 8 || &key[..p.len()] != p {
        return None;
    }
    let mut b = [0u8; 8];
    b.copy_from_slice(&key[p.len()..p.len() + 8]);
    Some(u64::from_be_bytes(b))
}

/// `prefix` followed by `v` in decimal, zero-padded to 20 digits (the width of the largest
/// `u64`): such keys sort numerically and stay readable (`ticket:00000000000000000042`).
pub fn padded_key(prefix: &str, v: u64) -> Vec<u8> {
    format!("{}{:020}", prefix, v).into_bytes()
}
