;; Hostile guest: a constructor that never returns. dowasm_init writes "from-init" under "v" and
;; loops forever; every event must fail at its deadline with an error naming init, and write
;; nothing.
(module
  (import "dowasm" "storage_put" (func $storage_put (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "v")
  (data (i32.const 32) "from-init")
  (func (export "dowasm_abi_v1"))
  (func (export "dowasm_init") (result i32)
    (drop (call $storage_put (i32.const 16) (i32.const 1) (i32.const 32) (i32.const 9)))
    (loop $forever (br $forever))
    (i32.const 0))
  (func (export "dowasm_fetch") (param $len i32) (result i32) (i32.const 0))
)
