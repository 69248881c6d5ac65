package host

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/dowasm/dowasm/abi"
	"github.com/dowasm/dowasm/storage"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// hostFunc implements one entry of abi.HostFuncs. args are the call's parameters (i32, or i64 for times); the
// result is the i32 returned to the guest (>= 0 success, -status failure). It must never panic
// on guest input: every pointer goes through read/write, which check bounds.
type hostFunc func(in *instance, args []uint64) int32

// hostFuncs binds every ABI name to its implementation. TestHostBindingsMatchABI checks that
// this map and abi.HostFuncs have exactly the same names.
var hostFuncs = map[string]hostFunc{
	"result_read":           hfResultRead,
	"response_set":          hfResponseSet,
	"error_set":             hfErrorSet,
	"object_id":             hfObjectID,
	"object_name":           hfObjectName,
	"log":                   hfLog,
	"storage_get":           hfStorageGet,
	"storage_put":           hfStoragePut,
	"storage_delete":        hfStorageDelete,
	"storage_get_batch":     hfStorageGetBatch,
	"storage_put_batch":     hfStoragePutBatch,
	"storage_delete_batch":  hfStorageDeleteBatch,
	"storage_list":          hfStorageList,
	"storage_delete_all":    hfStorageDeleteAll,
	"txn_begin":             hfTxnBegin,
	"txn_commit":            hfTxnCommit,
	"txn_rollback":          hfTxnRollback,
	"alarm_set":             hfAlarmSet,
	"alarm_get":             hfAlarmGet,
	"alarm_delete":          hfAlarmDelete,
	"call_fetch":            hfCallFetch,
	"call_rpc":              hfCallRPC,
	"rpc_return":            hfRPCReturn,
	"ws_accept":             hfWSAccept,
	"ws_send":               hfWSSend,
	"ws_close":              hfWSClose,
	"ws_list":               hfWSList,
	"ws_tags":               hfWSTags,
	"ws_attachment_set":     hfWSAttachmentSet,
	"ws_attachment_get":     hfWSAttachmentGet,
	"ws_auto_response":      hfWSAutoResponse,
	"ws_auto_response_time": hfWSAutoResponseTime,
}

type instanceKey struct{}

// startingKey holds the instance whose module's start function is running: limits apply to it,
// but no host function does (the instance is not ready).
type startingKey struct{}

func fail(s abi.Status) int32 { return -int32(s) }

// instantiateHostModule registers the "dowasm" module on the runtime, generated from the ABI
// table so the two cannot drift.
func instantiateHostModule(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(abi.ImportModule)
	for _, f := range abi.HostFuncs {
		impl, ok := hostFuncs[f.Name]
		if !ok {
			return fmt.Errorf("host: no implementation for ABI function %s", f.Name)
		}
		params := make([]api.ValueType, len(f.Params))
		names := make([]string, len(f.Params))
		for i, p := range f.Params {
			params[i] = valType(p.Type)
			names[i] = p.Name
		}
		results := make([]api.ValueType, len(f.Results))
		for i, r := range f.Results {
			results[i] = valType(r)
		}
		b.NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, stack []uint64) {
				in, _ := ctx.Value(instanceKey{}).(*instance)
				if in == nil {
					stack[0] = api.EncodeI32(fail(abi.NotAllowed))
					return
				}
				enforceLimits(ctx, in)
				stack[0] = api.EncodeI32(impl(in, stack))
			}), params, results).
			WithParameterNames(names...).
			Export(f.Name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

func valType(t abi.ValType) api.ValueType {
	if t == abi.I64 {
		return api.ValueTypeI64
	}
	return api.ValueTypeI32
}

// read returns a view of guest memory (not a copy); ok is false when out of range.
func (in *instance) read(ptr, n uint64) ([]byte, bool) {
	return in.mod.Memory().Read(uint32(ptr), uint32(n))
}

// stage makes b the staged result and returns its length as the call's result.
func (in *instance) stage(b []byte) int32 {
	if len(b) > abi.MaxResultSize {
		in.staged, in.hasStaged = nil, false
		return fail(abi.ResultTooLarge)
	}
	in.staged, in.hasStaged = b, true
	return int32(len(b))
}

func (in *instance) clearStaged() { in.staged, in.hasStaged = in.staged[:0], false }

// storageStatus maps a storage error to a status; database failures are remembered so the
// event fails even if the guest ignores the status (its transaction may be unusable).
func (in *instance) storageStatus(err error) int32 {
	switch {
	case errors.Is(err, storage.ErrKeyTooLarge):
		return fail(abi.KeyTooLarge)
	case errors.Is(err, storage.ErrValueTooLarge):
		return fail(abi.ValueTooLarge)
	case errors.Is(err, storage.ErrTooManyKeys):
		return fail(abi.TooManyKeys)
	case errors.Is(err, storage.ErrInvalid):
		return fail(abi.InvalidArgument)
	}
	if in.ev != nil && in.ev.storageErr == nil {
		in.ev.storageErr = err
	}
	return fail(abi.StorageFailure)
}

// db returns the database of the running event, or a status when storage is unusable now.
func (in *instance) db() (*storage.DB, int32) {
	if in.ev == nil || in.ev.db == nil {
		return nil, fail(abi.NotAllowed)
	}
	if in.ev.ctx.Err() != nil {
		return nil, fail(abi.EventCancelled)
	}
	return in.ev.db, 0
}

// writeDB is db for calls that write: the batch's transaction and the event's savepoint are
// opened at the first write (as workerd opens its implicit transaction), so read-only events
// cost no BEGIN/SAVEPOINT/COMMIT at all. Reads before it see the same connection's state.
func (in *instance) writeDB() (*storage.DB, int32) {
	db, s := in.db()
	if db == nil {
		return nil, s
	}
	if err := in.obj.beginWrite(db, in.ev); err != nil {
		return nil, in.storageStatus(err)
	}
	return db, 0
}

func checkKey(k []byte) int32 {
	if len(k) > abi.MaxKeySize {
		return fail(abi.KeyTooLarge)
	}
	return 0
}

func hfResultRead(in *instance, a []uint64) int32 {
	// The whole buffer the guest claims must be inside its memory, not just the part written.
	if uint64(uint32(a[0]))+uint64(uint32(a[1])) > uint64(in.mod.Memory().Size()) {
		return fail(abi.BadPointer)
	}
	if !in.hasStaged {
		return fail(abi.NotFound)
	}
	// (wazero hands i32 parameters over with undefined upper 32 bits: use the low 32 only)
	n := min(uint64(len(in.staged)), uint64(uint32(a[1])))
	if !in.mod.Memory().Write(uint32(a[0]), in.staged[:n]) {
		return fail(abi.BadPointer)
	}
	return int32(n)
}

func hfResponseSet(in *instance, a []uint64) int32 {
	if in.ev == nil || in.ev.kind != eventFetch {
		return fail(abi.NotAllowed)
	}
	b, ok := in.read(a[0], a[1])
	if !ok {
		return fail(abi.BadPointer)
	}
	if len(b) > abi.MaxBodySize+abi.MaxHeaderSize+1<<16 {
		return fail(abi.ResultTooLarge)
	}
	// Copy first: the response outlives this call and guest memory may change.
	resp, err := abi.DecodeResponse(append([]byte(nil), b...))
	if errors.Is(err, abi.ErrTooLarge) {
		return fail(abi.ResultTooLarge)
	}
	if err != nil {
		return fail(abi.InvalidArgument)
	}
	in.ev.resp = resp
	return 0
}

func hfErrorSet(in *instance, a []uint64) int32 {
	b, ok := in.read(a[0], a[1])
	if !ok {
		return fail(abi.BadPointer)
	}
	if len(b) > abi.MaxErrorSize {
		b = b[:abi.MaxErrorSize]
	}
	in.errMsg = string(b)
	return 0
}

func hfObjectID(in *instance, _ []uint64) int32 {
	return in.stage(append(in.staged[:0], in.obj.idHex...))
}

func hfObjectName(in *instance, _ []uint64) int32 {
	if in.obj.name == "" {
		in.clearStaged()
		return fail(abi.NotFound)
	}
	return in.stage(append(in.staged[:0], in.obj.name...))
}

func hfLog(in *instance, a []uint64) int32 {
	level := int32(a[0])
	b, ok := in.read(a[1], a[2])
	if !ok {
		return fail(abi.BadPointer)
	}
	var l slog.Level
	switch level {
	case abi.LogDebug:
		l = slog.LevelDebug
	case abi.LogInfo:
		l = slog.LevelInfo
	case abi.LogWarn:
		l = slog.LevelWarn
	case abi.LogError:
		l = slog.LevelError
	default:
		return fail(abi.InvalidArgument)
	}
	if len(b) > abi.MaxLogSize {
		b = b[:abi.MaxLogSize]
	}
	if !in.obj.guestLog(len(b)) {
		return 0 // dropped (guestLog reports it)
	}
	in.obj.class.rt.log.Log(context.Background(), l, string(b), "class", in.obj.class.name, "object", in.obj.idHex, "source", "guest")
	return 0
}

func hfStorageGet(in *instance, a []uint64) int32 {
	k, ok := in.read(a[0], a[1])
	if !ok {
		return fail(abi.BadPointer)
	}
	if s := checkKey(k); s != 0 {
		return s
	}
	db, s := in.db()
	if db == nil {
		return s
	}
	if e, ok := in.cache.get(k); ok {
		if !e.found {
			in.clearStaged()
			return fail(abi.NotFound)
		}
		return in.stage(append(in.staged[:0], e.val...))
	}
	v, found, err := db.Get(k)
	if err != nil {
		in.clearStaged()
		return in.storageStatus(err)
	}
	in.cache.set(k, v, found)
	if !found {
		in.clearStaged()
		return fail(abi.NotFound)
	}
	return in.stage(v)
}

func hfStoragePut(in *instance, a []uint64) int32 {
	k, ok := in.read(a[0], a[1])
	if !ok {
		return fail(abi.BadPointer)
	}
	v, ok := in.read(a[2], a[3])
	if !ok {
		return fail(abi.BadPointer)
	}
	if s := checkKey(k); s != 0 {
		return s
	}
	if len(k)+len(v) > abi.MaxEntrySize {
		return fail(abi.ValueTooLarge)
	}
	db, s := in.writeDB()
	if db == nil {
		return s
	}
	if err := db.Put(k, v); err != nil {
		in.cache.forget(k)
		return in.storageStatus(err)
	}
	in.cache.set(k, v, true)
	return 0
}

func hfStorageDelete(in *instance, a []uint64) int32 {
	k, ok := in.read(a[0], a[1])
	if !ok {
		return fail(abi.BadPointer)
	}
	if s := checkKey(k); s != 0 {
		return s
	}
	db, s := in.writeDB()
	if db == nil {
		return s
	}
	existed, err := db.Delete(k)
	if err != nil {
		in.cache.forget(k)
		return in.storageStatus(err)
	}
	in.cache.set(k, nil, false)
	if existed {
		return 1
	}
	return 0
}

// readKeys decodes a guest key list; keys alias guest memory and must be used before the call
// returns.
func (in *instance) readKeys(a []uint64) ([][]byte, int32) {
	b, ok := in.read(a[0], a[1])
	if !ok {
		return nil, fail(abi.BadPointer)
	}
	r := abi.Reader{B: b}
	n := r.U32("key count")
	if r.Err == nil && n > abi.MaxBatch {
		return nil, fail(abi.TooManyKeys)
	}
	keys, err := abi.DecodeKeys(b)
	if err != nil {
		return nil, fail(abi.InvalidArgument)
	}
	for _, k := range keys {
		if s := checkKey(k); s != 0 {
			return nil, s
		}
	}
	return keys, 0
}

func hfStorageGetBatch(in *instance, a []uint64) int32 {
	keys, s := in.readKeys(a)
	if s != 0 {
		return s
	}
	db, s := in.db()
	if db == nil {
		return s
	}
	// Values are appended one by one so the result never holds more than MaxResultSize
	// (128 values of 2 MiB would be 256 MiB).
	w := abi.Writer{B: in.staged[:0]}
	w.U32(uint32(len(keys)))
	for _, k := range keys {
		v, found, cached := []byte(nil), false, false
		if e, ok := in.cache.get(k); ok {
			v, found, cached = e.val, e.found, true
		} else {
			var err error
			if v, found, err = db.Get(k); err != nil {
				in.clearStaged()
				return in.storageStatus(err)
			}
		}
		if !cached {
			in.cache.set(k, v, found)
		}
		if len(w.B)+8+len(v) > abi.MaxResultSize {
			in.clearStaged()
			return fail(abi.ResultTooLarge)
		}
		if found {
			w.U32(1)
		} else {
			w.U32(0)
		}
		w.Bytes(v)
	}
	return in.stage(w.B)
}

func hfStoragePutBatch(in *instance, a []uint64) int32 {
	b, ok := in.read(a[0], a[1])
	if !ok {
		return fail(abi.BadPointer)
	}
	r := abi.Reader{B: b}
	if n := r.U32("entry count"); r.Err == nil && n > abi.MaxBatch {
		return fail(abi.TooManyKeys)
	}
	es, err := abi.DecodeEntries(b, abi.MaxBatch)
	if err != nil {
		return fail(abi.InvalidArgument)
	}
	entries := make([]storage.Entry, len(es))
	for i, e := range es {
		if s := checkKey(e.Key); s != 0 {
			return s
		}
		if len(e.Key)+len(e.Value) > abi.MaxEntrySize {
			return fail(abi.ValueTooLarge)
		}
		entries[i] = storage.Entry{Key: e.Key, Value: e.Value}
	}
	db, s := in.writeDB()
	if db == nil {
		return s
	}
	if err := db.PutMany(entries); err != nil {
		in.cache.clear()
		return in.storageStatus(err)
	}
	for _, e := range entries {
		in.cache.set(e.Key, e.Value, true)
	}
	return 0
}

func hfStorageDeleteBatch(in *instance, a []uint64) int32 {
	keys, s := in.readKeys(a)
	if s != 0 {
		return s
	}
	db, s := in.writeDB()
	if db == nil {
		return s
	}
	n, err := db.DeleteMany(keys)
	if err != nil {
		in.cache.clear()
		return in.storageStatus(err)
	}
	for _, k := range keys {
		in.cache.set(k, nil, false)
	}
	return int32(n)
}

var errResultTooLarge = errors.New("list result too large")

func hfStorageList(in *instance, a []uint64) int32 {
	b, ok := in.read(a[0], a[1])
	if !ok {
		return fail(abi.BadPointer)
	}
	o, err := abi.DecodeListOptions(b)
	if err != nil {
		return fail(abi.InvalidArgument)
	}
	for _, k := range [][]byte{o.Start, o.StartAfter, o.End, o.Prefix} {
		if s := checkKey(k); s != 0 {
			return s
		}
	}
	if o.Limit > 1<<30 {
		return fail(abi.InvalidArgument)
	}
	db, s := in.db()
	if db == nil {
		return s
	}
	opts := storage.ListOptions{
		Start: o.Start, StartAfter: o.StartAfter, End: o.End, Prefix: o.Prefix,
		HasStart: o.HasStart, HasStartAfter: o.HasStartAfter, HasEnd: o.HasEnd, HasPrefix: o.HasPrefix,
		Reverse: o.Reverse, Limit: int(o.Limit),
	}
	// Entries are appended straight into the staged buffer, leaving room for the count.
	w := abi.Writer{B: append(in.staged[:0], 0, 0, 0, 0)}
	var n uint32
	err = db.List(opts, func(k, v []byte) error {
		if len(w.B)+8+len(k)+len(v) > abi.MaxResultSize {
			return errResultTooLarge
		}
		w.Bytes(k)
		w.Bytes(v)
		n++
		return nil
	})
	if errors.Is(err, errResultTooLarge) {
		in.clearStaged()
		return fail(abi.ResultTooLarge)
	}
	if err != nil {
		in.clearStaged()
		return in.storageStatus(err)
	}
	w.B[0], w.B[1], w.B[2], w.B[3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	return in.stage(w.B)
}

func hfStorageDeleteAll(in *instance, _ []uint64) int32 {
	db, s := in.writeDB()
	if db == nil {
		return s
	}
	in.cache.clear()
	if err := db.DeleteAll(); err != nil {
		return in.storageStatus(err)
	}
	// deleteAll removes the alarm too (as on Cloudflare since 2023).
	if s := in.deleteAlarm(db); s < 0 {
		return s
	}
	return 0
}

func hfAlarmSet(in *instance, a []uint64) int32 {
	t := int64(a[0])
	if !in.module.hasAlarm {
		return fail(abi.NotAllowed)
	}
	r := in.obj.class.rt
	if t < 0 || t > r.cfg.Clock.Now().Add(r.cfg.AlarmHorizon).UnixMilli() {
		return fail(abi.InvalidArgument)
	}
	db, s := in.writeDB()
	if db == nil {
		return s
	}
	if err := db.SetMeta(metaAlarm, strconv.AppendInt(nil, t, 10)); err != nil {
		return in.storageStatus(err)
	}
	// A new alarm starts with no failed attempts.
	if _, err := db.DeleteMeta(metaAlarmRetry); err != nil {
		return in.storageStatus(err)
	}
	in.obj.alarmTouched = true
	in.ev.alarmDeleted = false
	return 0
}

func hfAlarmGet(in *instance, _ []uint64) int32 {
	db, s := in.db()
	if db == nil {
		return s
	}
	t, ok, err := readMetaInt(db, metaAlarm)
	if err != nil {
		return in.storageStatus(err)
	}
	if !ok {
		in.clearStaged()
		return fail(abi.NotFound)
	}
	return in.stage(binary.LittleEndian.AppendUint64(in.staged[:0], uint64(t)))
}

func hfAlarmDelete(in *instance, _ []uint64) int32 {
	db, s := in.db()
	if db == nil {
		return s
	}
	if _, ok, err := db.Meta(metaAlarm); err != nil {
		return in.storageStatus(err)
	} else if !ok {
		in.ev.alarmDeleted = true // deleting nothing still cancels a retry of the running alarm
		return 0
	}
	db, s = in.writeDB()
	if db == nil {
		return s
	}
	if s := in.deleteAlarm(db); s < 0 {
		return s
	}
	return 1
}

// deleteAlarm removes the object's alarm and its retry count in the current transaction.
func (in *instance) deleteAlarm(db *storage.DB) int32 {
	for _, k := range []string{metaAlarm, metaAlarmRetry} {
		if _, err := db.DeleteMeta(k); err != nil {
			return in.storageStatus(err)
		}
	}
	in.obj.alarmTouched = true
	in.ev.alarmDeleted = true
	return 0
}

func txnName(depth int) string { return "t" + strconv.Itoa(depth) }

func hfTxnBegin(in *instance, _ []uint64) int32 {
	db, s := in.writeDB()
	if db == nil {
		return s
	}
	if in.ev.txnDepth >= abi.MaxTxnDepth {
		return fail(abi.TooDeep)
	}
	if err := db.Savepoint(txnName(in.ev.txnDepth + 1)); err != nil {
		return in.storageStatus(err)
	}
	in.ev.txnDepth++
	return int32(in.ev.txnDepth)
}

func hfTxnCommit(in *instance, _ []uint64) int32 {
	if in.ev == nil || in.ev.db == nil || in.ev.txnDepth == 0 {
		return fail(abi.NoTransaction)
	}
	if err := in.ev.db.ReleaseSavepoint(txnName(in.ev.txnDepth)); err != nil {
		return in.storageStatus(err)
	}
	in.ev.txnDepth--
	return int32(in.ev.txnDepth)
}

func hfTxnRollback(in *instance, _ []uint64) int32 {
	if in.ev == nil || in.ev.db == nil || in.ev.txnDepth == 0 {
		return fail(abi.NoTransaction)
	}
	in.cache.clear() // it may hold writes being rolled back
	if err := in.ev.db.RollbackTo(txnName(in.ev.txnDepth)); err != nil {
		return in.storageStatus(err)
	}
	in.ev.txnDepth--
	return int32(in.ev.txnDepth)
}
