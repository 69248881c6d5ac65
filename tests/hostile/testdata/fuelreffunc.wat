;; Hostile guest: ref.func in a loop (issue 12). In wazero every ref.func executed allocates a
;; function instance that lives as long as the module instance: 10 million executions held
;; 310 MiB, so a guest could take gigabytes of host memory within its event time, for the price
;; of a cheap loop. POST executes ref.func 500,000 times and answers 204: nothing fails, so the
;; instance stays live (with whatever ref.func allocated). GET answers 200 with an empty body.
;; (binaryen declares $target for ref.func with a declarative element segment.)
(module
  (import "dowasm" "result_read" (func $result_read (param i32 i32) (result i32)))
  (import "dowasm" "response_set" (func $response_set (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func $target)
  (func (export "dowasm_abi_v1"))
  (func (export "dowasm_init") (result i32) (i32.const 0))
  (func (export "dowasm_fetch") (param $len i32) (result i32)
    (local $n i32)
    (drop (call $result_read (i32.const 256) (i32.const 16)))
    (if (i32.eq (i32.load8_u (i32.const 260)) (i32.const 71)) ;; 'G': 200, empty
      (then
        (i32.store (i32.const 512) (i32.const 200))
        (i32.store (i32.const 516) (i32.const 0))
        (i32.store (i32.const 520) (i32.const 0))
        (return (call $response_set (i32.const 512) (i32.const 12)))))
    (local.set $n (i32.const 500000))
    (loop $again
      (drop (ref.func $target))
      (br_if $again (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (i32.const 0))
)
