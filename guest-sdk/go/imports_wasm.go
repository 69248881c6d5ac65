//go:build wasm

package dowasm

import "unsafe"

// The host functions of ABI v1 (abi/ABI.md), imported from module "dowasm". This is the only
// file that uses unsafe; every other file works with byte slices and strings.
//
// Every parameter is an i32 except alarm_set's time, an i64. Pointers are passed as
// unsafe.Pointer, which //go:wasmimport lowers to an i32 (wasm32 addresses); lengths as uint32,
// also an i32. Passing a pointer to a Go object is allowed for wasmimport calls: the collector
// does not move heap objects, the object stays reachable for the duration of the call, and the
// host copies what it needs before returning (ABI "Memory ownership"). Empty slices pass a nil
// pointer with length 0.

//go:wasmimport dowasm result_read
func hostResultRead(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport dowasm response_set
func hostResponseSet(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport dowasm error_set
func hostErrorSet(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport dowasm object_id
func hostObjectID() int32

//go:wasmimport dowasm object_name
func hostObjectName() int32

//go:wasmimport dowasm log
func hostLog(level int32, ptr unsafe.Pointer, n uint32) int32

//go:wasmimport dowasm storage_get
func hostStorageGet(kp unsafe.Pointer, kn uint32) int32

//go:wasmimport dowasm storage_put
func hostStoragePut(kp unsafe.Pointer, kn uint32, vp unsafe.Pointer, vn uint32) int32

//go:wasmimport dowasm storage_delete
func hostStorageDelete(kp unsafe.Pointer, kn uint32) int32

//go:wasmimport dowasm storage_get_batch
func hostStorageGetBatch(p unsafe.Pointer, n uint32) int32

//go:wasmimport dowasm storage_put_batch
func hostStoragePutBatch(p unsafe.Pointer, n uint32) int32

//go:wasmimport dowasm storage_delete_batch
func hostStorageDeleteBatch(p unsafe.Pointer, n uint32) int32

//go:wasmimport dowasm storage_list
func hostStorageList(p unsafe.Pointer, n uint32) int32

//go:wasmimport dowasm storage_delete_all
func hostStorageDeleteAll() int32

//go:wasmimport dowasm txn_begin
func hostTxnBegin() int32

//go:wasmimport dowasm txn_commit
func hostTxnCommit() int32

//go:wasmimport dowasm txn_rollback
func hostTxnRollback() int32

// alarm_set takes the time as an i64 (milliseconds since the Unix epoch): int64 lowers to i64.
//
//go:wasmimport dowasm alarm_set
func hostAlarmSet(timeMs int64) int32

//go:wasmimport dowasm alarm_get
func hostAlarmGet() int32

//go:wasmimport dowasm alarm_delete
func hostAlarmDelete() int32

//go:wasmimport dowasm call_fetch
func hostCallFetch(tp unsafe.Pointer, tn uint32, rp unsafe.Pointer, rn uint32) int32

//go:wasmimport dowasm call_rpc
func hostCallRPC(tp unsafe.Pointer, tn uint32, mp unsafe.Pointer, mn uint32, ap unsafe.Pointer, an uint32) int32

//go:wasmimport dowasm rpc_return
func hostRPCReturn(p unsafe.Pointer, n uint32) int32

//go:wasmimport dowasm ws_accept
func hostWSAccept(p unsafe.Pointer, n uint32) int32

//go:wasmimport dowasm ws_send
func hostWSSend(sock uint32, kind uint32, p unsafe.Pointer, n uint32) int32

//go:wasmimport dowasm ws_close
func hostWSClose(sock uint32, code uint32, p unsafe.Pointer, n uint32) int32

//go:wasmimport dowasm ws_list
func hostWSList(p unsafe.Pointer, n uint32) int32

//go:wasmimport dowasm ws_tags
func hostWSTags(sock uint32) int32

//go:wasmimport dowasm ws_attachment_set
func hostWSAttachmentSet(sock uint32, p unsafe.Pointer, n uint32) int32

//go:wasmimport dowasm ws_attachment_get
func hostWSAttachmentGet(sock uint32) int32

//go:wasmimport dowasm ws_auto_response
func hostWSAutoResponse(rp unsafe.Pointer, rn uint32, sp unsafe.Pointer, sn uint32) int32

//go:wasmimport dowasm ws_auto_response_time
func hostWSAutoResponseTime(sock uint32) int32

// The WASI realtime clock, for Now. The Go and TinyGo runtimes import it too (for time.Now);
// importing it here as well spares modules that do not use package time its ~250 KB.
//
//go:wasmimport wasi_snapshot_preview1 clock_time_get
func wasiClockTimeGet(id uint32, precision uint64, out unsafe.Pointer) uint32

const wasiClockRealtime = 0

var clockOut uint64

func ptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

func sptr(s string) unsafe.Pointer {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.StringData(s))
}

// rawABI wraps the imports with slices. The non-wasm build (imports_other.go) has the same
// methods, so the rest of the SDK compiles (and its pure parts test) on any platform.
type rawABI struct{}

var host rawABI

func (rawABI) resultRead(b []byte) int32  { return hostResultRead(ptr(b), uint32(len(b))) }
func (rawABI) responseSet(b []byte) int32 { return hostResponseSet(ptr(b), uint32(len(b))) }
func (rawABI) errorSet(s string) int32    { return hostErrorSet(sptr(s), uint32(len(s))) }
func (rawABI) objectID() int32            { return hostObjectID() }
func (rawABI) objectName() int32          { return hostObjectName() }
func (rawABI) log(level int32, s string) int32 {
	return hostLog(level, sptr(s), uint32(len(s)))
}
func (rawABI) get(k []byte) int32 { return hostStorageGet(ptr(k), uint32(len(k))) }
func (rawABI) put(k, v []byte) int32 {
	return hostStoragePut(ptr(k), uint32(len(k)), ptr(v), uint32(len(v)))
}
func (rawABI) del(k []byte) int32         { return hostStorageDelete(ptr(k), uint32(len(k))) }
func (rawABI) getBatch(b []byte) int32    { return hostStorageGetBatch(ptr(b), uint32(len(b))) }
func (rawABI) putBatch(b []byte) int32    { return hostStoragePutBatch(ptr(b), uint32(len(b))) }
func (rawABI) deleteBatch(b []byte) int32 { return hostStorageDeleteBatch(ptr(b), uint32(len(b))) }
func (rawABI) list(b []byte) int32        { return hostStorageList(ptr(b), uint32(len(b))) }
func (rawABI) deleteAll() int32           { return hostStorageDeleteAll() }
func (rawABI) txnBegin() int32            { return hostTxnBegin() }
func (rawABI) txnCommit() int32           { return hostTxnCommit() }
func (rawABI) txnRollback() int32         { return hostTxnRollback() }
func (rawABI) alarmSet(ms int64) int32    { return hostAlarmSet(ms) }
func (rawABI) alarmGet() int32            { return hostAlarmGet() }
func (rawABI) alarmDelete() int32         { return hostAlarmDelete() }
func (rawABI) callFetch(target, req []byte) int32 {
	return hostCallFetch(ptr(target), uint32(len(target)), ptr(req), uint32(len(req)))
}
func (rawABI) callRPC(target []byte, method string, arg []byte) int32 {
	return hostCallRPC(ptr(target), uint32(len(target)), sptr(method), uint32(len(method)), ptr(arg), uint32(len(arg)))
}
func (rawABI) rpcReturn(b []byte) int32   { return hostRPCReturn(ptr(b), uint32(len(b))) }
func (rawABI) wsAccept(tags []byte) int32 { return hostWSAccept(ptr(tags), uint32(len(tags))) }
func (rawABI) wsSend(sock, kind uint32, b []byte) int32 {
	return hostWSSend(sock, kind, ptr(b), uint32(len(b)))
}
func (rawABI) wsSendString(sock, kind uint32, s string) int32 {
	return hostWSSend(sock, kind, sptr(s), uint32(len(s)))
}
func (rawABI) wsClose(sock, code uint32, reason string) int32 {
	return hostWSClose(sock, code, sptr(reason), uint32(len(reason)))
}
func (rawABI) wsList(tag string) int32           { return hostWSList(sptr(tag), uint32(len(tag))) }
func (rawABI) wsTags(sock uint32) int32          { return hostWSTags(sock) }
func (rawABI) wsAttachmentGet(sock uint32) int32 { return hostWSAttachmentGet(sock) }
func (rawABI) wsAttachmentSet(sock uint32, b []byte) int32 {
	return hostWSAttachmentSet(sock, ptr(b), uint32(len(b)))
}
func (rawABI) wsAutoResponse(req, resp string) int32 {
	return hostWSAutoResponse(sptr(req), uint32(len(req)), sptr(resp), uint32(len(resp)))
}
func (rawABI) wsAutoResponseTime(sock uint32) int32 { return hostWSAutoResponseTime(sock) }

// nowNanos reads the WASI realtime clock in nanoseconds since the Unix epoch; 0 on an error.
func (rawABI) nowNanos() int64 {
	if wasiClockTimeGet(wasiClockRealtime, 0, unsafe.Pointer(&clockOut)) != 0 {
		return 0
	}
	return int64(clockOut)
}
