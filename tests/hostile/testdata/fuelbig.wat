;; Hostile guest: a loop calling a large function without loops or calls (issue 12). As written
;; $big is one round of straight-line arithmetic; the test (fuel_test.go) repeats the line marked
;; "each round" 8,000 times, about 100 KB of code. Before the meter charged code by its size, a
;; call cost one unit of fuel whatever its callee ran, so a loop calling $big ran on for tens of
;; seconds past its deadline. POST writes "attacked" under "v", then calls $big for ever: the
;; host must stop it at its event deadline and roll the write back. PUT seeds "v" = "before";
;; GET answers the stored value.
(module
  (import "dowasm" "result_read" (func $result_read (param i32 i32) (result i32)))
  (import "dowasm" "response_set" (func $response_set (param i32 i32) (result i32)))
  (import "dowasm" "storage_get" (func $storage_get (param i32 i32) (result i32)))
  (import "dowasm" "storage_put" (func $storage_put (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "v")
  (data (i32.const 32) "before")
  (data (i32.const 48) "attacked")
  (func (export "dowasm_abi_v1"))
  (func (export "dowasm_init") (result i32) (i32.const 0))
  (func (export "dowasm_fetch") (param $len i32) (result i32)
    (local $n i32) (local $x i64)
    ;; the request starts with the method: u32 length, then its bytes (at 260)
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
    ;; POST: write, then call $big for ever
    (drop (call $storage_put (i32.const 16) (i32.const 1) (i32.const 48) (i32.const 8)))
    (loop $forever
      (local.set $x (call $big (local.get $x)))
      (br $forever))
    (i32.const 0))
  (func $big (param $x i64) (result i64)
    (local.set $x (i64.xor (i64.mul (local.get $x) (i64.const 3)) (i64.shr_u (local.get $x) (i64.const 7)))) ;; each round
    (local.get $x))
)
