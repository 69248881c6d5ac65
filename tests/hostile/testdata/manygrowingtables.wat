;; Hostile guest: many growing tables (issue 12). As written it has one table, empty and without a
;; maximum; the test (module_test.go) repeats every line marked "each table" for tables $t0 ...
;; $t999. POST writes "attacked" under "v", then grows every table as far as the host lets it: by
;; 100,000 elements (which, granted to all, would take 800 MB per instance), then by 65,536,
;; 32,768, ... 1 elements at a time until table.grow answers -1 for each size, filling the new
;; elements with a function reference. It then fails the event with "tables hold N elements in
;; all". The host must keep the tables' sizes within its limit for all tables together and roll
;; the write back. PUT seeds "v" = "before"; GET answers the stored value.
(module
  (import "dowasm" "result_read" (func $result_read (param i32 i32) (result i32)))
  (import "dowasm" "response_set" (func $response_set (param i32 i32) (result i32)))
  (import "dowasm" "error_set" (func $error_set (param i32 i32) (result i32)))
  (import "dowasm" "storage_get" (func $storage_get (param i32 i32) (result i32)))
  (import "dowasm" "storage_put" (func $storage_put (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (table $t0 0 funcref) ;; each table
  (elem declare func $f)
  (data (i32.const 16) "v")
  (data (i32.const 32) "before")
  (data (i32.const 48) "attacked")
  (data (i32.const 1024) "tables hold ")
  (data (i32.const 1100) " elements in all")
  (func $f)
  (func (export "dowasm_abi_v1"))
  (func (export "dowasm_init") (result i32) (i32.const 0))
  (func (export "dowasm_fetch") (param $len i32) (result i32)
    (local $n i32)
    (local $p i32)
    (local $sum i32)
    (local $r funcref)
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
    ;; POST: write, then grow every table as far as it goes
    (drop (call $storage_put (i32.const 16) (i32.const 1) (i32.const 48) (i32.const 8)))
    ;; one ref.func: wazero allocates a function instance each time ref.func runs
    (local.set $r (ref.func $f))
    (drop (table.grow $t0 (local.get $r) (i32.const 100000))) (local.set $n (i32.const 65536)) (loop $halve0 (if (i32.lt_s (table.grow $t0 (local.get $r) (local.get $n)) (i32.const 0)) (then (local.set $n (i32.shr_u (local.get $n) (i32.const 1))))) (br_if $halve0 (local.get $n))) (local.set $sum (i32.add (local.get $sum) (table.size $t0))) ;; each table
    (local.set $p (call $itoa (i32.const 1036) (local.get $sum)))
    (memory.copy (local.get $p) (i32.const 1100) (i32.const 16))
    (drop (call $error_set (i32.const 1024) (i32.sub (i32.add (local.get $p) (i32.const 16)) (i32.const 1024))))
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
