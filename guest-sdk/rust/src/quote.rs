//! Go-style string quoting, so that messages (errors, logs) read the same in every dowasm SDK.

/// Quotes `s` as Go's `strconv.Quote` does: double quotes; `\"` and `\\`; `\a \b \f \n \r \t
/// \v`; other control characters as `\xHH`; bytes that are not UTF-8 as `\xHH`; non-printable
/// characters as `\uHHHH` or `\UHHHHHHHH`. Printable characters are kept. The result matches Go
/// for ASCII, Latin-1 and every valid character except unassigned code points (which Go escapes
/// and this keeps).
pub fn quote(s: impl AsRef<[u8]>) -> String {
    let mut b = s.as_ref();
    let mut out = String::with_capacity(b.len() + 2);
    out.push('"');
    loop {
        match std::str::from_utf8(b) {
            Ok(valid) => {
                push_chars(&mut out, valid);
                break;
            }
            Err(e) => {
                let (valid, rest) = b.split_at(e.valid_up_to());
                push_chars(&mut out, std::str::from_utf8(valid).unwrap_or(""));
                // Go decodes an invalid sequence one byte at a time; every byte of Rust's
                // invalid sequence (a lead byte and continuation bytes) is invalid alone.
                let bad = e.error_len().unwrap_or(rest.len());
                for &c in &rest[..bad] {
                    push_hex(&mut out, "\\x", c as u32, 2);
                }
                b = &rest[bad..];
            }
        }
    }
    out.push('"');
    out
}

fn push_hex(out: &mut String, prefix: &str, v: u32, digits: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str(prefix);
    for i in (0..digits).rev() {
        out.push(HEX[((v >> (4 * i)) & 15) as usize] as char);
    }
}

fn push_chars(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            _ if is_print(c) => out.push(c),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            _ if (c as u32) < 0x20 || c as u32 == 0x7f => push_hex(out, "\\x", c as u32, 2),
            _ if (c as u32) < 0x10000 => push_hex(out, "\\u", c as u32, 4),
            _ => push_hex(out, "\\U", c as u32, 8),
        }
    }
}

/// Go's strconv.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space;
/// not control, format, private-use, separator (other than ' ') or noncharacter code points.
fn is_print(c: char) -> bool {
    let r = c as u32;
    if r < 0x80 {
        return (0x20..0x7f).contains(&r);
    }
    if r < 0x100 {
        return r >= 0xa1 && r != 0xad;
    }
    !matches!(r,
        // separators (Zs, Zl, Zp)
        0x1680 | 0x2000..=0x200a | 0x2028 | 0x2029 | 0x202f | 0x205f | 0x3000
        // format characters (Cf)
        | 0x0600..=0x0605 | 0x061c | 0x06dd | 0x070f | 0x0890 | 0x0891 | 0x08e2 | 0x180e
        | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f | 0xfeff
        | 0xfff9..=0xfffb | 0x110bd | 0x110cd | 0x13430..=0x1343f | 0x1bca0..=0x1bca3
        | 0x1d173..=0x1d17a | 0xe0001 | 0xe0020..=0xe007f
        // private use (Co) and noncharacters
        | 0xe000..=0xf8ff | 0xf0000..=0x10ffff | 0xfdd0..=0xfdef | 0xfffe | 0xffff)
}
