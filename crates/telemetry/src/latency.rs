//! Latency recording with HDR histograms: [`LatencyRecorder`] is owned by one thread and costs
//! an array increment per sample; [`LatencyCell`] is the shared copy that recorders flush into
//! and that scrapes read as quantiles over a sliding window.
//!
//! A data-plane worker must never wait here: it records into its own [`LatencyRecorder`] and
//! flushes with [`LatencyRecorder::try_flush`], which gives up (and keeps the samples for next
//! time) when a scrape holds the lock.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::schema::QUANTILES;

/// Highest value recorded exactly, in nanoseconds (60 s); larger samples count as this.
pub const MAX_NANOS: u64 = 60_000_000_000;
/// Significant decimal digits kept: 2 gives 1 % resolution at about 40 KiB per histogram.
const SIGFIG: u8 = 2;
/// The quantiles cover the samples of the last one to two windows.
pub const WINDOW: Duration = Duration::from_secs(60);

fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that `new_with_bounds` accepts (1 <= low, high >= 2 * low,
    // sigfig <= 5), which the tests exercise: this cannot fail at run time.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, MAX_NANOS, SIGFIG).expect("constant histogram bounds are valid")
}

/// One thread's samples since its last flush.
#[derive(Clone, Debug)]
pub struct LatencyRecorder {
    hist: Histogram<u64>,
    sum_nanos: u128,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        LatencyRecorder { hist: new_histogram(), sum_nanos: 0 }
    }
}

impl LatencyRecorder {
    /// Records one sample in nanoseconds (values above [`MAX_NANOS`] count as the maximum).
    #[inline]
    pub fn record_nanos(&mut self, nanos: u64) {
        let v = nanos.clamp(1, MAX_NANOS);
        self.hist.saturating_record(v);
        self.sum_nanos += u128::from(nanos);
    }

    /// Records one duration.
    #[inline]
    pub fn record(&mut self, d: Duration) {
        self.record_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Samples waiting to be flushed.
    pub fn pending(&self) -> u64 {
        self.hist.len()
    }

    /// Moves the samples into `cell` unless a reader holds it right now; returns whether it
    /// did. Never blocks.
    pub fn try_flush(&mut self, cell: &LatencyCell) -> bool {
        if self.hist.is_empty() {
            return true;
        }
        match cell.inner.try_lock() {
            Ok(mut w) => {
                w.absorb(&self.hist, self.sum_nanos);
                self.hist.reset();
                self.sum_nanos = 0;
                true
            }
            Err(_) => false,
        }
    }

    /// Moves the samples into `cell`, waiting for the lock (for threads off the data path).
    pub fn flush(&mut self, cell: &LatencyCell) {
        if self.hist.is_empty() {
            return;
        }
        let mut w = cell.inner.lock().unwrap_or_else(|p| p.into_inner());
        w.absorb(&self.hist, self.sum_nanos);
        self.hist.reset();
        self.sum_nanos = 0;
    }
}

#[derive(Debug)]
struct Windowed {
    current: Histogram<u64>,
    previous: Histogram<u64>,
    started: Instant,
    count: u64,
    sum_nanos: u128,
}

impl Windowed {
    fn rotate(&mut self, now: Instant) {
        let age = now.saturating_duration_since(self.started);
        if age >= WINDOW * 2 {
            self.previous.reset();
            self.current.reset();
            self.started = now;
        } else if age >= WINDOW {
            std::mem::swap(&mut self.previous, &mut self.current);
            self.current.reset();
            self.started += WINDOW;
        }
    }

    fn absorb(&mut self, h: &Histogram<u64>, sum_nanos: u128) {
        self.rotate(Instant::now());
        // Both histograms have the same bounds, so `add` cannot fail.
        let _ = self.current.add(h);
        self.count += h.len();
        self.sum_nanos += sum_nanos;
    }
}

/// The shared latency series of one label set: quantiles over a sliding window, count and sum
/// since the start.
#[derive(Clone, Debug)]
pub struct LatencyCell {
    inner: Arc<Mutex<Windowed>>,
}

impl Default for LatencyCell {
    fn default() -> Self {
        LatencyCell {
            inner: Arc::new(Mutex::new(Windowed {
                current: new_histogram(),
                previous: new_histogram(),
                started: Instant::now(),
                count: 0,
                sum_nanos: 0,
            })),
        }
    }
}

/// What a scrape reads from a [`LatencyCell`].
#[derive(Clone, Debug, PartialEq)]
pub struct QuantileValues {
    /// `(quantile, seconds)` for each of [`QUANTILES`]; NaN when the window is empty.
    pub quantiles: [(f64, f64); QUANTILES.len()],
    /// Samples since the start.
    pub count: u64,
    /// Sum of all samples since the start, in seconds.
    pub sum: f64,
}

impl QuantileValues {
    /// Reads quantiles from a histogram of nanoseconds.
    pub fn from_histogram(h: &Histogram<u64>, count: u64, sum_nanos: u128) -> QuantileValues {
        let quantiles = QUANTILES.map(|q| {
            let v = if h.is_empty() {
                f64::NAN
            } else if q >= 1.0 {
                h.max() as f64 / 1e9
            } else {
                h.value_at_quantile(q) as f64 / 1e9
            };
            (q, v)
        });
        QuantileValues { quantiles, count, sum: sum_nanos as f64 / 1e9 }
    }
}

impl LatencyCell {
    /// Records one sample directly (takes the lock: for the slow path, e.g. the IKE daemon),
    /// as [`LatencyRecorder::record`] and a flush would.
    pub fn record(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let mut w = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        w.rotate(Instant::now());
        w.current.saturating_record(nanos.clamp(1, MAX_NANOS));
        w.count += 1;
        w.sum_nanos += u128::from(nanos);
    }

    /// The quantiles of the last one to two windows, and the totals.
    pub fn read(&self) -> QuantileValues {
        let mut w = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        w.rotate(Instant::now());
        let mut both = w.previous.clone();
        let _ = both.add(&w.current);
        QuantileValues::from_histogram(&both, w.count, w.sum_nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_within_resolution() {
        let cell = LatencyCell::default();
        let mut r = LatencyRecorder::default();
        for i in 1..=1000u64 {
            r.record_nanos(i * 1000); // 1 us .. 1 ms
        }
        assert_eq!(r.pending(), 1000);
        assert!(r.try_flush(&cell));
        assert_eq!(r.pending(), 0);
        let q = cell.read();
        assert_eq!(q.count, 1000);
        let expect = [500e-6, 900e-6, 990e-6, 999e-6, 1000e-6];
        for ((qq, v), e) in q.quantiles.iter().zip(expect) {
            assert!((v - e).abs() / e < 0.01, "q{qq}: {v} vs {e}");
        }
        assert!((q.sum - 0.5005).abs() < 1e-9, "{}", q.sum);
    }

    #[test]
    fn try_flush_never_waits_for_a_reader() {
        let cell = LatencyCell::default();
        let mut r = LatencyRecorder::default();
        r.record_nanos(10);
        let guard = cell.inner.lock().unwrap();
        assert!(!r.try_flush(&cell));
        drop(guard);
        assert_eq!(r.pending(), 1);
        assert!(r.try_flush(&cell));
        assert_eq!(cell.read().count, 1);
    }

    #[test]
    fn empty_window_reads_nan_and_oversized_samples_saturate() {
        let cell = LatencyCell::default();
        assert!(cell.read().quantiles.iter().all(|(_, v)| v.is_nan()));
        cell.record(Duration::from_secs(3600));
        let q = cell.read();
        assert!((q.quantiles[4].1 - MAX_NANOS as f64 / 1e9).abs() / 60.0 < 0.01);
        assert_eq!(q.sum, 3600.0);
    }
}
