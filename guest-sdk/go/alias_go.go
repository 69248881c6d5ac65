//go:build !tinygo

package dowasm

// resultSlice returns a key or value decoded from a batch or listing result. Standard Go keeps it
// as a sub-slice of the result: one allocation serves the whole result.
func resultSlice(b []byte) []byte { return b }
