//go:build wasm

package dowasm

// The guest exports of ABI v1. They live in the SDK so a class only calls Register.

//go:wasmexport dowasm_abi_v1
func exportABIv1() {}

//go:wasmexport dowasm_init
func exportInit() int32 { return runInit() }

//go:wasmexport dowasm_fetch
func exportFetch(reqLen int32) int32 { return runFetch(reqLen) }
