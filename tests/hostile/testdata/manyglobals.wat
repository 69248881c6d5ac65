;; Hostile guest: many globals (issue 12). As written it has one mutable global; the test
;; (module_test.go) repeats every line marked "each global" for globals $g0 ... $g99999. wazero
;; spends about 90 bytes of host memory per global per instance, so 100,000 globals (a module of
;; about 500 KB, 5 bytes a global) cost about 9 MB per instance, and the 1,024 instances a host
;; keeps by default about 9 GB. The host must refuse the module when it is loaded, naming the
;; globals and the limit. Any request answers 200 "ok".
(module
  (import "dowasm" "response_set" (func $response_set (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $g0 (mut i32) (i32.const 0)) ;; each global
  (data (i32.const 512) "\c8\00\00\00\00\00\00\00\02\00\00\00ok")
  (func (export "dowasm_abi_v1"))
  (func (export "dowasm_init") (result i32) (i32.const 0))
  (func (export "dowasm_fetch") (param $len i32) (result i32)
    (global.set $g0 (i32.const 1))
    (call $response_set (i32.const 512) (i32.const 14)))
)
