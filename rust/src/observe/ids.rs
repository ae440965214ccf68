//! Random ids: request ids (128 bits) and W3C Trace Context trace ids (16 bytes) and span ids
//! (8 bytes), as lower-case hex, never all zeros (Trace Context §3.2.2.3, §3.2.2.4: an all-zero
//! trace-id or parent-id is invalid).
//!
//! The bytes come from the OS's CSPRNG (getrandom(2), what Python's `os.urandom` reads), read 4 KiB
//! at a time into a pool per thread: one system call per 256 request ids instead of one per id. The
//! ids need not be secret, but they must not collide across the workers of one instance, nor across
//! instances: a forked child never hands out its parent's pooled bytes (`pthread_atfork` bumps a
//! generation the pool checks).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

const POOL_BYTES: usize = 4096;
/// The longest id asked for: 32 bytes (64 hex digits).
pub const MAX_ID_BYTES: usize = 32;

/// Bumped in every forked child: a pool filled under another generation is the parent's.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
static AT_FORK: Once = Once::new();

extern "C" fn forked_child() {
    // Async-signal-safe: one atomic add, nothing else, in the child right after fork().
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}

struct Pool {
    bytes: Box<[u8; POOL_BYTES]>,
    used: usize,
    generation: u64,
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool { bytes: Box::new([0; POOL_BYTES]), used: POOL_BYTES, generation: u64::MAX });
}

fn fill(out: &mut [u8]) {
    AT_FORK.call_once(|| {
        // SAFETY: registers a handler that only touches an atomic; no prepare/parent handlers.
        unsafe {
            libc::pthread_atfork(None, None, Some(forked_child));
        }
    });
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let generation = FORK_GENERATION.load(Ordering::Relaxed);
        if pool.generation != generation || pool.used + out.len() > POOL_BYTES {
            getrandom::fill(&mut pool.bytes[..]).expect("the system's random source failed");
            pool.used = 0;
            pool.generation = generation;
        }
        let used = pool.used;
        out.copy_from_slice(&pool.bytes[used..used + out.len()]);
        pool.used += out.len();
    })
}

/// Fills `out` (2 to `2 * MAX_ID_BYTES` bytes, an even count) with lower-case hex digits of
/// `out.len() / 2` random bytes, never all zeros. Writes in place: an id costs no allocation.
pub fn fill_hex(out: &mut [u8]) {
    let nbytes = out.len() / 2;
    assert!(
        out.len() % 2 == 0 && (1..=MAX_ID_BYTES).contains(&nbytes),
        "an id is 1 to {MAX_ID_BYTES} bytes"
    );
    let mut raw = [0u8; MAX_ID_BYTES];
    let raw = &mut raw[..nbytes];
    loop {
        fill(raw);
        if raw.iter().any(|&b| b != 0) {
            break;
        }
    }
    hex::encode_to_slice(raw, out).expect("twice the length");
}

/// `nbytes` random bytes (1 to [`MAX_ID_BYTES`]) as `2 * nbytes` lower-case hex digits, never all
/// zeros.
pub fn random_hex(nbytes: usize) -> String {
    assert!(
        (1..=MAX_ID_BYTES).contains(&nbytes),
        "an id is 1 to {MAX_ID_BYTES} bytes"
    );
    let mut text = [0u8; 2 * MAX_ID_BYTES];
    let text = &mut text[..2 * nbytes];
    fill_hex(text);
    String::from_utf8(text.to_vec()).expect("hex is ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_lower_hex_of_the_asked_length_and_distinct() {
        let mut seen = HashSet::new();
        for _ in 0..20_000 {
            let id = random_hex(16);
            assert_eq!(id.len(), 32);
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{id}"
            );
            assert!(seen.insert(id));
        }
        assert_eq!(random_hex(8).len(), 16);
        assert_eq!(random_hex(MAX_ID_BYTES).len(), 64);
    }

    #[test]
    fn a_thread_draws_from_its_own_pool_and_ids_still_differ() {
        let a: Vec<String> = std::thread::spawn(|| (0..500).map(|_| random_hex(16)).collect())
            .join()
            .unwrap();
        let b: Vec<String> = (0..500).map(|_| random_hex(16)).collect();
        let all: HashSet<&String> = a.iter().chain(b.iter()).collect();
        assert_eq!(all.len(), 1000);
    }

    #[test]
    fn a_new_fork_generation_discards_the_pool() {
        let before = random_hex(8);
        forked_child(); // what pthread_atfork runs in a child
        POOL.with(|p| {
            assert_ne!(
                p.borrow().generation,
                FORK_GENERATION.load(Ordering::Relaxed)
            )
        });
        let after = random_hex(8);
        POOL.with(|p| {
            let p = p.borrow();
            assert_eq!(p.generation, FORK_GENERATION.load(Ordering::Relaxed));
            assert_eq!(p.used, 8, "refilled at the first id after the fork");
        });
        assert_ne!(before, after);
    }

    #[test]
    #[should_panic(expected = "an id is 1 to 32 bytes")]
    fn an_empty_id_is_a_bug() {
        random_hex(0);
    }

    #[test]
    #[should_panic(expected = "an id is 1 to 32 bytes")]
    fn an_id_over_32_bytes_is_a_bug() {
        random_hex(MAX_ID_BYTES + 1);
    }
}
