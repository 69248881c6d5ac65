;; Hostile guest: a table of 10,000,000 elements (80 MB of host memory per instance) declared up
;; front. The host must refuse the module when it is loaded, naming the table and its limit.
(module
  (memory (export "memory") 1)
  (table 10000000 funcref)
  (func (export "dowasm_abi_v1"))
  (func (export "dowasm_init") (result i32) (i32.const 0))
  (func (export "dowasm_fetch") (param $len i32) (result i32) (i32.const 0))
)
