;; Hostile guest: many tables (issue 12). As written it has one table of 100,000 elements; the
;; test (module_test.go) repeats every line marked "each table" for tables $t0 ... $t999, so the
;; module declares 1,000 tables of 100,000 elements each: 800 MB of host memory per instance
;; (8 bytes an element) from a module of about 40 KB, each table within a per-table limit of
;; 2^20. POST fills every element of every table with a function reference, so that the memory is
;; really touched. (binaryen 108 cannot assemble table.fill: the guest fills with table.set loops,
;; which touch the same memory.) The host must refuse the module when it is loaded, naming the
;; tables, the elements they hold in all and the limit. GET answers 200 "ok".
(module
  (import "dowasm" "response_set" (func $response_set (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (table $t0 100000 funcref) ;; each table
  (elem declare func $f)
  (data (i32.const 512) "\c8\00\00\00\00\00\00\00\02\00\00\00ok")
  (func $f)
  (func (export "dowasm_abi_v1"))
  (func (export "dowasm_init") (result i32) (i32.const 0))
  (func (export "dowasm_fetch") (param $len i32) (result i32)
    (local $r funcref)
    (local $i i32)
    ;; one ref.func: wazero allocates a function instance each time ref.func runs
    (local.set $r (ref.func $f))
    (local.set $i (i32.const 0)) (loop $fill0 (table.set $t0 (local.get $i) (local.get $r)) (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $fill0 (i32.lt_u (local.get $i) (table.size $t0)))) ;; each table
    (call $response_set (i32.const 512) (i32.const 14)))
)
