;; Hostile guest: a constructor that always traps. dowasm_init writes "from-init" under "v", sets
;; the error message "constructor refuses to start" and executes unreachable. No event of this
;; object can ever run; each must fail quickly with an error naming init, write nothing, and the
;; host must not retry in a loop.
(module
  (import "dowasm" "error_set" (func $error_set (param i32 i32) (result i32)))
  (import "dowasm" "storage_put" (func $storage_put (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "v")
  (data (i32.const 32) "from-init")
  (data (i32.const 64) "constructor refuses to start")
  (func (export "dowasm_abi_v1"))
  (func (export "dowasm_init") (result i32)
    (drop (call $storage_put (i32.const 16) (i32.const 1) (i32.const 32) (i32.const 9)))
    (drop (call $error_set (i32.const 64) (i32.const 28)))
    (unreachable))
  (func (export "dowasm_fetch") (param $len i32) (result i32) (i32.const 0))
)
