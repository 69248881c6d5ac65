;; Guests that never finish on their own, one per shape of runaway code.
(module
  ;; An empty infinite loop.
  (func (export "spin")
    (loop $l (br $l)))

  ;; Naive exponential recursion without a single loop: fib(60) makes about
  ;; 2^42 calls. WithCloseOnContextDone never interrupts this.
  (func $fib (export "fib") (param $n i64) (result i64)
    (if (result i64) (i64.lt_u (local.get $n) (i64.const 2))
      (then (local.get $n))
      (else
        (i64.add
          (call $fib (i64.sub (local.get $n) (i64.const 1)))
          (call $fib (i64.sub (local.get $n) (i64.const 2)))))))

  ;; Three nested loops of 2^30 iterations each.
  (func (export "nested") (result i64)
    (local $i i64) (local $j i64) (local $k i64) (local $acc i64)
    (loop $outer
      (local.set $j (i64.const 0))
      (loop $middle
        (local.set $k (i64.const 0))
        (loop $inner
          (local.set $acc (i64.add (local.get $acc) (i64.xor (local.get $k) (local.get $j))))
          (local.set $k (i64.add (local.get $k) (i64.const 1)))
          (br_if $inner (i64.lt_u (local.get $k) (i64.const 1073741824))))
        (local.set $j (i64.add (local.get $j) (i64.const 1)))
        (br_if $middle (i64.lt_u (local.get $j) (i64.const 1073741824))))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $outer (i64.lt_u (local.get $i) (i64.const 1073741824))))
    (local.get $acc))

  ;; A short loop inside an exponential recursion: rec(60) makes 2^61 calls,
  ;; each running a 100-iteration loop.
  (func $rec (export "rec_loops") (param $d i32) (result i64)
    (local $i i32) (local $acc i64)
    (loop $l
      (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 100))))
    (if (i32.gt_u (local.get $d) (i32.const 0))
      (then
        (local.set $acc
          (i64.add (local.get $acc)
            (i64.add
              (call $rec (i32.sub (local.get $d) (i32.const 1)))
              (call $rec (i32.sub (local.get $d) (i32.const 1))))))))
    (local.get $acc))
)
