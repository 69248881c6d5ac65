//go:build !tinygo

package dowasm

import (
	"runtime"
	"strconv"
	"strings"
)

// panicLocation names the function, file and line a recovered panic came from: the innermost
// frame outside the Go runtime and this SDK. Called from the deferred recover, while the
// panicking frames are still on the stack.
func panicLocation() string {
	var pcs [32]uintptr
	n := runtime.Callers(2, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if f.Function != "" && !strings.HasPrefix(f.Function, "runtime.") &&
			!strings.HasPrefix(f.Function, "github.com/dowasm/dowasm/guest-sdk/go.") {
			return f.Function + " (" + f.File + ":" + strconv.Itoa(f.Line) + ")"
		}
		if !more {
			return ""
		}
	}
}
