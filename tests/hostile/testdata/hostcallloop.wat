;; Hostile guest: a loop whose every iteration is an expensive host call. POST writes "attacked"
;; under "v", stores and reads back a 1 MiB value, then copies that staged 1 MiB result into its
;; memory forever (result_read). Each iteration costs the guest one unit of fuel but the host tens
;; of microseconds, so fuel alone (a refill per ~10^6 iterations) would let it run for a minute:
;; the host must also check the event's deadline in its host functions. PUT seeds "v" =
;; "before"; GET answers the stored value.
(module
  (import "dowasm" "result_read" (func $result_read (param i32 i32) (result i32)))
  (import "dowasm" "response_set" (func $response_set (param i32 i32) (result i32)))
  (import "dowasm" "storage_get" (func $storage_get (param i32 i32) (result i32)))
  (import "dowasm" "storage_put" (func $storage_put (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 20) ;; the value is the 1 MiB at 64 KiB
  (data (i32.const 16) "v")
  (data (i32.const 20) "big")
  (data (i32.const 32) "before")
  (data (i32.const 48) "attacked")
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
    (if (i32.eq (i32.load8_u (i32.const 261)) (i32.const 85)) ;; 'PU': seed "before"
      (then (return (call $storage_put (i32.const 16) (i32.const 1) (i32.const 32) (i32.const 6)))))
    ;; POST: write, stage 1 MiB, then copy it forever
    (drop (call $storage_put (i32.const 16) (i32.const 1) (i32.const 48) (i32.const 8)))
    (drop (call $storage_put (i32.const 20) (i32.const 3) (i32.const 65536) (i32.const 1048576)))
    (drop (call $storage_get (i32.const 20) (i32.const 3)))
    (loop $forever
      (drop (call $result_read (i32.const 65536) (i32.const 1048576)))
      (br $forever))
    (i32.const 0))
)
