//! Compute-heavy guest functions for the fuel tests and benchmarks: every
//! export is deterministic, so the instrumented module must return exactly
//! what the original returns.
//!
//! Build: rustc --target wasm32-unknown-unknown -O --crate-type cdylib compute.rs
#![no_std]

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

const MAX_SORT: usize = 1 << 17;
const MAX_DATA: usize = 1 << 16;
const MAX_DIM: usize = 128;

static mut KEYS: [u32; MAX_SORT] = [0; MAX_SORT];
static mut DATA: [u8; MAX_DATA] = [0; MAX_DATA];
static mut MA: [f64; MAX_DIM * MAX_DIM] = [0.0; MAX_DIM * MAX_DIM];
static mut MB: [f64; MAX_DIM * MAX_DIM] = [0.0; MAX_DIM * MAX_DIM];
static mut MC: [f64; MAX_DIM * MAX_DIM] = [0.0; MAX_DIM * MAX_DIM];

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
}

/// Fills n keys from seed, sorts them and returns a position-weighted
/// checksum (or u64::MAX if the result is not sorted).
#[no_mangle]
pub extern "C" fn sort(n: u32, seed: u64) -> u64 {
    let n = (n as usize).min(MAX_SORT);
    let keys = unsafe { &mut KEYS[..n] };
    let mut rng = Lcg(seed);
    for k in keys.iter_mut() {
        *k = rng.next();
    }
    keys.sort_unstable();
    let mut sum = 0u64;
    for (i, k) in keys.iter().enumerate() {
        if i > 0 && keys[i - 1] > *k {
            return u64::MAX;
        }
        sum = sum.wrapping_mul(31).wrapping_add(*k as u64 ^ i as u64);
    }
    sum
}

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

fn compress(state: &mut [u32; 8], block: &[u8]) {
    let mut w = [0u32; 64];
    for i in 0..16 {
        w[i] = u32::from_be_bytes([block[4 * i], block[4 * i + 1], block[4 * i + 2], block[4 * i + 3]]);
    }
    for i in 16..64 {
        let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
        let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
    }
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
    for i in 0..64 {
        let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
        let ch = (e & f) ^ (!e & g);
        let t1 = h.wrapping_add(s1).wrapping_add(ch).wrapping_add(K[i]).wrapping_add(w[i]);
        let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
        let maj = (a & b) ^ (a & c) ^ (b & c);
        let t2 = s0.wrapping_add(maj);
        h = g;
        g = f;
        f = e;
        e = d.wrapping_add(t1);
        d = c;
        c = b;
        b = a;
        a = t1.wrapping_add(t2);
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *s = s.wrapping_add(v);
    }
}

/// SHA-256 of len pseudo-random bytes, chained rounds times; returns the
/// first 8 bytes of the final digest.
#[no_mangle]
pub extern "C" fn hash(len: u32, rounds: u32) -> u64 {
    let len = (len as usize).min(MAX_DATA) & !63;
    let data = unsafe { &mut DATA[..len] };
    let mut rng = Lcg(len as u64);
    for b in data.iter_mut() {
        *b = rng.next() as u8;
    }
    let mut state = [
        0x6a09e667u32, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ];
    for r in 0..rounds {
        for block in data.chunks_exact(64) {
            compress(&mut state, block);
        }
        data[(r as usize * 4) % len.max(4)..][..4].copy_from_slice(&state[0].to_le_bytes());
    }
    ((state[0] as u64) << 32) | state[1] as u64
}

/// Multiplies two n x n matrices of pseudo-random values; returns the sum
/// of the product's entries, as bits.
#[no_mangle]
pub extern "C" fn matmul(n: u32) -> u64 {
    let n = (n as usize).min(MAX_DIM);
    let (a, b, c) = unsafe { (&mut MA[..n * n], &mut MB[..n * n], &mut MC[..n * n]) };
    let mut rng = Lcg(n as u64);
    for i in 0..n * n {
        a[i] = (rng.next() % 1000) as f64 / 7.0;
        b[i] = (rng.next() % 1000) as f64 / 13.0;
        c[i] = 0.0;
    }
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            for j in 0..n {
                c[i * n + j] += aik * b[k * n + j];
            }
        }
    }
    let mut sum = 0.0f64;
    for v in c.iter() {
        sum += *v;
    }
    sum.to_bits()
}

/// Naive exponential Fibonacci.
#[no_mangle]
pub extern "C" fn fib(n: u32) -> u64 {
    if n < 2 {
        n as u64
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

fn op_add(x: u64) -> u64 { x.wrapping_add(0x9e3779b97f4a7c15) }
fn op_mul(x: u64) -> u64 { x.wrapping_mul(0xff51afd7ed558ccd) }
fn op_rot(x: u64) -> u64 { x.rotate_left(17) }
fn op_xor(x: u64) -> u64 { x ^ (x >> 29) }

static OPS: [fn(u64) -> u64; 4] = [op_add, op_mul, op_rot, op_xor];

/// Applies n operations picked through a table of function pointers, so
/// the module has an element segment and call_indirect.
#[no_mangle]
pub extern "C" fn ops(n: u32, seed: u64) -> u64 {
    let mut x = seed;
    for i in 0..n {
        // A volatile read keeps the optimizer from turning the table into
        // a switch.
        let f = unsafe { core::ptr::read_volatile(&OPS[(x as usize ^ i as usize) & 3]) };
        x = f(x);
    }
    x
}
