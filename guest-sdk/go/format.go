package dowasm

import "strconv"

// A small formatter for Logf and panic messages, so the SDK does not need package fmt.

const hexDigits = "0123456789abcdef"

func appendf(b []byte, format string, args []any) []byte {
	next := 0
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 == len(format) {
			b = append(b, c)
			continue
		}
		i++
		verb := format[i]
		if verb == '%' {
			b = append(b, '%')
			continue
		}
		if next >= len(args) {
			b = append(b, "%!"...)
			b = append(b, verb)
			b = append(b, "(MISSING)"...)
			continue
		}
		a := args[next]
		next++
		switch verb {
		case 'q':
			b = strconv.AppendQuote(b, string(appendAny(nil, a)))
		case 'x':
			b = appendHex(b, a)
		default:
			b = appendAny(b, a)
		}
	}
	if next < len(args) {
		b = append(b, "%!(EXTRA"...)
		for _, a := range args[next:] {
			b = append(b, ' ')
			b = appendAny(b, a)
		}
		b = append(b, ')')
	}
	return b
}

func appendHex(b []byte, a any) []byte {
	var s string
	switch v := a.(type) {
	case int:
		return strconv.AppendInt(b, int64(v), 16)
	case int32:
		return strconv.AppendInt(b, int64(v), 16)
	case int64:
		return strconv.AppendInt(b, v, 16)
	case uint:
		return strconv.AppendUint(b, uint64(v), 16)
	case uint8:
		return strconv.AppendUint(b, uint64(v), 16)
	case uint32:
		return strconv.AppendUint(b, uint64(v), 16)
	case uint64:
		return strconv.AppendUint(b, v, 16)
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		return appendAny(b, a)
	}
	for i := 0; i < len(s); i++ {
		b = append(b, hexDigits[s[i]>>4], hexDigits[s[i]&15])
	}
	return b
}

// appendAny formats a value as fmt's %v does for the common types; other values print as "?".
func appendAny(b []byte, a any) []byte {
	switch v := a.(type) {
	case string:
		return append(b, v...)
	case []byte:
		return append(b, v...)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case int8:
		return strconv.AppendInt(b, int64(v), 10)
	case int16:
		return strconv.AppendInt(b, int64(v), 10)
	case int32:
		return strconv.AppendInt(b, int64(v), 10)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case uint:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint8:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint16:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint64:
		return strconv.AppendUint(b, v, 10)
	case float32:
		return strconv.AppendFloat(b, float64(v), 'g', -1, 32)
	case float64:
		return strconv.AppendFloat(b, v, 'g', -1, 64)
	case bool:
		return strconv.AppendBool(b, v)
	case error:
		return append(b, v.Error()...)
	case interface{ String() string }:
		return append(b, v.String()...)
	case nil:
		return append(b, "<nil>"...)
	}
	return append(b, '?')
}
