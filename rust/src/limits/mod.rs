//! Rate limits, `store = "memory"`: one GCRA table per gateway instance, shared by its worker
//! processes through a file each of them maps (`gateway serve` creates it before Granian forks).
//!
//! # The algorithm
//! GCRA (the Generic Cell Rate Algorithm, ITU-T I.371; the "virtual scheduling" form): a key's
//! whole state is one time, its *theoretical arrival time* (TAT). With an emission interval
//! `T = period / N` and a tolerance `tau = burst * T`, a request at `now` is allowed when
//! `max(TAT, now) - now <= tau`, and then moves the TAT to `max(TAT, now) + T`. So `burst + 1`
//! requests pass at once and `N` per period after that, and a refused request knows exactly how long
//! to wait: `max(TAT, now) - now - tau`. A TAT at or before `now` is the same as no state at all,
//! which is what makes the table below safe to evict from.
//!
//! # The table
//! A file of a 64-byte header and `slots` 8-byte words, each read and written only with atomic
//! operations (compare-and-swap), so worker processes share it without a lock. A word holds a
//! 16-bit tag and a 48-bit TAT in microseconds of `CLOCK_MONOTONIC` (one clock for every process
//! of the machine; 48 bits last 8.9 years of uptime); 0 is an empty slot. A key is hashed with
//! SipHash-2-4 under a random 128-bit key made for each instance (stored in the header, so every
//! worker hashes alike): the low bits pick a bucket of 8 slots (one 64-byte cache line), the top
//! 16 bits are the tag. Raw key text is never stored.
//!
//! A key lives in the first slot of its bucket holding its tag; a new key takes the first slot
//! that is empty or whose TAT has passed (losing nothing: such a key is back to a full burst
//! anyway). When all 8 slots hold keys that are still counting — only under a flood of distinct
//! keys — the new key is *charged on a slot it shares* (chosen by its hash, so always the same
//! one) with that slot's key: both are then limited together, more strictly, never less. A key
//! that is being limited has a TAT in the future, so it can never be evicted. Memory is fixed
//! at creation: `64 + 8 * slots` bytes, whatever arrives.
//!
//! What can loosen a limit, and by how much: two worker processes seeing a new key at the same
//! instant with clocks a few microseconds apart can, at worst, give it two slots for the one burst
//! that follows (the later lookups find the first). Two keys with the same bucket and tag (a
//! chance of 2^-16 per pair in a bucket, not something an outsider can aim without the
//! instance's key) share one count: stricter, never looser.

use std::fs::OpenOptions;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::MmapMut;
use siphasher::sip::SipHasher24;
use std::hash::Hasher;

/// The first 8 bytes of a table file.
pub const MAGIC: &[u8; 8] = b"GWLIMIT1";
/// Header bytes before the first slot.
pub const HEADER_BYTES: usize = 64;
/// Slots per bucket: one 64-byte cache line; a key is looked up in these 8 only.
pub const BUCKET_SLOTS: usize = 8;
/// The fewest slots a table may have (one bucket would do, but tests want a few).
pub const MIN_SLOTS: u64 = 8;
/// The most slots a table may have: 2^26 (512 MiB).
pub const MAX_SLOTS: u64 = 1 << 26;
/// The largest TAT a word can hold (48 bits of microseconds).
pub const TAT_MAX: u64 = (1 << 48) - 1;

const TAG_SHIFT: u32 = 48;

/// What one check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is within the limit (and, when consuming, was counted).
    pub allowed: bool,
    /// Requests that would still pass right now after this one (0 when refused).
    pub remaining: u64,
    /// Microseconds until a request would pass again (0 when allowed).
    pub retry_after_us: u64,
    /// Microseconds until the key is back to its full burst (its TAT minus now).
    pub reset_us: u64,
}

/// Why a table cannot be created or opened.
#[derive(Debug)]
pub enum TableError {
    /// The file could not be created, opened, sized or mapped.
    Io(io::Error),
    /// The slot count is not a power of two within [`MIN_SLOTS`]..=[`MAX_SLOTS`].
    BadSlots(u64),
    /// The file is not a table (wrong magic, or a length that does not match its header).
    NotATable(String),
}

impl std::fmt::Display for TableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TableError::Io(e) => write!(f, "{e}"),
            TableError::BadSlots(n) => write!(
                f,
                "{n} slots: expected a power of two from {MIN_SLOTS} to {MAX_SLOTS}"
            ),
            TableError::NotATable(why) => write!(f, "not a rate-limit table: {why}"),
        }
    }
}

impl std::error::Error for TableError {}

impl From<io::Error> for TableError {
    fn from(e: io::Error) -> Self {
        TableError::Io(e)
    }
}

/// A fixed-size GCRA table in a shared file mapping. See the module documentation.
pub struct Table {
    map: MmapMut,
    slots: u64,
    k0: u64,
    k1: u64,
}

/// Microseconds of `CLOCK_MONOTONIC`: the one clock every process of the machine shares.
pub fn monotonic_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer; CLOCK_MONOTONIC exists on
    // every platform this builds for.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    debug_assert_eq!(rc, 0);
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000
}

fn file_len(slots: u64) -> u64 {
    HEADER_BYTES as u64 + 8 * slots
}

impl Table {
    /// Creates the table file at `path` (which must not exist; mode 0600) with `slots` slots and the
    /// instance's 16-byte SipHash `key`, and maps it.
    pub fn create(path: &Path, slots: u64, key: [u8; 16]) -> Result<Table, TableError> {
        if !slots.is_power_of_two() || !(MIN_SLOTS..=MAX_SLOTS).contains(&slots) {
            return Err(TableError::BadSlots(slots));
        }
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(path)?;
        // Zeros (every slot empty), with the pages reserved now: on tmpfs (/dev/shm) a sparse file
        // that cannot get a page later is a SIGBUS in whichever worker touches it first, so a full
        // filesystem must fail here, at start, instead.
        file.set_len(file_len(slots))?;
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: a valid open file descriptor and a length within the file.
            let rc = unsafe {
                libc::posix_fallocate(file.as_raw_fd(), 0, file_len(slots) as libc::off_t)
            };
            if rc != 0 {
                let _ = std::fs::remove_file(path);
                return Err(TableError::Io(io::Error::from_raw_os_error(rc)));
            }
        }
        // SAFETY: the file is ours (just created, 0600); every access to the slots goes through
        // atomics, and the header is written here once, before any other process opens it.
        let mut map = unsafe { MmapMut::map_mut(&file)? };
        map[..8].copy_from_slice(MAGIC);
        map[8..16].copy_from_slice(&slots.to_le_bytes());
        map[16..32].copy_from_slice(&key);
        map.flush()?;
        Ok(Table::from_map(map, slots))
    }

    /// Maps an existing table file made by [`Table::create`] (in another process).
    pub fn open(path: &Path) -> Result<Table, TableError> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let len = file.metadata()?.len();
        if len < HEADER_BYTES as u64 {
            return Err(TableError::NotATable(format!(
                "{len} bytes, less than its header"
            )));
        }
        // SAFETY: as in `create`: slots are only touched through atomics; the header is read-only
        // after creation.
        let map = unsafe { MmapMut::map_mut(&file)? };
        if &map[..8] != MAGIC {
            return Err(TableError::NotATable("wrong magic".into()));
        }
        let slots = u64::from_le_bytes(map[8..16].try_into().expect("8 bytes"));
        if !slots.is_power_of_two() || !(MIN_SLOTS..=MAX_SLOTS).contains(&slots) {
            return Err(TableError::BadSlots(slots));
        }
        if len != file_len(slots) {
            return Err(TableError::NotATable(format!(
                "{len} bytes for {slots} slots (expected {})",
                file_len(slots)
            )));
        }
        Ok(Table::from_map(map, slots))
    }

    fn from_map(map: MmapMut, slots: u64) -> Table {
        let k0 = u64::from_le_bytes(map[16..24].try_into().expect("8 bytes"));
        let k1 = u64::from_le_bytes(map[24..32].try_into().expect("8 bytes"));
        Table { map, slots, k0, k1 }
    }

    /// The number of slots.
    pub fn slots(&self) -> u64 {
        self.slots
    }

    /// The bytes the table takes: header and slots; fixed at creation.
    pub fn size_bytes(&self) -> u64 {
        file_len(self.slots)
    }

    /// Slots that currently hold a key whose TAT is after `now_us` (a key still counting).
    pub fn live(&self, now_us: u64) -> u64 {
        (0..self.slots as usize)
            .filter(|&i| {
                let w = self.slot(i).load(Ordering::Relaxed);
                w != 0 && (w & TAT_MAX) > now_us
            })
            .count() as u64
    }

    fn slot(&self, i: usize) -> &AtomicU64 {
        debug_assert!((i as u64) < self.slots);
        // SAFETY: the map is page-aligned and HEADER_BYTES is a multiple of 8, so every slot is an
        // aligned u64 inside the mapping, which lives as long as `self`. Shared mutation goes only
        // through the atomic (other processes do the same), never through a plain reference.
        unsafe { &*(self.map.as_ptr().add(HEADER_BYTES + 8 * i) as *const AtomicU64) }
    }

    /// The key's hash: its parts hashed one after the other, the same as hashing them joined.
    fn hash(&self, parts: &[&[u8]]) -> u64 {
        let mut h = SipHasher24::new_with_keys(self.k0, self.k1);
        for part in parts {
            h.write(part);
        }
        h.finish()
    }

    /// One GCRA check of the key made of `parts` (hashed as if joined: the caller can pass a fixed
    /// prefix and a value without joining them) at `now_us` (microseconds of [`monotonic_us`]) with
    /// an emission interval of `interval_us` (> 0) and a tolerance of `tolerance_us`
    /// (`burst * interval`). With `consume`, an allowed request is counted; without, nothing is
    /// written (a dry run).
    pub fn check(
        &self,
        parts: &[&[u8]],
        interval_us: u64,
        tolerance_us: u64,
        now_us: u64,
        consume: bool,
    ) -> Decision {
        let interval_us = interval_us.max(1);
        let h = self.hash(parts);
        let mut tag = h >> TAG_SHIFT;
        if tag == 0 {
            tag = 1;
        }
        let buckets = self.slots / BUCKET_SLOTS as u64;
        let base = ((h & (buckets - 1)) as usize) * BUCKET_SLOTS;
        // The shared slot when the bucket is full of live keys: the same one for this key every time.
        let overflow = base + ((h >> 32) as usize % BUCKET_SLOTS);
        loop {
            let mut own: Option<(usize, u64)> = None;
            let mut free: Option<(usize, u64)> = None;
            for i in base..base + BUCKET_SLOTS {
                let w = self.slot(i).load(Ordering::Acquire);
                if w != 0 && w >> TAG_SHIFT == tag {
                    own = Some((i, w));
                    break;
                }
                if free.is_none() && (w == 0 || (w & TAT_MAX) <= now_us) {
                    free = Some((i, w));
                }
            }
            // (slot, the word seen there, the TAT that counts for this key, the tag to write back)
            let (index, seen, tat, keep_tag) = match (own, free) {
                (Some((i, w)), _) => (i, w, w & TAT_MAX, tag),
                (None, Some((i, w))) => (i, w, 0, tag),
                (None, None) => {
                    let w = self.slot(overflow).load(Ordering::Acquire);
                    (overflow, w, w & TAT_MAX, w >> TAG_SHIFT)
                }
            };
            let start = tat.max(now_us);
            let ahead = start - now_us;
            if ahead > tolerance_us {
                return Decision {
                    allowed: false,
                    remaining: 0,
                    retry_after_us: ahead - tolerance_us,
                    reset_us: ahead,
                };
            }
            let next = start.saturating_add(interval_us).min(TAT_MAX);
            let reset_us = next - now_us;
            let decision = Decision {
                allowed: true,
                remaining: (tolerance_us + interval_us).saturating_sub(reset_us) / interval_us,
                retry_after_us: 0,
                reset_us,
            };
            if !consume {
                return decision;
            }
            let word = (keep_tag << TAG_SHIFT) | next;
            if self
                .slot(index)
                .compare_exchange(seen, word, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return decision;
            }
            // Another process changed the slot between the read and the write: look again.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "gw-limits-{}-{}-{}",
            std::process::id(),
            name,
            monotonic_us()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("table")
    }

    const SEC: u64 = 1_000_000;

    #[test]
    fn burst_plus_one_then_exact_retry_after() {
        let t = Table::create(&temp_path("burst"), 64, [7; 16]).unwrap();
        // 10/s, burst 4: 5 pass at once, the 6th waits exactly one interval (100 ms).
        let (iv, tol, now) = (SEC / 10, 4 * SEC / 10, 1000 * SEC);
        for n in 0..5 {
            let d = t.check(&[b"k"], iv, tol, now, true);
            assert!(d.allowed, "request {n}");
            assert_eq!(d.remaining, 4 - n);
        }
        let d = t.check(&[b"k"], iv, tol, now, true);
        assert!(!d.allowed);
        assert_eq!(d.retry_after_us, iv);
        assert_eq!(d.reset_us, 5 * iv);
        // Not counted while refused; one interval later exactly one more passes.
        assert!(!t.check(&[b"k"], iv, tol, now + iv - 1, true).allowed);
        assert!(t.check(&[b"k"], iv, tol, now + iv, true).allowed);
        assert!(!t.check(&[b"k"], iv, tol, now + iv, true).allowed);
        // Other keys are unaffected.
        assert!(t.check(&[b"other"], iv, tol, now, true).allowed);
    }

    #[test]
    fn dry_run_counts_nothing() {
        let t = Table::create(&temp_path("dry"), 64, [1; 16]).unwrap();
        for _ in 0..100 {
            assert!(t.check(&[b"k"], SEC, 0, 5 * SEC, false).allowed);
        }
        assert!(t.check(&[b"k"], SEC, 0, 5 * SEC, true).allowed);
        assert!(!t.check(&[b"k"], SEC, 0, 5 * SEC, true).allowed);
    }

    #[test]
    fn shared_between_two_mappings_of_one_file() {
        let p = temp_path("shared");
        let a = Table::create(&p, 64, [2; 16]).unwrap();
        let b = Table::open(&p).unwrap();
        let now = 50 * SEC;
        assert!(a.check(&[b"k"], SEC, SEC, now, true).allowed);
        assert!(b.check(&[b"k"], SEC, SEC, now, true).allowed);
        assert!(!a.check(&[b"k"], SEC, SEC, now, true).allowed);
        assert!(!b.check(&[b"k"], SEC, SEC, now, true).allowed);
    }

    #[test]
    fn flood_of_distinct_keys_keeps_size_and_never_frees_a_limited_key() {
        let p = temp_path("flood");
        let t = Table::create(&p, 64, [3; 16]).unwrap();
        let size = std::fs::metadata(&p).unwrap().len();
        assert_eq!(size, t.size_bytes());
        let now = 10 * SEC;
        // The hot key: 1 per 10 s, no burst; now limited.
        assert!(t.check(&[b"hot"], 10 * SEC, 0, now, true).allowed);
        for i in 0..100_000u32 {
            t.check(&[&i.to_le_bytes()], 10 * SEC, 0, now, true);
            assert!(!t.check(&[b"hot"], 10 * SEC, 0, now, true).allowed);
        }
        assert_eq!(std::fs::metadata(&p).unwrap().len(), size);
        assert_eq!(t.live(now), 64);
        // Each flooding key is refused on its second try too (it shares a count, never escapes it).
        for i in 0..1000u32 {
            assert!(!t.check(&[&i.to_le_bytes()], 10 * SEC, 0, now, true).allowed);
        }
        // After the hot key's interval it passes once more.
        assert!(
            t.check(&[b"hot"], 10 * SEC, 0, now + 10 * SEC, true)
                .allowed
        );
    }

    #[test]
    fn concurrent_threads_let_exactly_burst_plus_one_through() {
        let t = std::sync::Arc::new(Table::create(&temp_path("threads"), 1024, [4; 16]).unwrap());
        let now = 77 * SEC;
        let passed: u64 = (0..4)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || {
                    (0..1000)
                        .filter(|_| t.check(&[b"k"], SEC, 19 * SEC, now, true).allowed)
                        .count() as u64
                })
            })
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(passed, 20);
    }

    #[test]
    fn bad_files_and_sizes_are_refused() {
        assert!(matches!(
            Table::create(&temp_path("odd"), 100, [0; 16]),
            Err(TableError::BadSlots(100))
        ));
        let p = temp_path("exists");
        Table::create(&p, 64, [0; 16]).unwrap();
        assert!(matches!(
            Table::create(&p, 64, [0; 16]),
            Err(TableError::Io(_))
        ));
        let junk = temp_path("junk");
        std::fs::write(&junk, vec![0u8; 200]).unwrap();
        assert!(matches!(Table::open(&junk), Err(TableError::NotATable(_))));
    }

    #[test]
    fn hashing_is_keyed_per_instance() {
        let a = Table::create(&temp_path("ka"), 64, [5; 16]).unwrap();
        let b = Table::create(&temp_path("kb"), 64, [6; 16]).unwrap();
        assert_ne!(a.hash(&[b"same"]), b.hash(&[b"same"]));
        // Parts hash as if joined.
        assert_eq!(a.hash(&[b"sa", b"me"]), a.hash(&[b"same"]));
    }
}
