//go:build wasm

package dowasm

// The guest exports of ABI v1. They live in the SDK, not in the class's package main: a
// //go:wasmexport directive works in any package that is linked into the program (the Go
// toolchain exports it under the given name), so importing the SDK is enough and a class only
// calls Register. Standard Go also exports _initialize (the reactor initializer that runs package
// init functions, and so Register); the host calls it before dowasm_init.

//go:wasmexport dowasm_abi_v1
func exportABIv1() {}

//go:wasmexport dowasm_init
func exportInit() int32 { return runInit() }

//go:wasmexport dowasm_fetch
func exportFetch(reqLen int32) int32 { return runFetch(reqLen) }

// dowasm_alarm is exported by every module built with the SDK, whether or not its class handles
// alarms (an export cannot depend on the class), so the host would accept alarm_set from any of
// them: Storage.SetAlarm refuses instead when the class does not implement Alarmer.
//
//go:wasmexport dowasm_alarm
func exportAlarm(retryCount, isRetry int32) int32 { return runAlarm(retryCount, isRetry) }

// dowasm_rpc is exported by every module too: a call to a class that does not implement RPCer
// fails in the callee with a message saying so, which the caller receives as CALL_FAILED.
//
//go:wasmexport dowasm_rpc
func exportRPC(methodLen, argLen int32) int32 { return runRPC(methodLen, argLen) }

// The WebSocket handlers are exported by every module as well. A class that does not implement
// WebSocketHandler fails a message event with a message saying so; close and error events of
// such a class do nothing.
//
//go:wasmexport dowasm_ws_message
func exportWSMessage(sock, kind, n int32) int32 { return runWSMessage(sock, kind, n) }

//go:wasmexport dowasm_ws_close
func exportWSClose(sock, code, wasClean, reasonLen int32) int32 {
	return runWSClose(sock, code, wasClean, reasonLen)
}

//go:wasmexport dowasm_ws_error
func exportWSError(sock, msgLen int32) int32 { return runWSError(sock, msgLen) }
