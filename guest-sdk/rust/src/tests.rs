//! Native tests of the pure parts: encodings (byte for byte against abi/ABI.md), query
//! decoding, key helpers, the status table, quoting, JSON strings, response checks, alarms (the staged
//! time, the handler's arguments, the default handler, refused times), calls (the target
//! and staged response encodings, call errors, the default RPC handler) and WebSockets (the
//! socket and tag lists, upgrade detection, the checks made before calling the host, the
//! default handlers).

use crate::codec::*;
use crate::*;

fn req(method: &str, path: &str, query: &str) -> Request {
    Request {
        method: method.into(),
        path: path.into(),
        query: query.into(),
        ..Request::default()
    }
}

#[test]
fn request_encoding_matches_abi_example() {
    // abi/ABI.md: GET /counter/a/x?y=1 with no headers and no body.
    let want: &[u8] =
        b"\x03\x00\x00\x00GET\x02\x00\x00\x00/x\x03\x00\x00\x00y=1\x00\x00\x00\x00\x00\x00\x00\x00";
    let r = req("GET", "/x", "y=1");
    assert_eq!(encode_request(&r), want);
    assert_eq!(decode_request(want), Some(r));
}

#[test]
fn request_round_trip_and_malformed() {
    let mut r = req("POST", "/claim", "a=1&b=2");
    r.headers.add("Content-Type", "text/plain");
    r.headers.add("X-Client", "alice");
    r.headers.add("X-Client", "bob");
    r.body = b"hello".to_vec();
    let b = encode_request(&r);
    let got = decode_request(&b).unwrap();
    assert_eq!(got, r);
    assert_eq!(got.header("x-client"), Some("alice"));
    assert_eq!(
        got.headers.values("X-CLIENT").collect::<Vec<_>>(),
        vec![&b"alice"[..], b"bob"]
    );
    assert_eq!(got.header("Missing"), None);
    // Truncated anywhere, or with a trailing byte: malformed.
    for n in 0..b.len() {
        assert_eq!(decode_request(&b[..n]), None, "truncated to {}", n);
    }
    let mut long = b.clone();
    long.push(0);
    assert_eq!(decode_request(&long), None);
    // A header count the rest cannot hold is refused before allocating.
    let mut huge = Vec::new();
    for f in [&b"GET"[..], b"/", b""] {
        put_bytes(&mut huge, f);
    }
    put_u32(&mut huge, u32::MAX);
    assert_eq!(decode_request(&huge), None);
    // Header values stay bytes, even when they are not UTF-8.
    let mut bad = Vec::new();
    for f in [&b"GET"[..], b"/", b""] {
        put_bytes(&mut bad, f);
    }
    put_u32(&mut bad, 1);
    put_bytes(&mut bad, b"X-A");
    put_bytes(&mut bad, b"a\xffb");
    put_bytes(&mut bad, b"");
    let got = decode_request(&bad).unwrap();
    assert_eq!(got.header_bytes("x-a"), Some(&b"a\xffb"[..]));
    assert_eq!(got.header("X-A"), None);
    assert_eq!(encode_request(&got), bad);
}

#[test]
fn response_encoding() {
    let r = Response::text(200, "ok");
    let mut want = Vec::new();
    want.extend_from_slice(&200u32.to_le_bytes());
    want.extend_from_slice(&1u32.to_le_bytes());
    want.extend_from_slice(b"\x0c\x00\x00\x00Content-Type");
    want.extend_from_slice(b"\x19\x00\x00\x00text/plain; charset=utf-8");
    want.extend_from_slice(b"\x02\x00\x00\x00ok");
    assert_eq!(encode_response(&r), want);
    assert_eq!(
        encode_response(&Response::bytes(204, Vec::new())),
        b"\xcc\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    );
}

#[test]
fn response_helpers() {
    let r = Response::method_not_allowed("GET, HEAD");
    assert_eq!(r.status, 405);
    assert_eq!(r.body, b"method not allowed\n");
    let hs: Vec<_> = r
        .headers
        .iter()
        .map(|h| (h.name.as_str(), h.value_str().unwrap()))
        .collect();
    assert_eq!(
        hs,
        vec![("Content-Type", TEXT_PLAIN), ("Allow", "GET, HEAD")]
    );
    let r = Response::not_found();
    assert_eq!((r.status, r.body.as_slice()), (404, &b"not found\n"[..]));
    let r = Response::json(429, "{}")
        .set_header("Retry-After", "5")
        .set_header("retry-after", "6");
    let hs: Vec<_> = r
        .headers
        .iter()
        .map(|h| (h.name.as_str(), h.value_str().unwrap()))
        .collect();
    assert_eq!(
        hs,
        vec![("Content-Type", "application/json"), ("retry-after", "6")]
    );
    let r = Response::bytes(200, b"x".to_vec())
        .with_header("A", "1")
        .with_header("A", "2");
    assert_eq!(
        r.headers.values("a").collect::<Vec<_>>(),
        vec![&b"1"[..], b"2"]
    );
    let r = Response::bytes(200, Vec::new()).set_header("X-Raw", &b"\xff"[..]);
    assert_eq!(r.headers.get_bytes("x-raw"), Some(&b"\xff"[..]));
    let mut h = Headers::new();
    h.add("A", "1");
    h.add("B", "2");
    h.del("b");
    assert_eq!(h.len(), 1);
    assert_eq!(h.get("B"), None);
}

#[test]
fn response_check() {
    let cases: Vec<(Response, Option<&str>)> = vec![
        (Response::text(200, "ok"), None),
        (Response::text(599, ""), None),
        (Response::text(99, ""), Some("status 99 is not 200-599")),
        (Response::text(101, ""), Some("status 101 is not 200-599")),
        (Response::text(600, ""), Some("status 600 is not 200-599")),
        (
            Response::bytes(200, vec![0u8; MAX_BODY_SIZE + 1]),
            Some("body is 33554433 bytes; the limit is 32 MiB"),
        ),
        (
            Response::bytes(200, Vec::new()).set_header("X", "a".repeat(MAX_HEADER_SIZE)),
            Some("headers total 65537 bytes; the limit is 64 KiB"),
        ),
    ];
    for (r, want) in cases {
        assert_eq!(r.check().as_deref(), want);
    }
    let mut r = Response::bytes(200, Vec::new());
    for _ in 0..4097 {
        r.headers.add("A", "");
    }
    assert_eq!(
        r.check().as_deref(),
        Some("4097 headers; the limit is 4096")
    );
}

#[test]
fn key_list_entry_list_batch_and_list_options() {
    assert_eq!(
        encode_key_list(&["a", "bc"]),
        b"\x02\x00\x00\x00\x01\x00\x00\x00a\x02\x00\x00\x00bc"
    );
    assert_eq!(encode_key_list::<&[u8]>(&[]), b"\x00\x00\x00\x00");
    let el = encode_entry_list(&[("k", "v"), ("", "")]);
    assert_eq!(
        el,
        b"\x02\x00\x00\x00\x01\x00\x00\x00k\x01\x00\x00\x00v\x00\x00\x00\x00\x00\x00\x00\x00"
    );
    assert_eq!(
        decode_entry_list(&el),
        Some(vec![
            Entry {
                key: b"k".to_vec(),
                value: b"v".to_vec()
            },
            Entry::default()
        ])
    );
    assert_eq!(decode_entry_list(&el[..el.len() - 1]), None);
    assert_eq!(decode_entry_list(b"\xff\xff\xff\xff"), None);

    let bg = b"\x02\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00x\x00\x00\x00\x00\x00\x00\x00\x00";
    assert_eq!(decode_batch_get(bg), Some(vec![Some(b"x".to_vec()), None]));
    assert_eq!(decode_batch_get(&bg[1..]), None);

    // flags, limit, then start (2), startAfter (4), end (8), prefix (16) when set.
    assert_eq!(
        encode_list_options(&ListOptions::new()),
        b"\x00\x00\x00\x00\x00\x00\x00\x00"
    );
    let o = ListOptions::new()
        .prefix("t:")
        .end("t:z")
        .reverse(true)
        .limit(128);
    assert_eq!(o.end.as_deref(), Some(&b"t:z"[..]));
    assert_eq!(
        encode_list_options(&o),
        b"\x19\x00\x00\x00\x80\x00\x00\x00\x03\x00\x00\x00t:z\x02\x00\x00\x00t:"
    );
    let o = ListOptions::new().start("").start_after("b").limit(1);
    assert_eq!(
        encode_list_options(&o),
        b"\x06\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00b"
    );
}

#[test]
fn query_params() {
    let r = req("GET", "/", "a=1&b=x+y%21&a=2&c&d=&e%20f=3&g=%zz%4&h=%41");
    assert_eq!(r.query_param("a").as_deref(), Some("1"));
    assert_eq!(r.query_param("b").as_deref(), Some("x y!"));
    assert_eq!(r.query_param("c").as_deref(), Some(""));
    assert_eq!(r.query_param("d").as_deref(), Some(""));
    assert_eq!(r.query_param("e f").as_deref(), Some("3"));
    assert_eq!(r.query_param("e%20f").as_deref(), Some("3"));
    assert_eq!(r.query_param("g").as_deref(), Some("%zz%4"));
    assert_eq!(r.query_param("h").as_deref(), Some("A"));
    assert_eq!(r.query_param("zz"), None);
    assert_eq!(req("GET", "/", "").query_param("a"), None);
    assert_eq!(
        req("GET", "/", "a=%ff").query_param_bytes("a"),
        Some(vec![0xff])
    );
    assert_eq!(&*unescape(b"100%"), b"100%");
    assert_eq!(&*unescape(b"%41%4"), b"A%4");
    assert_eq!(&*unescape(b"%41%41"), b"AA");
}

#[test]
fn query_int() {
    let r = req(
        "GET",
        "/",
        "limit=5&neg=-3&plus=%2B7&bad=1x&empty=&big=9223372036854775808",
    );
    assert_eq!(r.query_int("limit", 10), Ok(5));
    assert_eq!(r.query_int("neg", 10), Ok(-3));
    assert_eq!(r.query_int("plus", 10), Ok(7));
    assert_eq!(r.query_int("missing", 10), Ok(10));
    assert_eq!(r.query_int("empty", 10), Ok(10));
    let e = r.query_int("bad", 10).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"query parameter bad="1x" is not an integer"#
    );
    assert_eq!(e.status(), None);
    assert!(r.query_int("big", 0).is_err());
}

#[test]
fn keys() {
    assert_eq!(padded_key("ticket:", 42), b"ticket:00000000000000000042");
    assert_eq!(padded_key("", u64::MAX), b"18446744073709551615");
    assert!(padded_key("t:", 9) < padded_key("t:", 10));
    assert!(uint64_key("t:", 255) < uint64_key("t:", 256));
    assert_eq!(
        uint64_key("t:", 0x0102030405060708),
        b"t:\x01\x02\x03\x04\x05\x06\x07\x08"
    );
    assert_eq!(key_uint64(&uint64_key("t:", 1234), "t:"), Some(1234));
    let mut k = uint64_key("t:", 7);
    k.extend_from_slice(&[0, 0, 0, 1]);
    assert_eq!(key_uint64(&k, "t:"), Some(7));
    assert_eq!(key_uint64(b"t:1", "t:"), None);
    assert_eq!(
        key_uint64(b"u:\x00\x00\x00\x00\x00\x00\x00\x01", "t:"),
        None
    );
}

#[test]
fn status_table() {
    let names = [
        "OK",
        "NOT_FOUND",
        "BAD_POINTER",
        "KEY_TOO_LARGE",
        "VALUE_TOO_LARGE",
        "TOO_MANY_KEYS",
        "INVALID_ARGUMENT",
        "STORAGE_FAILURE",
        "NO_TRANSACTION",
        "TOO_DEEP",
        "RESULT_TOO_LARGE",
        "NOT_ALLOWED",
        "EVENT_CANCELLED",
        "CALL_CYCLE",
        "CALL_FAILED",
        "OVERLOADED",
        "LIMIT_EXCEEDED",
    ];
    assert_eq!(Status::ALL.len(), names.len());
    for (i, s) in Status::ALL.iter().enumerate() {
        assert_eq!(s.code(), i as i32);
        assert_eq!(s.name(), names[i]);
        assert_eq!(Status::from_code(i as i32), Some(*s));
    }
    assert_eq!(Status::from_code(17), None);
    assert_eq!(Status::from_code(-1), None);

    // The source has one `    CamelName = N,` line per status (a host test parses it).
    let src = include_str!("status.rs");
    let mut seen = 0;
    for line in src.lines() {
        if let Some(rest) = line.strip_prefix("    ") {
            let parts: Vec<&str> = rest.trim_end_matches(',').split(" = ").collect();
            if parts.len() == 2
                && line.ends_with(',')
                && parts[1].parse::<i32>().is_ok()
                && !rest.contains('(')
            {
                let camel: String = names[parts[1].parse::<usize>().unwrap()]
                    .split('_')
                    .map(|p| p[..1].to_string() + &p[1..].to_lowercase())
                    .collect();
                assert_eq!(parts[0], camel);
                seen += 1;
            }
        }
    }
    assert_eq!(seen, names.len());
}

#[test]
fn errors() {
    let e = Error::host("storage_put", Status::KeyTooLarge.code());
    assert_eq!(e.to_string(), "dowasm: storage_put: KEY_TOO_LARGE");
    assert!(e.is(Status::KeyTooLarge));
    assert!(!e.is(Status::ValueTooLarge));
    assert_eq!(e.op(), "storage_put");
    assert_eq!(Error::host("", 5).to_string(), "dowasm: TOO_MANY_KEYS");
    assert_eq!(Error::host("x", 99).to_string(), "dowasm: x: STATUS_99");
    assert_eq!(Error::host("x", 99).status(), None);
    assert_eq!(Error::host("x", 99).code(), 99);
    let app: Error = "boom".into();
    assert_eq!((app.to_string().as_str(), app.status()), ("boom", None));
    assert_eq!(
        e.clone().join(app).to_string(),
        "dowasm: storage_put: KEY_TOO_LARGE\nboom"
    );
}

#[test]
fn native_host_calls_fail_with_not_allowed() {
    let ctx = Context::new();
    let s = ctx.storage();
    let e = s.get("k").unwrap_err();
    assert!(e.is(Status::NotAllowed), "{}", e);
    assert_eq!(e.to_string(), "dowasm: storage_get: NOT_ALLOWED");
    assert!(s.put("k", "v").unwrap_err().is(Status::NotAllowed));
    assert!(s
        .list(&ListOptions::new())
        .unwrap_err()
        .is(Status::NotAllowed));
    assert_eq!(
        s.transaction(|_| Ok(1)).unwrap_err().to_string(),
        "dowasm: txn_begin: NOT_ALLOWED"
    );
    assert_eq!(ctx.id(), "");
    assert_eq!(ctx.name(), None);
    assert!(now() > 1_600_000_000_000);
}

#[test]
fn go_quote() {
    assert_eq!(quote("abc"), r#""abc""#);
    assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
    assert_eq!(
        quote("\x07\x08\x0c\n\r\t\x0b\x00\x1f\x7f"),
        r#""\a\b\f\n\r\t\v\x00\x1f\x7f""#
    );
    assert_eq!(quote(b"a\xffb\xe2\x82x"), r#""a\xffb\xe2\x82x""#);
    assert_eq!(
        quote("h\u{e9}\u{a0}\u{ad}\u{85}\u{4e16}\u{1f600}"),
        "\"h\u{e9}\\u00a0\\u00ad\\u0085\u{4e16}\u{1f600}\""
    );
    assert_eq!(quote("\u{feff}\u{e0001}"), r#""\ufeff\U000e0001""#);
    assert_eq!(quote(b"\xe2\x82"), r#""\xe2\x82""#);
}

#[test]
fn json_strings() {
    fn json(s: &[u8]) -> Vec<u8> {
        let mut b = b"x:".to_vec();
        push_json_string(&mut b, s);
        assert_eq!(&b[..2], b"x:", "appends");
        b.split_off(2)
    }
    assert_eq!(json(b""), b"\"\"");
    assert_eq!(json(b"ann"), b"\"ann\"");
    assert_eq!(json(b"a\"b"), br#""a\"b""#);
    assert_eq!(json(b"a\\b"), br#""a\\b""#);
    assert_eq!(json(b"\n\r\t"), br#""\n\r\t""#);
    assert_eq!(
        json(b"\x00\x01\x0b\x1b\x1f"),
        br#""\u0000\u0001\u000b\u001b\u001f""#
    );
    // 0x20 and above are kept, DEL too; so are UTF-8 and bytes that are not UTF-8.
    assert_eq!(json(b" ~\x7f"), b"\" ~\x7f\"");
    assert_eq!(
        json("h\u{e9} \u{4e16} </> \u{2028}".as_bytes()),
        "\"h\u{e9} \u{4e16} </> \u{2028}\"".as_bytes()
    );
    assert_eq!(json(b"a\xffb\xe2\x82"), b"\"a\xffb\xe2\x82\"");
    // Anything that is bytes: &str, String, Vec<u8>.
    let mut b = Vec::new();
    push_json_string(&mut b, "\u{1}");
    push_json_string(&mut b, String::from("\\"));
    push_json_string(&mut b, vec![b'"']);
    assert_eq!(b, br#""\u0001""\\""\"""#);
    // The example of the documentation.
    let mut b = b"{\"name\":".to_vec();
    push_json_string(&mut b, "say \"hi\"\n");
    b.push(b'}');
    assert_eq!(b, br#"{"name":"say \"hi\"\n"}"#);
}

#[test]
fn alarm_time_encoding() {
    // alarm_get stages 8 bytes: a little-endian i64, milliseconds since the Unix epoch.
    let t: i64 = 1_700_000_000_123;
    assert_eq!(encode_alarm_time(t), *b"\x7b\x68\xe5\xcf\x8b\x01\x00\x00");
    assert_eq!(decode_alarm_time(&encode_alarm_time(t)), Some(t));
    assert_eq!(decode_alarm_time(&[0; 8]), Some(0));
    assert_eq!(decode_alarm_time(&[0xff; 8]), Some(-1));
    assert_eq!(
        decode_alarm_time(&encode_alarm_time(i64::MAX)),
        Some(i64::MAX)
    );
    assert_eq!(decode_alarm_time(&[0; 7]), None);
    assert_eq!(decode_alarm_time(&[0; 9]), None);
    assert_eq!(decode_alarm_time(b""), None);
}

#[test]
fn alarm_info_from_abi() {
    use crate::object::AlarmInfo as A;
    let first = A {
        retry_count: 0,
        is_retry: false,
    };
    assert_eq!(A::from_abi(0, 0), first);
    assert_eq!(
        A::from_abi(3, 1),
        A {
            retry_count: 3,
            is_retry: true
        }
    );
    assert!(A::from_abi(2, 7).is_retry);
    assert_eq!(A::from_abi(-1, 0), first);
}

struct NoAlarms;

impl Object for NoAlarms {
    fn new(_: &Context) -> Result<Self> {
        Ok(NoAlarms)
    }
    fn fetch(&mut self, _: Request) -> Result<Response> {
        Ok(Response::no_content())
    }
}

#[test]
fn default_alarm_handler_fails() {
    let mut obj = NoAlarms::new(&Context::new()).unwrap();
    let e = obj
        .alarm(AlarmInfo {
            retry_count: 0,
            is_retry: false,
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "dowasm: this class has no alarm handler (override Object::alarm to use Storage::set_alarm)"
    );
    assert_eq!(e.status(), None);
    // The export before a successful dowasm_init (this thread has no instance) fails too.
    assert_eq!(crate::__rt::alarm(0, 0), 1);
}

#[test]
fn alarm_calls() {
    let s = Context::new().storage();
    // A negative time is refused before the host is called.
    for t in [-1, i64::MIN] {
        let e = s.set_alarm(t).unwrap_err();
        assert!(e.is(Status::InvalidArgument), "{}", e);
        assert_eq!(e.op(), "alarm_set");
        assert_eq!(
            e.to_string(),
            format!(
                "dowasm: alarm_set: alarm time {} ms is negative (INVALID_ARGUMENT)",
                t
            )
        );
    }
    // Other times reach the host (off WebAssembly: NOT_ALLOWED).
    let e = s.set_alarm(0).unwrap_err();
    assert_eq!(e.to_string(), "dowasm: alarm_set: NOT_ALLOWED");
    assert!(s.set_alarm(i64::MAX).unwrap_err().is(Status::NotAllowed));
    assert_eq!(
        s.get_alarm().unwrap_err().to_string(),
        "dowasm: alarm_get: NOT_ALLOWED"
    );
    assert_eq!(
        s.delete_alarm().unwrap_err().to_string(),
        "dowasm: alarm_delete: NOT_ALLOWED"
    );
}

#[test]
fn response_decoding() {
    // decode_response is the inverse of encode_response (what call_fetch stages).
    let r = Response::text(201, "made\n")
        .with_header("X-A", "1")
        .with_header("X-A", b"\xff".to_vec());
    let b = encode_response(&r);
    assert_eq!(decode_response(&b), Some(r));
    let empty = Response::no_content();
    assert_eq!(decode_response(&encode_response(&empty)), Some(empty));
    // Truncated anywhere, or with a trailing byte: malformed.
    for n in 0..b.len() {
        assert_eq!(decode_response(&b[..n]), None, "truncated to {}", n);
    }
    let mut long = b.clone();
    long.push(0);
    assert_eq!(decode_response(&long), None);
    // Statuses outside 200-599 are not responses.
    for status in [0u16, 100, 199, 600, 65535] {
        let r = Response::bytes(status, b"x".to_vec());
        assert_eq!(decode_response(&encode_response(&r)), None, "{}", status);
    }
    for status in [200u16, 404, 599] {
        let r = Response::bytes(status, Vec::new());
        assert_eq!(decode_response(&encode_response(&r)), Some(r));
    }
    let mut big = Vec::new();
    put_u32(&mut big, 70_000);
    put_u32(&mut big, 0);
    put_bytes(&mut big, b"");
    assert_eq!(decode_response(&big), None, "a status beyond u16");
    // More than 4,096 headers, or more than 64 KiB of them: refused.
    let mut many = Response::bytes(200, Vec::new());
    for _ in 0..MAX_HEADER_COUNT {
        many.headers.add("A", "");
    }
    assert!(decode_response(&encode_response(&many)).is_some());
    many.headers.add("A", "");
    assert_eq!(decode_response(&encode_response(&many)), None);
    let fat = Response::bytes(200, Vec::new()).with_header("A", vec![b'a'; MAX_HEADER_SIZE - 1]);
    assert!(decode_response(&encode_response(&fat)).is_some());
    let fat = fat.with_header("B", "");
    assert_eq!(decode_response(&encode_response(&fat)), None);
    // A header count the rest cannot hold is refused before allocating.
    let mut huge = Vec::new();
    put_u32(&mut huge, 200);
    put_u32(&mut huge, u32::MAX);
    assert_eq!(decode_response(&huge), None);
}

#[test]
fn target_encoding() {
    // bytes class, u32 kind (0 name, 1 id), bytes value.
    let b = encode_target(b"shards", target_kind::NAME, b"c.shard1");
    assert_eq!(
        b,
        b"\x06\x00\x00\x00shards\x00\x00\x00\x00\x08\x00\x00\x00c.shard1"
    );
    assert_eq!(
        decode_target(&b),
        Some((b"shards".to_vec(), 0, b"c.shard1".to_vec()))
    );
    let hex = "ab".repeat(32);
    let b = encode_target(b"rooms", target_kind::ID, hex.as_bytes());
    assert_eq!(&b[..9], b"\x05\x00\x00\x00rooms");
    assert_eq!(&b[9..13], b"\x01\x00\x00\x00");
    assert_eq!(&b[13..17], b"\x40\x00\x00\x00");
    assert_eq!(
        decode_target(&b),
        Some((b"rooms".to_vec(), 1, hex.into_bytes()))
    );
    for n in 0..b.len() {
        assert_eq!(decode_target(&b[..n]), None, "truncated to {}", n);
    }
    // The stubs encode the same targets.
    let ctx = Context::new();
    assert_eq!(
        ctx.stub("shards", "c.shard1"),
        ctx.stub("shards", "c.shard1")
    );
    assert_eq!(ctx.stub("shards", "c.shard1").label(), "shards/c.shard1");
    assert_eq!(ctx.stub_by_id("rooms", "00ff").label(), "rooms/id/00ff");
    assert_ne!(ctx.stub("rooms", "00ff"), ctx.stub_by_id("rooms", "00ff"));
}

#[test]
fn calls_fail_without_a_host() {
    let ctx = Context::new();
    let s = ctx.stub("shards", "c.shard1");
    let e = s.call("add", b"1").unwrap_err();
    assert!(e.is(Status::NotAllowed), "{}", e);
    assert_eq!(e.op(), "call_rpc shards/c.shard1 add");
    assert_eq!(
        e.to_string(),
        "dowasm: call_rpc shards/c.shard1 add: NOT_ALLOWED"
    );
    let e = s.fetch(&req("GET", "/value", "")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "dowasm: call_fetch shards/c.shard1 GET /value: NOT_ALLOWED"
    );
    // A method name over 256 bytes is refused before calling the host.
    let long = "m".repeat(MAX_METHOD_SIZE + 1);
    let e = s.call(&long, b"").unwrap_err();
    assert!(e.is(Status::InvalidArgument), "{}", e);
    assert_eq!(
        e.to_string(),
        "dowasm: call_rpc shards/c.shard1: method name is 257 bytes; the limit is 256 (INVALID_ARGUMENT)"
    );
    assert!(s
        .call(&"m".repeat(MAX_METHOD_SIZE), b"")
        .unwrap_err()
        .is(Status::NotAllowed));
}

#[test]
fn call_errors() {
    use crate::call::call_error;
    // Without a staged message (here: no host), the status alone.
    for st in [
        Status::CallFailed,
        Status::CallCycle,
        Status::Overloaded,
        Status::TooDeep,
    ] {
        let e = call_error("call_rpc rooms/r.room.a join", -st.code());
        assert!(e.is(st));
        assert_eq!(e.op(), "call_rpc rooms/r.room.a join");
        assert_eq!(
            e.to_string(),
            format!("dowasm: call_rpc rooms/r.room.a join: {}", st.name())
        );
    }
    // With the callee's message, as the Go SDK: dowasm: <op>: <msg> (<STATUS>).
    let e = Error::host_msg(
        "call_rpc shards/c.shard1 add",
        Status::CallFailed.code(),
        "add: bad amount",
    );
    assert_eq!(
        e.to_string(),
        "dowasm: call_rpc shards/c.shard1 add: add: bad amount (CALL_FAILED)"
    );
    assert!(e.is(Status::CallFailed));
}

struct NoRpc;

impl Object for NoRpc {
    fn new(_: &Context) -> Result<Self> {
        Ok(NoRpc)
    }
    fn fetch(&mut self, _: Request) -> Result<Response> {
        Ok(Response::no_content())
    }
}

#[test]
fn default_rpc_handler_fails() {
    let mut obj = NoRpc::new(&Context::new()).unwrap();
    let e = obj.rpc("add", b"1".to_vec()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "dowasm: this class has no RPC handler (override Object::rpc to answer Stub::call)"
    );
    assert_eq!(e.status(), None);
    // The export before a successful dowasm_init (this thread has no instance) fails too.
    assert_eq!(crate::__rt::rpc(0, 0), 1);
}

#[test]
fn socket_and_key_list_decoding() {
    // socket list: u32 count, then count u32 socket IDs.
    let b = encode_socket_list(&[7, 9, 0x01020304]);
    assert_eq!(
        b,
        b"\x03\x00\x00\x00\x07\x00\x00\x00\x09\x00\x00\x00\x04\x03\x02\x01"
    );
    assert_eq!(decode_socket_list(&b), Some(vec![7, 9, 0x01020304]));
    assert_eq!(decode_socket_list(b"\x00\x00\x00\x00"), Some(vec![]));
    for n in 0..b.len() {
        assert_eq!(decode_socket_list(&b[..n]), None, "truncated to {}", n);
    }
    let mut long = b.clone();
    long.push(0);
    assert_eq!(decode_socket_list(&long), None);
    // A count the rest cannot hold is refused before allocating.
    assert_eq!(decode_socket_list(b"\xff\xff\xff\xff"), None);

    // ws_tags stages a key list.
    let tags = encode_key_list(&["member", "room:a", ""]);
    assert_eq!(
        decode_key_list(&tags),
        Some(vec![b"member".to_vec(), b"room:a".to_vec(), Vec::new()])
    );
    assert_eq!(decode_key_list(b"\x00\x00\x00\x00"), Some(vec![]));
    for n in 0..tags.len() {
        assert_eq!(decode_key_list(&tags[..n]), None, "truncated to {}", n);
    }
    assert_eq!(decode_key_list(b"\xff\xff\xff\x7f"), None);
    assert_eq!((ws_kind::TEXT, ws_kind::BINARY), (1, 2));
}

#[test]
fn websocket_upgrade_detection() {
    let upgrade = |method: &str, values: &[&[u8]]| {
        let mut r = req(method, "/ws", "");
        r.headers.add("Connection", "Upgrade");
        for v in values {
            r.headers.add("Upgrade", v.to_vec());
        }
        r.is_websocket_upgrade()
    };
    assert!(upgrade("GET", &[b"websocket"]));
    assert!(upgrade("GET", &[b"WebSocket"]));
    assert!(upgrade("GET", &[b"WEBSOCKET", b"h2c"]));
    // Any Upgrade line, any protocol of a comma-separated list (as the gateway reads it).
    assert!(upgrade("GET", &[b"h2c", b"websocket"]));
    assert!(upgrade("GET", &[b"h2c, websocket"]));
    assert!(upgrade("GET", &[b"h2c,websocket"]));
    assert!(upgrade("GET", &[b" \twebsocket\t ,"]));
    assert!(!upgrade("POST", &[b"websocket"]));
    assert!(!upgrade("get", &[b"websocket"]));
    assert!(!upgrade("GET", &[]));
    assert!(!upgrade("GET", &[b""]));
    assert!(!upgrade("GET", &[b"h2c"]));
    assert!(!upgrade("GET", &[b"websockets"]));
    assert!(!upgrade("GET", &[b"web socket"]));
    assert!(!upgrade("GET", &[b"websocket/13"]));
    assert!(!upgrade("GET", &[b"websocket\xff"]));
    // Header names are matched ignoring case.
    let mut r = req("GET", "/ws", "");
    r.headers.add("upgrade", "websocket");
    assert!(r.is_websocket_upgrade());
}

#[test]
fn websocket_tag_validation() {
    use crate::websocket::check_tags;
    assert_eq!(check_tags(&[]), Ok(()));
    assert_eq!(check_tags(&["member"]), Ok(()));
    let ten = ["t"; MAX_SOCKET_TAGS];
    assert_eq!(check_tags(&ten), Ok(()));
    let max = "x".repeat(MAX_TAG_SIZE);
    assert_eq!(check_tags(&[&max, "y"]), Ok(()));

    let e = check_tags(&["t"; MAX_SOCKET_TAGS + 1]).unwrap_err();
    assert!(e.is(Status::InvalidArgument), "{}", e);
    assert_eq!(e.op(), "ws_accept");
    assert_eq!(
        e.to_string(),
        "dowasm: ws_accept: 11 tags; the limit is 10 (INVALID_ARGUMENT)"
    );
    let e = check_tags(&["a", ""]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "dowasm: ws_accept: tags[1] is empty (INVALID_ARGUMENT)"
    );
    let long = "x".repeat(MAX_TAG_SIZE + 1);
    let e = check_tags(&[&long]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "dowasm: ws_accept: tags[0] is 257 bytes; the limit is 256 (INVALID_ARGUMENT)"
    );

    // accept_websocket checks the request, then the tags, then calls the host.
    let ctx = Context::new();
    let e = ctx
        .accept_websocket(&req("GET", "/ws", ""), &["member"])
        .unwrap_err();
    assert!(e.is(Status::NotAllowed), "{}", e);
    assert_eq!(
        e.to_string(),
        "dowasm: ws_accept: the request is not a WebSocket upgrade (GET with Upgrade: websocket) (NOT_ALLOWED)"
    );
    let mut up = req("GET", "/ws", "name=ann");
    up.headers.add("Upgrade", "websocket");
    let e = ctx.accept_websocket(&up, &["member", ""]).unwrap_err();
    assert!(e.is(Status::InvalidArgument), "{}", e);
    let e = ctx.accept_websocket(&up, &["member"]).unwrap_err();
    assert_eq!(e.to_string(), "dowasm: ws_accept: NOT_ALLOWED");
    assert!(ctx
        .accept_websocket(&up, &[])
        .unwrap_err()
        .is(Status::NotAllowed));
}

#[test]
fn websocket_limits() {
    assert_eq!(
        (
            MAX_SOCKET_TAGS,
            MAX_TAG_SIZE,
            MAX_ATTACHMENT_SIZE,
            MAX_CLOSE_REASON_SIZE,
            MAX_AUTO_RESPONSE
        ),
        (10, 256, 16384, 123, 2048)
    );
    assert_eq!(Status::LimitExceeded.code(), 16);
    assert_eq!(Status::LimitExceeded.name(), "LIMIT_EXCEEDED");
}

#[test]
fn websocket_calls_fail_without_a_host() {
    let ctx = Context::new();
    let ws = WebSocket::from_id(7);
    assert_eq!(ws.id(), 7);
    assert!(WebSocket::from_id(3) < ws, "sockets order by ID");

    for (e, op) in [
        (ws.send_text("hi").unwrap_err(), "ws_send"),
        (ws.send_binary(b"\x00").unwrap_err(), "ws_send"),
        (ws.close(1000, "bye").unwrap_err(), "ws_close"),
        (ws.tags().unwrap_err(), "ws_tags"),
        (ws.attachment().unwrap_err(), "ws_attachment_get"),
        (ws.set_attachment(b"ann").unwrap_err(), "ws_attachment_set"),
        (
            ws.auto_response_time().unwrap_err(),
            "ws_auto_response_time",
        ),
        (ctx.websockets(None).unwrap_err(), "ws_list"),
        (ctx.websockets(Some("member")).unwrap_err(), "ws_list"),
        (
            ctx.set_websocket_auto_response("ping", "pong").unwrap_err(),
            "ws_auto_response",
        ),
        (
            ctx.set_websocket_auto_response("", "").unwrap_err(),
            "ws_auto_response",
        ),
    ] {
        assert!(e.is(Status::NotAllowed), "{}", e);
        assert_eq!(e.to_string(), format!("dowasm: {}: NOT_ALLOWED", op));
    }
    // No socket carries the empty tag: nothing to ask the host.
    assert_eq!(ctx.websockets(Some("")), Ok(vec![]));

    // Refused before calling the host.
    let e = ctx
        .websockets(Some(&"t".repeat(MAX_TAG_SIZE + 1)))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "dowasm: ws_list: tag is 257 bytes; the limit is 256 (INVALID_ARGUMENT)"
    );
    for code in [0u16, 999, 1001, 1005, 2999, 5000, u16::MAX] {
        let e = ws.close(code, "").unwrap_err();
        assert!(e.is(Status::InvalidArgument), "{}", e);
        assert_eq!(
            e.to_string(),
            format!(
                "dowasm: ws_close: close code {} is not 1000 or 3000-4999 (INVALID_ARGUMENT)",
                code
            )
        );
    }
    for code in [1000u16, 3000, 4999] {
        assert!(ws.close(code, "").unwrap_err().is(Status::NotAllowed));
    }
    let reason = "r".repeat(MAX_CLOSE_REASON_SIZE);
    assert!(ws.close(4000, &reason).unwrap_err().is(Status::NotAllowed));
    let e = ws.close(4000, &(reason + "r")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "dowasm: ws_close: close reason is 124 bytes; the limit is 123 (INVALID_ARGUMENT)"
    );
    let big = vec![0u8; MAX_ATTACHMENT_SIZE + 1];
    let e = ws.set_attachment(&big).unwrap_err();
    assert!(e.is(Status::ValueTooLarge), "{}", e);
    assert_eq!(
        e.to_string(),
        "dowasm: ws_attachment_set: attachment is 16385 bytes; the limit is 16384 (VALUE_TOO_LARGE)"
    );
    assert!(ws
        .set_attachment(&big[1..])
        .unwrap_err()
        .is(Status::NotAllowed));
    let long = "p".repeat(MAX_AUTO_RESPONSE + 1);
    let e = ctx.set_websocket_auto_response(&long, "pong").unwrap_err();
    assert_eq!(
        e.to_string(),
        "dowasm: ws_auto_response: request is 2049 bytes; the limit is 2048 (VALUE_TOO_LARGE)"
    );
    let e = ctx.set_websocket_auto_response("ping", &long).unwrap_err();
    assert_eq!(
        e.to_string(),
        "dowasm: ws_auto_response: response is 2049 bytes; the limit is 2048 (VALUE_TOO_LARGE)"
    );
    // An empty request removes the pair, whatever the response.
    assert!(ctx
        .set_websocket_auto_response("", &long)
        .unwrap_err()
        .is(Status::NotAllowed));
}

struct NoSockets;

impl Object for NoSockets {
    fn new(_: &Context) -> Result<Self> {
        Ok(NoSockets)
    }
    fn fetch(&mut self, _: Request) -> Result<Response> {
        Ok(Response::no_content())
    }
}

#[test]
fn default_websocket_handlers() {
    let mut obj = NoSockets::new(&Context::new()).unwrap();
    let ws = WebSocket::from_id(1);
    let e = obj
        .websocket_message(ws, Message::Text("hi".into()))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "dowasm: this class does not handle WebSocket messages (override Object::websocket_message)"
    );
    assert_eq!(e.status(), None);
    assert!(obj.websocket_message(ws, Message::Binary(vec![1])).is_err());
    assert_eq!(obj.websocket_close(ws, 1000, "bye".into(), true), Ok(()));
    assert_eq!(obj.websocket_error(ws, "slow consumer".into()), Ok(()));
    // The exports before a successful dowasm_init (this thread has no instance) fail.
    assert_eq!(crate::__rt::ws_message(1, 1, 0), 1);
    assert_eq!(crate::__rt::ws_close(1, 1000, 1, 0), 1);
    assert_eq!(crate::__rt::ws_error(1, 0), 1);
}
