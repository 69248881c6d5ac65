;; Hostile guest: a deep but finite recursion that succeeds. POST recurses 9,000 calls deep
;; (just under the host's 10,000-frame call depth limit)
;; (not a tail call), returns, and answers 204: nothing fails, so the instance stays live. The
;; call stack the recursion needed is host memory; it must not stay held by the idle instance.
;; GET answers 200 with an empty body (a cheap request that keeps the instance warm).
(module
  (import "dowasm" "result_read" (func $result_read (param i32 i32) (result i32)))
  (import "dowasm" "response_set" (func $response_set (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "dowasm_abi_v1"))
  (func (export "dowasm_init") (result i32) (i32.const 0))
  (func (export "dowasm_fetch") (param $len i32) (result i32)
    (drop (call $result_read (i32.const 256) (i32.const 16)))
    (if (i32.eq (i32.load8_u (i32.const 260)) (i32.const 71)) ;; 'G': 200, empty
      (then
        (i32.store (i32.const 512) (i32.const 200))
        (i32.store (i32.const 516) (i32.const 0))
        (i32.store (i32.const 520) (i32.const 0))
        (return (call $response_set (i32.const 512) (i32.const 12)))))
    (i32.store (i32.const 64) (call $down (i32.const 0)))
    (i32.const 0))
  (func $down (param $depth i32) (result i32)
    (if (result i32) (i32.ge_u (local.get $depth) (i32.const 9000))
      (then (i32.const 0))
      (else (i32.add (call $down (i32.add (local.get $depth) (i32.const 1))) (i32.const 1)))))
)
