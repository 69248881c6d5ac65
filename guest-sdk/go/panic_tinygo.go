//go:build tinygo

package dowasm

// TinyGo has no runtime.CallersFrames; on WebAssembly a TinyGo panic usually traps before any
// deferred recover runs, so the host reports the trap instead.
func panicLocation() string { return "" }
