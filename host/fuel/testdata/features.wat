;; One function per WebAssembly 2.0 feature, each returning a value that
;; depends on every instruction it runs, so the test can compare the results
;; of the original and the instrumented module.
(module
  (type $binop (func (param i32 i32) (result i32)))
  (memory 1 1)
  (data $passive "0123456789abcdef")
  (table $funcs 4 8 funcref)
  (table $refs 2 16 externref)
  (elem $active (table $funcs) (i32.const 0) func $add $sub)
  (elem $later func $mul)
  (elem declare func $xor)
  (global $counter (mut i32) (i32.const 7))
  (global $fref funcref (ref.func $sub))

  (func $add (type $binop) (i32.add (local.get 0) (local.get 1)))
  (func $sub (type $binop) (i32.sub (local.get 0) (local.get 1)))
  (func $mul (type $binop) (i32.mul (local.get 0) (local.get 1)))
  (func $xor (type $binop) (i32.xor (local.get 0) (local.get 1)))

  ;; call_indirect through active, ref.func and global funcref entries;
  ;; table.get/set/size/grow; select with a type. (binaryen 108 cannot
  ;; assemble table.init, elem.drop or table.fill; fuel_test.go covers them.)
  (func (export "tables") (result i32)
    (local $acc i32)
    (table.set $funcs (i32.const 2) (ref.func $mul))
    (table.set $funcs (i32.const 3) (ref.func $xor))
    (local.set $acc (call_indirect $funcs (type $binop) (i32.const 10) (i32.const 3) (i32.const 0)))
    (local.set $acc (i32.add (local.get $acc) (call_indirect $funcs (type $binop) (i32.const 10) (i32.const 3) (i32.const 1))))
    (local.set $acc (i32.add (local.get $acc) (call_indirect $funcs (type $binop) (i32.const 10) (i32.const 3) (i32.const 2))))
    (local.set $acc (i32.add (local.get $acc) (call_indirect $funcs (type $binop) (i32.const 10) (i32.const 3) (i32.const 3))))
    (table.set $funcs (i32.const 0) (global.get $fref))
    (local.set $acc (i32.add (local.get $acc) (call_indirect $funcs (type $binop) (i32.const 100) (i32.const 1) (i32.const 0))))
    (local.set $acc (i32.add (local.get $acc) (i32.mul (i32.const 1000) (table.size $funcs))))
    (drop (table.grow $funcs (ref.null func) (i32.const 2)))
    (table.set $funcs (i32.const 5) (ref.func $add))
    (local.set $acc (i32.add (local.get $acc) (call_indirect $funcs (type $binop) (i32.const 1) (i32.const 1) (i32.const 5))))
    (local.set $acc (i32.add (local.get $acc) (i32.mul (i32.const 10000) (table.size $funcs))))
    (local.set $acc (i32.add (local.get $acc)
      (select (result i32) (i32.const 3) (i32.const 5) (ref.is_null (table.get $refs (i32.const 1))))))
    (local.get $acc))

  ;; Bulk memory and passive data.
  (func (export "bulk") (result i64)
    (memory.fill (i32.const 0) (i32.const 0x55) (i32.const 64))
    (memory.init $passive (i32.const 8) (i32.const 0) (i32.const 16))
    (memory.copy (i32.const 32) (i32.const 4) (i32.const 16))
    (data.drop $passive)
    (i64.add (i64.load (i32.const 32)) (i64.load (i32.const 40))))

  ;; Sign extension, saturating truncation, memory.size/grow, br_table,
  ;; globals, loads and stores of every width.
  (func (export "scalar") (param $x i32) (result i64)
    (local $acc i64)
    (local.set $acc (i64.extend_i32_s (i32.extend8_s (local.get $x))))
    (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_s (i32.extend16_s (local.get $x)))))
    (local.set $acc (i64.add (local.get $acc) (i64.extend32_s (i64.const 0x80000000))))
    (local.set $acc (i64.add (local.get $acc) (i64.trunc_sat_f64_s (f64.const 1e300))))
    (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (i32.trunc_sat_f32_u (f32.const -5)))))
    (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (memory.size))))
    (i32.store8 (i32.const 100) (local.get $x))
    (i32.store16 offset=2 (i32.const 100) (local.get $x))
    (i64.store32 align=2 (i32.const 104) (i64.const -1))
    (local.set $acc (i64.add (local.get $acc) (i64.load16_s (i32.const 100))))
    (local.set $acc (i64.add (local.get $acc) (i64.load32_u (i32.const 104))))
    (global.set $counter (i32.add (global.get $counter) (i32.const 1)))
    (block $b2 (block $b1 (block $b0
      (br_table $b0 $b1 $b2 (i32.and (local.get $x) (i32.const 3))))
      (local.set $acc (i64.add (local.get $acc) (i64.const 1))))
      (local.set $acc (i64.add (local.get $acc) (i64.const 10))))
    (i64.add (local.get $acc) (i64.extend_i32_u (global.get $counter))))

  ;; SIMD: constants, shuffles, lanes, lane loads and stores, arithmetic
  ;; whose opcodes need two LEB128 bytes.
  (func (export "simd") (param $x i32) (result i64)
    (local $v v128)
    (local.set $v (v128.const i32x4 1 2 3 4))
    (local.set $v (i32x4.add (local.get $v) (i32x4.splat (local.get $x))))
    (local.set $v (i8x16.shuffle 15 14 13 12 11 10 9 8 7 6 5 4 3 2 1 0 (local.get $v) (local.get $v)))
    (local.set $v (i16x8.add (local.get $v) (i16x8.splat (i32.const 3))))
    (local.set $v (i16x8.mul (local.get $v) (local.get $v)))
    (local.set $v (i32x4.replace_lane 2 (local.get $v) (i32.const 99)))
    (v128.store offset=16 (i32.const 0) (local.get $v))
    (local.set $v (v128.load32_lane 1 (i32.const 16) (local.get $v)))
    (v128.store64_lane 1 (i32.const 48) (local.get $v))
    (local.set $v (f64x2.promote_low_f32x4 (f32x4.convert_i32x4_s (local.get $v))))
    (i64.add
      (i64.add (i64x2.extract_lane 0 (i64x2.extend_low_i32x4_s (v128.load32_zero (i32.const 48))))
               (i64.trunc_sat_f64_s (f64x2.extract_lane 1 (local.get $v))))
      (i64.extend_i32_u (i8x16.bitmask (i8x16.abs (v128.load8_splat (i32.const 17)))))))

  ;; Loops with results. (Multi-value blocks and loops with parameters,
  ;; which binaryen's text format cannot express, are in fuel_test.go.)
  (func (export "loops") (param $n i32) (result i64)
    (local $acc i64) (local $i i32)
    (loop $l
      (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (i32.mul (local.get $i) (local.get $i)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (i64.add (local.get $acc)
      (loop $m (result i64) (i64.const 5))))
)
