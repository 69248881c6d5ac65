// Package abi is the single source of truth for the contract between the dowasm host and its
// WebAssembly guests: every host function a guest may import, every function a guest exports,
// their WebAssembly signatures, the status codes, and the byte layouts that cross the boundary.
//
// ABI.md (beside this file) is the prose form of this table; tests check that the two agree,
// that the host binds exactly these functions, and that every compiled guest imports and
// exports only what is listed here with the same signatures.
package abi

import (
	"fmt"
	"strings"
)

// MaxAlarmRetries is how many times a failed alarm handler is retried before the alarm is dropped, and
// AlarmBackoffMs the first retry's delay (doubling each time, with ±25% jitter).
const (
	MaxAlarmRetries = 6
	AlarmBackoffMs  = 2000
)

// Version is the ABI major version this host implements. A guest announces the version it was
// built for by exporting a function named VersionExportPrefix followed by the number.
const Version = 1

// VersionExportPrefix names the version marker export: ABI v1 guests export "dowasm_abi_v1".
const VersionExportPrefix = "dowasm_abi_v"

// ImportModule is the module name under which host functions are imported.
const ImportModule = "dowasm"

// ValType is a WebAssembly value type used in a signature.
type ValType byte

const (
	I32 ValType = iota + 1
	I64
)

func (t ValType) String() string {
	switch t {
	case I32:
		return "i32"
	case I64:
		return "i64"
	}
	return fmt.Sprintf("valtype(%d)", byte(t))
}

// Param is a named parameter of a function.
type Param struct {
	Name string
	Type ValType
}

// Func describes one function crossing the boundary.
type Func struct {
	Name    string
	Params  []Param
	Results []ValType
	// Optional marks guest exports a guest may omit.
	Optional bool
	// Statuses lists the error statuses a host function can return (as -status).
	Statuses []Status
	Doc      string
}

// Signature renders the function as it appears in ABI.md headings:
// name(p1: i32, p2: i32) -> i32
func (f Func) Signature() string {
	var b strings.Builder
	b.WriteString(f.Name)
	b.WriteByte('(')
	for i, p := range f.Params {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.Name)
		b.WriteString(": ")
		b.WriteString(p.Type.String())
	}
	b.WriteByte(')')
	if len(f.Results) > 0 {
		b.WriteString(" -> ")
		for i, r := range f.Results {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(r.String())
		}
	}
	return b.String()
}

// TypeSignature renders only the types: (i32, i32) -> (i32). Used to compare with a compiled
// module, where parameter names do not exist.
func (f Func) TypeSignature() string {
	ps := make([]ValType, len(f.Params))
	for i, p := range f.Params {
		ps[i] = p.Type
	}
	return FormatTypes(ps, f.Results)
}

// FormatTypes renders a type signature as (i32, i32) -> (i32).
func FormatTypes(params, results []ValType) string {
	j := func(ts []ValType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = t.String()
		}
		return strings.Join(s, ", ")
	}
	return "(" + j(params) + ") -> (" + j(results) + ")"
}

// Status is the outcome of a host function. Host functions return an i32: a non-negative value
// is success (a length, a count or 0) and a negative value is -Status.
type Status int32

const (
	OK              Status = 0
	NotFound        Status = 1  // the key, name or result does not exist
	BadPointer      Status = 2  // a pointer/length pair lies outside guest memory
	KeyTooLarge     Status = 3  // a key is longer than MaxKeySize
	ValueTooLarge   Status = 4  // key plus value is longer than MaxEntrySize
	TooManyKeys     Status = 5  // a batch has more than MaxBatch keys
	InvalidArgument Status = 6  // a malformed encoding, bad flag or out-of-range number
	StorageFailure  Status = 7  // the database failed; the event will be rolled back
	NoTransaction   Status = 8  // txn_commit/txn_rollback without a matching txn_begin
	TooDeep         Status = 9  // explicit transactions nested deeper than MaxTxnDepth
	ResultTooLarge  Status = 10 // a result would exceed MaxResultSize
	NotAllowed      Status = 11 // the call is not allowed in this state (e.g. response_set outside fetch)
	EventCancelled  Status = 12 // the event's deadline passed or the server is shutting down
	CallCycle       Status = 13 // a call would wait on an object that is waiting on the caller
	CallFailed      Status = 14 // the called object's handler failed; its message is staged
	Overloaded      Status = 15 // the called object's queue is full
	LimitExceeded   Status = 16 // a per-object limit is reached (WebSockets per object)
)

var statusNames = map[Status]string{
	OK:              "OK",
	NotFound:        "NOT_FOUND",
	BadPointer:      "BAD_POINTER",
	KeyTooLarge:     "KEY_TOO_LARGE",
	ValueTooLarge:   "VALUE_TOO_LARGE",
	TooManyKeys:     "TOO_MANY_KEYS",
	InvalidArgument: "INVALID_ARGUMENT",
	StorageFailure:  "STORAGE_FAILURE",
	NoTransaction:   "NO_TRANSACTION",
	TooDeep:         "TOO_DEEP",
	ResultTooLarge:  "RESULT_TOO_LARGE",
	NotAllowed:      "NOT_ALLOWED",
	EventCancelled:  "EVENT_CANCELLED",
	CallCycle:       "CALL_CYCLE",
	CallFailed:      "CALL_FAILED",
	Overloaded:      "OVERLOADED",
	LimitExceeded:   "LIMIT_EXCEEDED",
}

// Statuses lists every status in numeric order.
func Statuses() []Status {
	out := make([]Status, 0, len(statusNames))
	for s := OK; int(s) < len(statusNames); s++ {
		out = append(out, s)
	}
	return out
}

func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("STATUS_%d", int32(s))
}

// Limits enforced by the host on every guest call.
const (
	MaxKeySize    = 2 << 10  // 2 KiB
	MaxEntrySize  = 2 << 20  // key + value: 2 MiB
	MaxBatch      = 128      // keys in one batch get/put/delete
	MaxTxnDepth   = 16       // nested explicit transactions
	MaxResultSize = 32 << 20 // one staged result (a list, a batch get)
	MaxHeaderSize = 64 << 10 // all response headers together
	MaxBodySize   = 32 << 20 // one response body
	MaxLogSize    = 16 << 10 // one log line
	MaxErrorSize  = 16 << 10 // one error message
	MaxCallDepth  = 16       // objects in one chain of calls (the first caller included)
	MaxMethodSize = 256      // an RPC method name

	MaxSocketTags      = 10       // tags on one WebSocket
	MaxTagSize         = 256      // one tag
	MaxAttachmentSize  = 16 << 10 // one WebSocket's attachment
	MaxCloseReasonSize = 123      // a WebSocket close reason (a control frame holds 125 bytes)
	MaxAutoResponse    = 2 << 10  // each side of the auto-response pair
)

// WebSocket message kinds (ws_send, dowasm_ws_message).
const (
	WSText   = 1
	WSBinary = 2
)

// Target kinds of the call target encoding.
const (
	TargetName = 0 // the object whose ID derives from a name
	TargetID   = 1 // an object ID in hex, as minted by the class's namespace
)

// List flags (storage_list's options encoding).
const (
	ListReverse    = 1 << 0
	ListStart      = 1 << 1
	ListStartAfter = 1 << 2
	ListEnd        = 1 << 3
	ListPrefix     = 1 << 4
)

// Log levels for the log host function.
const (
	LogDebug = 0
	LogInfo  = 1
	LogWarn  = 2
	LogError = 3
)

func p(name string) Param { return Param{Name: name, Type: I32} }

var ptrStatuses = []Status{BadPointer}

// HostFuncs are the functions the host provides under ImportModule. Every one returns an i32:
// non-negative on success, -Status on failure. None of them ever traps the guest for bad input.
var HostFuncs = []Func{
	{Name: "result_read", Params: []Param{p("ptr"), p("len")}, Results: []ValType{I32},
		Statuses: []Status{BadPointer, NotFound},
		Doc:      "Copies the staged result (the request of the current event, a value, a list) into guest memory at ptr, at most len bytes; returns the number copied."},
	{Name: "response_set", Params: []Param{p("ptr"), p("len")}, Results: []ValType{I32},
		Statuses: []Status{BadPointer, InvalidArgument, NotAllowed, ResultTooLarge},
		Doc:      "Sets the response of the current fetch event from an encoded response; the host copies it."},
	{Name: "error_set", Params: []Param{p("ptr"), p("len")}, Results: []ValType{I32},
		Statuses: []Status{BadPointer},
		Doc:      "Sets the message reported when the current handler returns a non-zero code; the host copies at most MaxErrorSize bytes."},
	{Name: "object_id", Results: []ValType{I32},
		Doc: "Stages the object's ID as 64 lowercase hex characters; returns 64."},
	{Name: "object_name", Results: []ValType{I32},
		Statuses: []Status{NotFound},
		Doc:      "Stages the name the object's ID was derived from; NOT_FOUND for IDs not made from a name."},
	{Name: "log", Params: []Param{p("level"), p("ptr"), p("len")}, Results: []ValType{I32},
		Statuses: []Status{BadPointer, InvalidArgument},
		Doc:      "Writes a line to the host's structured log, tagged with the class and object."},
	{Name: "storage_get", Params: []Param{p("key_ptr"), p("key_len")}, Results: []ValType{I32},
		Statuses: []Status{BadPointer, KeyTooLarge, NotFound, StorageFailure, EventCancelled},
		Doc:      "Stages the value stored under the key; returns its length."},
	{Name: "storage_put", Params: []Param{p("key_ptr"), p("key_len"), p("val_ptr"), p("val_len")}, Results: []ValType{I32},
		Statuses: []Status{BadPointer, KeyTooLarge, ValueTooLarge, StorageFailure, EventCancelled},
		Doc:      "Stores the value under the key inside the current transaction; the host copies both."},
	{Name: "storage_delete", Params: []Param{p("key_ptr"), p("key_len")}, Results: []ValType{I32},
		Statuses: []Status{BadPointer, KeyTooLarge, StorageFailure, EventCancelled},
		Doc:      "Deletes the key; returns 1 if it existed, 0 if not."},
	{Name: "storage_get_batch", Params: []Param{p("keys_ptr"), p("keys_len")}, Results: []ValType{I32},
		Statuses: []Status{BadPointer, InvalidArgument, TooManyKeys, KeyTooLarge, ResultTooLarge, StorageFailure, EventCancelled},
		Doc:      "Looks up an encoded key list; stages an encoded list of (found, value); returns its length."},
	{Name: "storage_put_batch", Params: []Param{p("entries_ptr"), p("entries_len")}, Results: []ValType{I32},
		Statuses: []Status{BadPointer, InvalidArgument, TooManyKeys, KeyTooLarge, ValueTooLarge, StorageFailure, EventCancelled},
		Doc:      "Stores an encoded entry list atomically (all or none)."},
	{Name: "storage_delete_batch", Params: []Param{p("keys_ptr"), p("keys_len")}, Results: []ValType{I32},
		Statuses: []Status{BadPointer, InvalidArgument, TooManyKeys, KeyTooLarge, StorageFailure, EventCancelled},
		Doc:      "Deletes an encoded key list; returns how many existed."},
	{Name: "storage_list", Params: []Param{p("opts_ptr"), p("opts_len")}, Results: []ValType{I32},
		Statuses: []Status{BadPointer, InvalidArgument, KeyTooLarge, ResultTooLarge, StorageFailure, EventCancelled},
		Doc:      "Lists entries in key byte order per the encoded options; stages an encoded entry list; returns its length."},
	{Name: "storage_delete_all", Results: []ValType{I32},
		Statuses: []Status{StorageFailure, EventCancelled},
		Doc:      "Deletes every key of the object inside the current transaction."},
	{Name: "txn_begin", Results: []ValType{I32},
		Statuses: []Status{TooDeep, StorageFailure, EventCancelled},
		Doc:      "Opens an explicit transaction nested in the event's own; returns the new depth (1 for the first)."},
	{Name: "txn_commit", Results: []ValType{I32},
		Statuses: []Status{NoTransaction, StorageFailure},
		Doc:      "Ends the innermost explicit transaction, keeping its writes in the event's transaction."},
	{Name: "txn_rollback", Results: []ValType{I32},
		Statuses: []Status{NoTransaction, StorageFailure},
		Doc:      "Discards every write made since the innermost txn_begin and ends that transaction."},
	{Name: "alarm_set", Params: []Param{{Name: "time_ms", Type: I64}}, Results: []ValType{I32},
		Statuses: []Status{InvalidArgument, NotAllowed, StorageFailure, EventCancelled},
		Doc:      "Sets the object's one alarm (replacing any) to time_ms, milliseconds since the Unix epoch, inside the current transaction."},
	{Name: "alarm_get", Results: []ValType{I32},
		Statuses: []Status{NotFound, StorageFailure, EventCancelled},
		Doc:      "Stages the alarm time as an 8-byte little-endian i64 (ms since the epoch); returns 8. NOT_FOUND when no alarm is set."},
	{Name: "alarm_delete", Results: []ValType{I32},
		Statuses: []Status{StorageFailure, EventCancelled},
		Doc:      "Deletes the alarm inside the current transaction; returns 1 if one was set, 0 if not."},
	{Name: "call_fetch", Params: []Param{p("target_ptr"), p("target_len"), p("req_ptr"), p("req_len")}, Results: []ValType{I32},
		Statuses: []Status{BadPointer, InvalidArgument, NotFound, CallCycle, TooDeep, Overloaded, CallFailed, EventCancelled, ResultTooLarge, NotAllowed},
		Doc:      "Sends an encoded request to another object (the encoded target) and waits; stages the encoded response; returns its length."},
	{Name: "call_rpc", Params: []Param{p("target_ptr"), p("target_len"), p("method_ptr"), p("method_len"), p("arg_ptr"), p("arg_len")}, Results: []ValType{I32},
		Statuses: []Status{BadPointer, InvalidArgument, NotFound, CallCycle, TooDeep, Overloaded, CallFailed, EventCancelled, ResultTooLarge, NotAllowed},
		Doc:      "Calls method with arg on another object and waits; stages the result bytes (or, with CALL_FAILED, the error message); returns its length."},
	{Name: "rpc_return", Params: []Param{p("ptr"), p("len")}, Results: []ValType{I32},
		Statuses: []Status{BadPointer, NotAllowed, ResultTooLarge},
		Doc:      "Sets the result of the current RPC event; the host copies it."},
	{Name: "ws_accept", Params: []Param{p("tags_ptr"), p("tags_len")}, Results: []ValType{I32},
		Statuses: []Status{BadPointer, InvalidArgument, NotAllowed, LimitExceeded},
		Doc:      "Accepts the current fetch's WebSocket upgrade with an encoded tag list; returns the new socket's ID (> 0). The upgrade happens when the event commits."},
	{Name: "ws_send", Params: []Param{p("socket"), p("kind"), p("ptr"), p("len")}, Results: []ValType{I32},
		Statuses: []Status{BadPointer, InvalidArgument, NotFound, ValueTooLarge, LimitExceeded},
		Doc:      "Sends a text (kind 1) or binary (kind 2) message to a socket; the host copies it and releases it after the event's commit."},
	{Name: "ws_close", Params: []Param{p("socket"), p("code"), p("reason_ptr"), p("reason_len")}, Results: []ValType{I32},
		Statuses: []Status{BadPointer, InvalidArgument, NotFound},
		Doc:      "Closes a socket with a code (1000 or 3000-4999) and a reason, after the event's commit and after the messages sent before it."},
	{Name: "ws_list", Params: []Param{p("tag_ptr"), p("tag_len")}, Results: []ValType{I32},
		Statuses: []Status{BadPointer, InvalidArgument},
		Doc:      "Stages the IDs of the object's open sockets (all of them when tag_len is 0, else those carrying the tag) as a socket list; returns its length."},
	{Name: "ws_tags", Params: []Param{p("socket")}, Results: []ValType{I32},
		Statuses: []Status{NotFound},
		Doc:      "Stages a socket's tags as a key list; returns its length."},
	{Name: "ws_attachment_set", Params: []Param{p("socket"), p("ptr"), p("len")}, Results: []ValType{I32},
		Statuses: []Status{BadPointer, NotFound, ValueTooLarge},
		Doc:      "Replaces a socket's attachment (at most 16 KiB; empty clears it) when the event commits. It survives hibernation."},
	{Name: "ws_attachment_get", Params: []Param{p("socket")}, Results: []ValType{I32},
		Statuses: []Status{NotFound},
		Doc:      "Stages a socket's attachment (as this event last set it); returns its length, 0 when there is none."},
	{Name: "ws_auto_response", Params: []Param{p("req_ptr"), p("req_len"), p("resp_ptr"), p("resp_len")}, Results: []ValType{I32},
		Statuses: []Status{BadPointer, ValueTooLarge},
		Doc:      "Sets the object's auto-response pair (each at most 2 KiB; req_len 0 removes it) when the event commits: a text message equal to the request is answered with the response by the host, without an event."},
	{Name: "ws_auto_response_time", Params: []Param{p("socket")}, Results: []ValType{I32},
		Statuses: []Status{NotFound},
		Doc:      "Stages the time of the socket's last auto-response as an 8-byte little-endian i64 (ms since the epoch); returns 8. NOT_FOUND if there was none."},
}

// GuestExports are the functions a guest exports. Memory must be exported as "memory".
var GuestExports = []Func{
	{Name: VersionExportPrefix + "1",
		Doc: "Version marker; never called. Its name tells the host which ABI the guest was built for."},
	{Name: "dowasm_init", Results: []ValType{I32},
		Doc: "Constructor: runs once per new instance before its first event (after _initialize, if exported). Non-zero fails the event."},
	{Name: "dowasm_fetch", Params: []Param{p("req_len")}, Results: []ValType{I32},
		Doc: "Handles an HTTP request staged as the current result (req_len bytes). Sets the response with response_set; returns 0, or non-zero to fail the event."},
	{Name: "dowasm_alarm", Params: []Param{p("retry_count"), p("is_retry")}, Results: []ValType{I32}, Optional: true,
		Doc: "Handles the object's alarm. retry_count is 0 on the first attempt; is_retry is 1 on retries. Returns 0, or non-zero to fail (the alarm is retried with backoff)."},
	{Name: "dowasm_rpc", Params: []Param{p("method_len"), p("arg_len")}, Results: []ValType{I32}, Optional: true,
		Doc: "Handles an RPC: the method name and the argument are staged back to back (method_len + arg_len bytes). Sets the result with rpc_return; returns 0, or non-zero to fail (the caller gets CALL_FAILED and the message)."},
	{Name: "dowasm_ws_message", Params: []Param{p("socket"), p("kind"), p("len")}, Results: []ValType{I32}, Optional: true,
		Doc: "Handles a WebSocket message (kind 1 text, 2 binary) staged as the current result (len bytes). Returns 0, or non-zero to fail the event (its writes and sends are dropped; the socket stays open)."},
	{Name: "dowasm_ws_close", Params: []Param{p("socket"), p("code"), p("was_clean"), p("reason_len")}, Results: []ValType{I32}, Optional: true,
		Doc: "Handles the end of a socket the client closed or lost: the close code (1005 none given, 1006 connection lost), whether the close handshake completed, and the reason staged (reason_len bytes)."},
	{Name: "dowasm_ws_error", Params: []Param{p("socket"), p("msg_len")}, Results: []ValType{I32}, Optional: true,
		Doc: "Handles the end of a socket the host closed because of an error (a slow consumer, a message over the size limit, a protocol error): the message is staged (msg_len bytes)."},
	{Name: "_initialize", Optional: true,
		Doc: "WASI reactor initializer (Go, TinyGo); called once right after instantiation when present."},
}

// HostFunc returns the host function named name.
func HostFunc(name string) (Func, bool) {
	for _, f := range HostFuncs {
		if f.Name == name {
			return f, true
		}
	}
	return Func{}, false
}

// GuestExport returns the guest export named name.
func GuestExport(name string) (Func, bool) {
	for _, f := range GuestExports {
		if f.Name == name {
			return f, true
		}
	}
	return Func{}, false
}
