package dowasm

import "testing"

func TestJSONString(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", `""`},
		{"ann", `"ann"`},
		{`a"b`, `"a\"b"`},
		{`a\b`, `"a\\b"`},
		{"\n\r\t", `"\n\r\t"`},
		{"\x00\x01\x0b\x1b\x1f", `"\u0000\u0001\u000b\u001b\u001f"`},
		{" ~\x7f", "\" ~\x7f\""},                         // 0x20 and above are kept, DEL too
		{"h\u00e9 \u4e16 </>", "\"h\u00e9 \u4e16 </>\""}, // UTF-8 and HTML characters kept
		{"a\xffb\xe2\x82", "\"a\xffb\xe2\x82\""},         // invalid UTF-8 passed through
		{"\u2028\ufeff", "\"\u2028\ufeff\""},             // no \u escapes above 0x1f
	} {
		if got := JSONString(c.in); got != c.want {
			t.Errorf("JSONString(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := string(AppendJSONString([]byte("x:"), c.in)); got != "x:"+c.want {
			t.Errorf("AppendJSONString(%q) = %q, want %q", c.in, got, "x:"+c.want)
		}
	}
}
