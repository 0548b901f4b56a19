//! Rate-limited logging for the data path: [`rate_limited!`](crate::rate_limited) lets at most N
//! events per second through at each call site and counts the rest. The next event let through
//! carries `suppressed = <count>`; [`report_suppressed`] logs what is still pending (call it from
//! a housekeeping loop), and `rampart_log_suppressed_total{site}` counts them all.
//!
//! A check costs a clock read and two relaxed loads while under the limit; over it, one
//! relaxed add on a counter that belongs (in the common case) to the calling thread alone, so
//! that a flood seen by every worker does not turn one cache line into a lock. Nothing here
//! allocates except the first time a site suppresses something.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use crate::schema;
use crate::scrape::Scrape;

/// Counter shards per site; threads are spread over them.
const SHARDS: usize = 8;

#[repr(align(64))]
#[derive(Default)]
struct Shard(AtomicU64);

/// The state of one rate-limited call site (a `static`, made by the macro).
pub struct RateLimit {
    site: &'static str,
    per_second: u32,
    /// The second (since [`epoch`]) that `count` belongs to.
    second: AtomicU64,
    count: AtomicU32,
    pending: [Shard; SHARDS],
    reported: AtomicU64,
    registered: AtomicBool,
}

impl std::fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit").field("site", &self.site).field("per_second", &self.per_second).finish()
    }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn shard_index() -> usize {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static INDEX: usize = (NEXT.fetch_add(1, Ordering::Relaxed) as usize) % SHARDS;
    }
    INDEX.with(|i| *i)
}

fn sites() -> &'static Mutex<Vec<&'static RateLimit>> {
    static SITES: OnceLock<Mutex<Vec<&'static RateLimit>>> = OnceLock::new();
    SITES.get_or_init(|| Mutex::new(Vec::new()))
}

impl RateLimit {
    /// A limit of `per_second` events per second at `site`.
    pub const fn new(site: &'static str, per_second: u32) -> RateLimit {
        RateLimit {
            site,
            per_second,
            second: AtomicU64::new(0),
            count: AtomicU32::new(0),
            pending: [const { Shard(AtomicU64::new(0)) }; SHARDS],
            reported: AtomicU64::new(0),
            registered: AtomicBool::new(false),
        }
    }

    /// The call site's name (`module::path:line`).
    pub fn site(&self) -> &'static str {
        self.site
    }

    /// Lets one event through (`Some(n)`, with `n` events suppressed since the last one let
    /// through) or counts it as suppressed (`None`).
    #[inline]
    pub fn admit(&'static self) -> Option<u64> {
        self.admit_at(epoch().elapsed().as_secs())
    }

    /// [`RateLimit::admit`] at a given second (tests).
    pub fn admit_at(&'static self, now_second: u64) -> Option<u64> {
        let second = self.second.load(Ordering::Relaxed);
        if second != now_second {
            if self.second.compare_exchange(second, now_second, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
                self.count.store(0, Ordering::Relaxed);
            }
        } else if self.count.load(Ordering::Relaxed) >= self.per_second {
            self.suppress();
            return None;
        }
        if self.count.fetch_add(1, Ordering::Relaxed) < self.per_second {
            Some(self.take_pending())
        } else {
            self.suppress();
            None
        }
    }

    #[cold]
    fn suppress(&'static self) {
        self.pending[shard_index()].0.fetch_add(1, Ordering::Relaxed);
        if !self.registered.load(Ordering::Relaxed) && !self.registered.swap(true, Ordering::Relaxed) {
            sites().lock().unwrap_or_else(|p| p.into_inner()).push(self);
        }
    }

    fn take_pending(&self) -> u64 {
        let mut n = 0;
        for s in &self.pending {
            if s.0.load(Ordering::Relaxed) != 0 {
                n += s.0.swap(0, Ordering::Relaxed);
            }
        }
        if n != 0 {
            self.reported.fetch_add(n, Ordering::Relaxed);
        }
        n
    }

    /// Events suppressed at this site since the start.
    pub fn suppressed_total(&self) -> u64 {
        self.reported.load(Ordering::Relaxed) + self.pending.iter().map(|s| s.0.load(Ordering::Relaxed)).sum::<u64>()
    }
}

/// Logs, for every site with suppressed events not yet reported, one warning with the count,
/// and clears them. Call it every few seconds from a thread off the data path.
pub fn report_suppressed() {
    let list: Vec<&'static RateLimit> = sites().lock().unwrap_or_else(|p| p.into_inner()).clone();
    for site in list {
        let n = site.take_pending();
        if n != 0 {
            tracing::warn!(target: "rampart::ratelimit", site = site.site, suppressed = n, "log events suppressed by rate limit");
        }
    }
}

/// Adds `rampart_log_suppressed_total{site}` for every site that ever suppressed an event.
pub(crate) fn collect_suppressed(scrape: &mut Scrape<'_>) {
    let list: Vec<&'static RateLimit> = sites().lock().unwrap_or_else(|p| p.into_inner()).clone();
    for site in list {
        scrape.counter(&schema::LOG_SUPPRESSED, [site.site], site.suppressed_total());
    }
}

/// Logs a `tracing` event at most `per_second` times a second from this call site; the first
/// event after a suppression carries `suppressed = <count>`.
///
/// ```
/// # let spi = 7u32;
/// rampart_telemetry::rate_limited!(warn, 10, spi, "packet for an unknown SPI");
/// ```
#[macro_export]
macro_rules! rate_limited {
    ($level:ident, $per_second:expr, $($arg:tt)+) => {{
        static LIMIT: $crate::ratelimit::RateLimit =
            $crate::ratelimit::RateLimit::new(concat!(module_path!(), ":", line!()), $per_second);
        if let ::core::option::Option::Some(suppressed) = LIMIT.admit() {
            if suppressed == 0 {
                $crate::__private::tracing::$level!($($arg)+);
            } else {
                $crate::__private::tracing::$level!(suppressed, $($arg)+);
            }
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_second_and_reports_what_it_dropped() {
        static L: RateLimit = RateLimit::new("test:1", 3);
        let mut let_through = Vec::new();
        for i in 0..10 {
            if let Some(n) = L.admit_at(5) {
                let_through.push((i, n));
            }
        }
        assert_eq!(let_through, vec![(0, 0), (1, 0), (2, 0)]);
        assert_eq!(L.suppressed_total(), 7);
        // Next second: the first event carries the count.
        assert_eq!(L.admit_at(6), Some(7));
        assert_eq!(L.admit_at(6), Some(0));
        assert_eq!(L.suppressed_total(), 7);
        assert!(sites().lock().unwrap().iter().any(|s| s.site == "test:1"));
    }

    #[test]
    fn threads_count_every_suppressed_event() {
        static L: RateLimit = RateLimit::new("test:2", 5);
        let admitted = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..10_000 {
                        if L.admit_at(1).is_some() {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        let a = admitted.load(Ordering::Relaxed);
        assert!((5..=8).contains(&a), "{a} let through");
        assert_eq!(a + L.suppressed_total(), 40_000);
    }
}
