;; Hostile guest: a linear memory whose declared minimum (4,096 pages: 256 MiB) is above the
;; host's MemoryLimitPages. The host must refuse it when it is loaded (or when it is
;; instantiated), with an error naming the memory, never reserve it.
(module
  (memory (export "memory") 4096)
  (func (export "dowasm_abi_v1"))
  (func (export "dowasm_init") (result i32) (i32.const 0))
  (func (export "dowasm_fetch") (param $len i32) (result i32) (i32.const 0))
)
