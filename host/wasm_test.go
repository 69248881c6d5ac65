package host

import "github.com/dowasm/dowasm/abi"

// A tiny WebAssembly binary writer for hand-made test modules: modules that a guest SDK would
// never produce (wrong versions, missing exports, wrong signatures, hostile pointers).

type wfunc struct {
	params, results []byte // value types: 0x7f i32, 0x7e i64
	body            []byte // instructions without the final end
}

type wimport struct {
	module, name    string
	params, results []byte
}

type wmodule struct {
	imports []wimport
	funcs   []wfunc
	exports map[string]int // function index (imports first)
	noMem   bool
	start   int // 1 + the index of the start function (0: none)
}

func uleb(v uint64) []byte {
	var out []byte
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			out = append(out, b|0x80)
			continue
		}
		return append(out, b)
	}
}

func sleb(v int64) []byte {
	var out []byte
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && b&0x40 == 0) || (v == -1 && b&0x40 != 0) {
			return append(out, b)
		}
		out = append(out, b|0x80)
	}
}

func wstr(s string) []byte { return append(uleb(uint64(len(s))), s...) }

func section(id byte, items ...[]byte) []byte {
	var body []byte
	body = append(body, uleb(uint64(len(items)))...)
	for _, it := range items {
		body = append(body, it...)
	}
	return append(append([]byte{id}, uleb(uint64(len(body)))...), body...)
}

func functype(params, results []byte) []byte {
	out := []byte{0x60}
	out = append(out, uleb(uint64(len(params)))...)
	out = append(out, params...)
	out = append(out, uleb(uint64(len(results)))...)
	return append(out, results...)
}

func (m wmodule) encode() []byte {
	out := []byte("\x00asm\x01\x00\x00\x00")
	var types [][]byte
	for _, im := range m.imports {
		types = append(types, functype(im.params, im.results))
	}
	for _, f := range m.funcs {
		types = append(types, functype(f.params, f.results))
	}
	if len(types) > 0 {
		out = append(out, section(1, types...)...)
	}
	if len(m.imports) > 0 {
		var ims [][]byte
		for i, im := range m.imports {
			e := append(wstr(im.module), wstr(im.name)...)
			e = append(e, 0x00)
			e = append(e, uleb(uint64(i))...)
			ims = append(ims, e)
		}
		out = append(out, section(2, ims...)...)
	}
	if len(m.funcs) > 0 {
		var fs [][]byte
		for i := range m.funcs {
			fs = append(fs, uleb(uint64(len(m.imports)+i)))
		}
		out = append(out, section(3, fs...)...)
	}
	if !m.noMem {
		out = append(out, section(5, []byte{0x00, 0x01})...) // one memory, min 1 page
	}
	var exps [][]byte
	if !m.noMem {
		exps = append(exps, append(wstr("memory"), 0x02, 0x00))
	}
	for name, idx := range m.exports {
		exps = append(exps, append(append(wstr(name), 0x00), uleb(uint64(idx))...))
	}
	out = append(out, section(7, exps...)...)
	if m.start > 0 {
		s := uleb(uint64(m.start - 1))
		out = append(append(append(out, 8), uleb(uint64(len(s)))...), s...)
	}
	if len(m.funcs) > 0 {
		var bodies [][]byte
		for _, f := range m.funcs {
			b := append([]byte{0x00}, f.body...) // no locals
			b = append(b, 0x0b)
			bodies = append(bodies, append(uleb(uint64(len(b))), b...))
		}
		out = append(out, section(10, bodies...)...)
	}
	return out
}

const (
	i32 = 0x7f
	i64 = 0x7e
)

// Instructions.
func i32const(v int32) []byte { return append([]byte{0x41}, sleb(int64(v))...) }
func call(idx int) []byte     { return append([]byte{0x10}, uleb(uint64(idx))...) }
func i64const(v int64) []byte { return append([]byte{0x42}, sleb(v)...) }

var (
	opDrop        = []byte{0x1a}
	opUnreachable = []byte{0x00}
	opI32Ne       = []byte{0x47}
	opIf          = []byte{0x04, 0x40} // if with empty block type
	opEnd         = []byte{0x0b}
	opI32Add      = []byte{0x6a}
)

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// minimalGuest is a valid ABI v1 guest whose fetch runs body (which must leave an i32).
func minimalGuest(imports []wimport, fetchBody []byte) wmodule {
	n := len(imports)
	return wmodule{
		imports: imports,
		funcs: []wfunc{
			{}, // dowasm_abi_v1
			{results: []byte{i32}, body: i32const(0)},                    // dowasm_init
			{params: []byte{i32}, results: []byte{i32}, body: fetchBody}, // dowasm_fetch
		},
		exports: map[string]int{"dowasm_abi_v1": n, "dowasm_init": n + 1, "dowasm_fetch": n + 2},
	}
}

// abiImport declares the ABI host function name as an import with its table signature.
func abiImport(name string) wimport {
	f, ok := abi.HostFunc(name)
	if !ok {
		panic(name)
	}
	im := wimport{module: abi.ImportModule, name: name}
	for _, p := range f.Params {
		if p.Type == abi.I64 {
			im.params = append(im.params, i64)
		} else {
			im.params = append(im.params, i32)
		}
	}
	for range f.Results {
		im.results = append(im.results, i32)
	}
	return im
}

// startTrapGuest is a valid guest whose start function traps (its instantiation fails after its
// memory was made).
func startTrapGuest() []byte {
	m := minimalGuest(nil, i32const(0))
	m.funcs = append(m.funcs, wfunc{body: opUnreachable})
	m.start = len(m.funcs) // 1 + index of the function just added
	return m.encode()
}
