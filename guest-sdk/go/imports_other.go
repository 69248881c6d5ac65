//go:build !wasm

package dowasm

import "time"

// Outside WebAssembly there is no dowasm host: every host call fails with NOT_ALLOWED. This
// build exists so `go vet` and `go test` work on the SDK (and on classes) with the native
// toolchain; objects only run when compiled with GOOS=wasip1 GOARCH=wasm.

type rawABI struct{}

var host rawABI

const notAllowed = -int32(StatusNotAllowed)

func (rawABI) resultRead([]byte) int32  { return notAllowed }
func (rawABI) responseSet([]byte) int32 { return notAllowed }
func (rawABI) errorSet(string) int32    { return notAllowed }
func (rawABI) objectID() int32          { return notAllowed }
func (rawABI) objectName() int32        { return notAllowed }
func (rawABI) log(int32, string) int32  { return notAllowed }
func (rawABI) get([]byte) int32         { return notAllowed }
func (rawABI) put(_, _ []byte) int32    { return notAllowed }
func (rawABI) del([]byte) int32         { return notAllowed }
func (rawABI) getBatch([]byte) int32    { return notAllowed }
func (rawABI) putBatch([]byte) int32    { return notAllowed }
func (rawABI) deleteBatch([]byte) int32 { return notAllowed }
func (rawABI) list([]byte) int32        { return notAllowed }
func (rawABI) deleteAll() int32         { return notAllowed }
func (rawABI) txnBegin() int32          { return notAllowed }
func (rawABI) txnCommit() int32         { return notAllowed }
func (rawABI) txnRollback() int32       { return notAllowed }
func (rawABI) alarmSet(int64) int32     { return notAllowed }
func (rawABI) alarmGet() int32          { return notAllowed }
func (rawABI) alarmDelete() int32       { return notAllowed }

func (rawABI) callFetch(_, _ []byte) int32          { return notAllowed }
func (rawABI) callRPC([]byte, string, []byte) int32 { return notAllowed }
func (rawABI) rpcReturn([]byte) int32               { return notAllowed }

func (rawABI) wsAccept([]byte) int32                    { return notAllowed }
func (rawABI) wsSend(_, _ uint32, _ []byte) int32       { return notAllowed }
func (rawABI) wsSendString(_, _ uint32, _ string) int32 { return notAllowed }
func (rawABI) wsClose(_, _ uint32, _ string) int32      { return notAllowed }
func (rawABI) wsList(string) int32                      { return notAllowed }
func (rawABI) wsTags(uint32) int32                      { return notAllowed }
func (rawABI) wsAttachmentGet(uint32) int32             { return notAllowed }
func (rawABI) wsAttachmentSet(uint32, []byte) int32     { return notAllowed }
func (rawABI) wsAutoResponse(_, _ string) int32         { return notAllowed }
func (rawABI) wsAutoResponseTime(uint32) int32          { return notAllowed }

// The clock is the only host service with a native stand-in: the system clock.
func (rawABI) nowNanos() int64 { return time.Now().UnixNano() }
