;; Hostile guest: an alarm that always fails and re-arms itself. PUT seeds "v" = "before" and sets
;; the alarm 1 ms ahead (by the guest's WASI wall clock, which is the host's Clock). dowasm_alarm
;; writes "attacked" under "v", sets a new alarm 1 ms ahead and returns 1 ("alarm handler fails
;; on purpose"). The failure rolls back both the write and the new alarm, so the host's retry
;; schedule (2 s, 4 s, 8 s, ... then drop) must apply instead of a storm of 1 ms alarms.
;; GET answers the stored value.
(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "dowasm" "result_read" (func $result_read (param i32 i32) (result i32)))
  (import "dowasm" "response_set" (func $response_set (param i32 i32) (result i32)))
  (import "dowasm" "error_set" (func $error_set (param i32 i32) (result i32)))
  (import "dowasm" "storage_get" (func $storage_get (param i32 i32) (result i32)))
  (import "dowasm" "storage_put" (func $storage_put (param i32 i32 i32 i32) (result i32)))
  (import "dowasm" "alarm_set" (func $alarm_set (param i64) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "v")
  (data (i32.const 32) "before")
  (data (i32.const 48) "attacked")
  (data (i32.const 64) "alarm handler fails on purpose")
  (func (export "dowasm_abi_v1"))
  (func (export "dowasm_init") (result i32) (i32.const 0))
  (func (export "dowasm_fetch") (param $len i32) (result i32)
    (local $n i32)
    (drop (call $result_read (i32.const 256) (i32.const 16)))
    (if (i32.eq (i32.load8_u (i32.const 260)) (i32.const 71)) ;; 'G': answer the stored value
      (then
        (local.set $n (call $storage_get (i32.const 16) (i32.const 1)))
        (if (i32.lt_s (local.get $n) (i32.const 0)) (then (local.set $n (i32.const 0)))
          (else (drop (call $result_read (i32.const 524) (local.get $n)))))
        (i32.store (i32.const 512) (i32.const 200))
        (i32.store (i32.const 516) (i32.const 0))
        (i32.store (i32.const 520) (local.get $n))
        (return (call $response_set (i32.const 512) (i32.add (i32.const 12) (local.get $n))))))
    ;; PUT (and anything else): seed "before" and arm the alarm
    (drop (call $storage_put (i32.const 16) (i32.const 1) (i32.const 32) (i32.const 6)))
    (call $alarm_set (i64.add (call $now_ms) (i64.const 1))))
  (func (export "dowasm_alarm") (param $retry i32) (param $is_retry i32) (result i32)
    (drop (call $storage_put (i32.const 16) (i32.const 1) (i32.const 48) (i32.const 8)))
    (drop (call $alarm_set (i64.add (call $now_ms) (i64.const 1))))
    (drop (call $error_set (i32.const 64) (i32.const 30)))
    (i32.const 1))
  (func $now_ms (result i64)
    (drop (call $clock_time_get (i32.const 0) (i64.const 1000) (i32.const 128)))
    (i64.div_u (i64.load (i32.const 128)) (i64.const 1000000)))
)
