;; Hostile guest: a start function (the module's start section, run when an instance is created,
;; before dowasm_init) that loops forever. It must be stopped by the event's CPU limit like any
;; guest code, not only by the event timeout.
(module
  (memory (export "memory") 1)
  (func $start (loop $forever (br $forever)))
  (start $start)
  (func (export "dowasm_abi_v1"))
  (func (export "dowasm_init") (result i32) (i32.const 0))
  (func (export "dowasm_fetch") (param $len i32) (result i32) (i32.const 0))
)
