//! Lookup structures a data-plane worker compiles from a [`crate::Snapshot`] into its own
//! memory: [`SaIndex`] (inbound SA by SPI and destination) and [`SpdLookup`] (policy by
//! packet). Both are immutable once built; a worker builds new ones when the generation
//! moves and swaps them in between bursts (`std::mem::replace`, or an `Arc` handed over a
//! channel by a builder thread).
//!
//! Both are open-addressing tables of 16-byte buckets (48 for IPv6 policies), probed linearly,
//! seeded with a random key per build, on transparent huge pages when large. Their burst variants compute every hash of a burst and prefetch the lines first, so
//! that the cache misses of a large table overlap instead of adding up. Nothing here allocates
//! or locks on the lookup path.

mod inbound;
mod spd;
mod table;

pub use inbound::SaIndex;
pub use spd::{FlowV4, FlowV6, SpdAction, SpdLookup, SpdMatch, SpdRule};

/// Largest burst the burst lookups process in one pass (longer slices are cut).
pub const LOOKUP_BURST: usize = 64;

/// Hints the CPU to bring the cache line at `p` into L1.
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // Safety: a prefetch is only a hint to the cache; it never faults and reads nothing
    // the program can observe, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Table size for `n` keys: a power of two of at least a cache line of buckets, load factor at
/// most 1/2.
fn table_size(n: usize) -> usize {
    (n.max(1) * 2).next_power_of_two().max(4)
}
