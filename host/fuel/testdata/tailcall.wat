;; Endless mutual tail calls: no loop, and the stack never grows.
;; Needs wazero's experimental tail-call feature.
(module
  (func $ping (export "ping") (param $n i64) (result i64)
    (return_call $pong (i64.add (local.get $n) (i64.const 1))))
  (func $pong (param $n i64) (result i64)
    (return_call $ping (local.get $n)))
  ;; A finite tail-recursive count down, to check results.
  (func $count (export "count") (param $n i64) (param $acc i64) (result i64)
    (if (i64.eqz (local.get $n)) (then (return (local.get $acc))))
    (return_call $count (i64.sub (local.get $n) (i64.const 1))
                        (i64.add (local.get $acc) (local.get $n))))
)
