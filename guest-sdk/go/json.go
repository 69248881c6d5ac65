package dowasm

// JSON string literals, for building JSON bodies and messages by hand (the SDK does not use
// encoding/json). The Rust SDK's dowasm::push_json_string escapes exactly the same way, so
// objects written in either language produce the same bytes.

// AppendJSONString appends s to b as a JSON string literal and returns the extended slice:
// '"' and '\' get a backslash; newline, carriage return and tab become \n, \r and \t; the
// other bytes below 0x20 become \u00xx (lowercase hex). Every other byte, including UTF-8
// sequences and bytes that are not valid UTF-8, is copied as it is.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			if c < 0x20 {
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
			} else {
				b = append(b, c)
			}
		}
	}
	return append(b, '"')
}

// JSONString returns s as a JSON string literal, escaped as AppendJSONString does: for
// example, the text say "hi" followed by a newline becomes `"say \"hi\"\n"`.
func JSONString(s string) string {
	return string(AppendJSONString(make([]byte, 0, len(s)+2), s))
}
