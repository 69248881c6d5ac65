;; Hostile guest: one upgrade whose handler sends a 1 MiB message 1,500 times and ignores every
;; failure (each message differs in its first bytes, so no two are the same copy). The host holds
;; what an event sends until its commit: without a bound on it one request grows host memory by
;; 1.5 GB. It stores how many sends succeeded ("s") and the first failure's status ("f") and
;; accepts the socket anyway; POST answers both as two little-endian i32s.
(module
  (import "dowasm" "result_read" (func $result_read (param i32 i32) (result i32)))
  (import "dowasm" "response_set" (func $response_set (param i32 i32) (result i32)))
  (import "dowasm" "storage_get" (func $storage_get (param i32 i32) (result i32)))
  (import "dowasm" "storage_put" (func $storage_put (param i32 i32 i32 i32) (result i32)))
  (import "dowasm" "ws_accept" (func $ws_accept (param i32 i32) (result i32)))
  (import "dowasm" "ws_send" (func $ws_send (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 18)
  (data (i32.const 16) "sf")
  (func (export "dowasm_abi_v1"))
  (func (export "dowasm_init") (result i32) (i32.const 0))
  (func (export "dowasm_fetch") (param $len i32) (result i32)
    (local $sock i32) (local $i i32) (local $r i32) (local $ok i32) (local $first i32)
    (drop (call $result_read (i32.const 256) (i32.const 16)))
    (if (i32.eq (i32.load8_u (i32.const 260)) (i32.const 71)) ;; 'G': accept and flood
      (then
        (local.set $sock (call $ws_accept (i32.const 0) (i32.const 0)))
        (if (i32.lt_s (local.get $sock) (i32.const 0)) (then (return (local.get $sock))))
        (block $done
          (loop $send
            (br_if $done (i32.ge_u (local.get $i) (i32.const 1500)))
            (i32.store (i32.const 65536) (local.get $i))
            (local.set $r (call $ws_send (local.get $sock) (i32.const 2) (i32.const 65536) (i32.const 1048576)))
            (if (i32.eqz (local.get $r))
              (then (local.set $ok (i32.add (local.get $ok) (i32.const 1))))
              (else (if (i32.eqz (local.get $first)) (then (local.set $first (local.get $r))))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $send)))
        (i32.store (i32.const 128) (local.get $ok))
        (drop (call $storage_put (i32.const 16) (i32.const 1) (i32.const 128) (i32.const 4)))
        (i32.store (i32.const 128) (local.get $first))
        (drop (call $storage_put (i32.const 17) (i32.const 1) (i32.const 128) (i32.const 4)))
        (return (i32.const 0))))
    (i32.store (i32.const 512) (i32.const 200))
    (i32.store (i32.const 516) (i32.const 0))
    (i32.store (i32.const 520) (i32.const 8))
    (i32.store (i32.const 524) (call $get (i32.const 16)))
    (i32.store (i32.const 528) (call $get (i32.const 17)))
    (call $response_set (i32.const 512) (i32.const 20)))
  (func $get (param $k i32) (result i32)
    (i32.store (i32.const 128) (i32.const 0))
    (if (i32.eq (call $storage_get (local.get $k) (i32.const 1)) (i32.const 4))
      (then (drop (call $result_read (i32.const 128) (i32.const 4)))))
    (i32.load (i32.const 128)))
)
