//! JSON string literals, for building JSON bodies and messages by hand (the SDK has no
//! dependencies, so no serde). The Go SDK's `dowasm.AppendJSONString` escapes exactly the same
//! way, so objects written in either language produce the same bytes.

/// Appends `s` to `out` as a JSON string literal: `"` and `\` get a backslash; newline,
/// carriage return and tab become `\n`, `\r` and `\t`; the other bytes below 0x20 become
/// `\u00xx` (lowercase hex). Every other byte, including UTF-8 sequences and bytes that are not
/// valid UTF-8, is copied as it is.
///
/// ```ignore
/// let mut b = b"{\"name\":".to_vec();
/// dowasm::push_json_string(&mut b, "say \"hi\"\n");
/// b.push(b'}');
/// assert_eq!(b, br#"{"name":"say \"hi\"\n"}"#);
/// ```
pub fn push_json_string(out: &mut Vec<u8>, s: impl AsRef<[u8]>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let s = s.as_ref();
    out.reserve(s.len() + 2);
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            c if c < 0x20 => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(c >> 4) as usize]);
                out.push(HEX[(c & 15) as usize]);
            }
            c => out.push(c),
        }
    }
    out.push(b'"');
}
