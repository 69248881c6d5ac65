;; Hostile guest: a table bomb. Its table declares no maximum (the host gives it MaxTableElems).
;; POST writes "attacked" under "v", then grows the table by 65,536 elements at a time until
;; table.grow answers -1, then by one element at a time until it answers -1 again, and fails the
;; event with "table.grow returned -1; table size in elements: N". The host must hold the limit
;; and roll the write back. PUT seeds "v" = "before"; GET answers the stored value.
(module
  (import "dowasm" "result_read" (func $result_read (param i32 i32) (result i32)))
  (import "dowasm" "response_set" (func $response_set (param i32 i32) (result i32)))
  (import "dowasm" "error_set" (func $error_set (param i32 i32) (result i32)))
  (import "dowasm" "storage_get" (func $storage_get (param i32 i32) (result i32)))
  (import "dowasm" "storage_put" (func $storage_put (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (table $t 1 funcref)
  (data (i32.const 16) "v")
  (data (i32.const 32) "before")
  (data (i32.const 48) "attacked")
  (data (i32.const 1024) "table.grow returned -1; table size in elements: ")
  (func (export "dowasm_abi_v1"))
  (func (export "dowasm_init") (result i32) (i32.const 0))
  (func (export "dowasm_fetch") (param $len i32) (result i32)
    (local $n i32)
    (local $p i32)
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
    ;; POST: write, then grow the table until refused
    (drop (call $storage_put (i32.const 16) (i32.const 1) (i32.const 48) (i32.const 8)))
    (loop $grow
      (br_if $grow (i32.ge_s (table.grow $t (ref.null func) (i32.const 65536)) (i32.const 0))))
    ;; then one element at a time up to the last one
    (loop $fill
      (br_if $fill (i32.ge_s (table.grow $t (ref.null func) (i32.const 1)) (i32.const 0))))
    (local.set $p (call $itoa (i32.const 1072) (table.size $t)))
    (drop (call $error_set (i32.const 1024) (i32.sub (local.get $p) (i32.const 1024))))
    (i32.const 1))
  ;; writes the decimal digits of $v at $p and returns the address after the last one
  (func $itoa (param $p i32) (param $v i32) (result i32)
    (local $end i32)
    (local $t i32)
    (local.set $end (local.get $p))
    (local.set $t (local.get $v))
    (loop $count
      (local.set $end (i32.add (local.get $end) (i32.const 1)))
      (local.set $t (i32.div_u (local.get $t) (i32.const 10)))
      (br_if $count (local.get $t)))
    (local.set $p (local.get $end))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p) (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
      (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
      (br_if $digit (local.get $v)))
    (local.get $end))
)
