//! The metrics registry: live series that slow-path code updates through cheap handles, and
//! [`Source`]s that hot-path owners (the data plane) read into a [`Scrape`] only when someone
//! asks. Both end in one [`Snapshot`], from which every output is rendered.
//!
//! Handles ([`Counter`], [`Gauge`], [`HistogramHandle`], [`LatencyCell`]) are an `Arc` to an
//! atomic: take one once, keep it, update it without a lock. Looking a handle up takes a lock
//! and must stay off the data path. The registry never lets a family grow past
//! [`MAX_SERIES_PER_FAMILY`] label sets, so values that come from the network cannot exhaust
//! memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use crate::latency::LatencyCell;
use crate::schema::{self, CounterDef, GaugeDef, HistogramDef, Kind, LatencyDef, MetricDef};
use crate::scrape::{Scrape, Source, owned};
use crate::snapshot::{FamilySnapshot, HistogramValue, Series, Snapshot, Value};

/// Most label sets one family keeps; further ones share one series whose labels all read
/// [`OVERFLOW_LABEL`].
pub const MAX_SERIES_PER_FAMILY: usize = 4096;
/// The label value of the series that takes everything past [`MAX_SERIES_PER_FAMILY`].
pub const OVERFLOW_LABEL: &str = "_overflow";

/// A counter series.
#[derive(Clone, Debug)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The value now.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A gauge series.
#[derive(Clone, Debug)]
pub struct Gauge(Arc<AtomicI64>);

impl Gauge {
    /// Sets the value.
    #[inline]
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// Adds `n` (may be negative).
    #[inline]
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The value now.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A histogram series with the buckets of its declaration.
#[derive(Clone, Debug)]
pub struct HistogramHandle(Arc<HistogramCells>);

#[derive(Debug)]
struct HistogramCells {
    bounds: &'static [f64],
    /// One per bound, then `+Inf`; not cumulative.
    buckets: Vec<AtomicU64>,
    /// f64 bits.
    sum: AtomicU64,
}

impl HistogramHandle {
    /// Records one observation.
    pub fn observe(&self, v: f64) {
        let i = self.0.bounds.iter().position(|b| v <= *b).unwrap_or(self.0.bounds.len());
        if let Some(b) = self.0.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        let _ =
            self.0.sum.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| Some((f64::from_bits(s) + v).to_bits()));
    }

    fn value(&self) -> HistogramValue {
        let counts: Vec<u64> = self.0.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        HistogramValue::from_counts(self.0.bounds, &counts, f64::from_bits(self.0.sum.load(Ordering::Relaxed)))
    }
}

#[derive(Clone, Debug)]
enum Cell {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(HistogramHandle),
    Latency(LatencyCell),
}

type SeriesMap = HashMap<&'static str, HashMap<Vec<String>, Cell>>;

/// All of one process's metrics.
pub struct Metrics {
    schema: &'static [&'static MetricDef],
    index: HashMap<&'static str, usize>,
    live: Mutex<SeriesMap>,
    sources: RwLock<Vec<Arc<dyn Source>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("families", &self.schema.len()).finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry of every family in [`schema::ALL`], with no series yet.
    pub fn new() -> Metrics {
        Metrics::with_schema(schema::ALL)
    }

    /// A registry of the given families (tests, tools).
    pub fn with_schema(schema: &'static [&'static MetricDef]) -> Metrics {
        let index = schema.iter().enumerate().map(|(i, d)| (d.name, i)).collect();
        Metrics { schema, index, live: Mutex::new(HashMap::new()), sources: RwLock::new(Vec::new()) }
    }

    /// The families this registry renders, in order.
    pub fn schema(&self) -> &'static [&'static MetricDef] {
        self.schema
    }

    fn cell(&self, def: &'static MetricDef, labels: &[&str], make: impl FnOnce() -> Cell) -> Cell {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let family = live.entry(def.name).or_default();
        let key: Vec<String> = owned(labels);
        if let Some(c) = family.get(&key) {
            return c.clone();
        }
        let key =
            if family.len() >= MAX_SERIES_PER_FAMILY { vec![OVERFLOW_LABEL.to_owned(); labels.len()] } else { key };
        family.entry(key).or_insert_with(make).clone()
    }

    /// The counter series of `family` with these label values (created at zero).
    pub fn counter<const N: usize>(&self, family: &'static CounterDef<N>, labels: [&str; N]) -> Counter {
        match self.cell(family.def(), &labels, || Cell::Counter(Counter(Arc::default()))) {
            Cell::Counter(c) => c,
            _ => Counter(Arc::default()),
        }
    }

    /// The gauge series of `family` with these label values (created at zero).
    pub fn gauge<const N: usize>(&self, family: &'static GaugeDef<N>, labels: [&str; N]) -> Gauge {
        match self.cell(family.def(), &labels, || Cell::Gauge(Gauge(Arc::default()))) {
            Cell::Gauge(g) => g,
            _ => Gauge(Arc::default()),
        }
    }

    /// The histogram series of `family` with these label values.
    pub fn histogram<const N: usize>(&self, family: &'static HistogramDef<N>, labels: [&str; N]) -> HistogramHandle {
        let bounds = match family.def().kind {
            Kind::Histogram { buckets } => buckets,
            _ => &[],
        };
        let make = || {
            Cell::Histogram(HistogramHandle(Arc::new(HistogramCells {
                bounds,
                buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
                sum: AtomicU64::new(0f64.to_bits()),
            })))
        };
        match self.cell(family.def(), &labels, make) {
            Cell::Histogram(h) => h,
            _ => HistogramHandle(Arc::new(HistogramCells {
                bounds: &[],
                buckets: vec![AtomicU64::new(0)],
                sum: AtomicU64::new(0),
            })),
        }
    }

    /// The latency series of `family` with these label values. Threads on the data path record
    /// into their own [`crate::LatencyRecorder`] and flush into this.
    pub fn latency<const N: usize>(&self, family: &'static LatencyDef<N>, labels: [&str; N]) -> LatencyCell {
        match self.cell(family.def(), &labels, || Cell::Latency(LatencyCell::default())) {
            Cell::Latency(l) => l,
            _ => LatencyCell::default(),
        }
    }

    /// Adds a source read at every scrape.
    pub fn add_source(&self, source: Arc<dyn Source>) {
        self.sources.write().unwrap_or_else(|p| p.into_inner()).push(source);
    }

    /// Every series now: live ones, then what the sources report, family by family in schema
    /// order (series sorted by label values).
    pub fn snapshot(&self) -> Snapshot {
        let mut families: Vec<FamilySnapshot> =
            self.schema.iter().map(|d| FamilySnapshot { def: d, series: Vec::new() }).collect();
        {
            let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
            for (name, series) in live.iter() {
                let Some(&i) = self.index.get(name) else { continue };
                for (labels, cell) in series {
                    let value = match cell {
                        Cell::Counter(c) => Value::Counter(c.get()),
                        Cell::Gauge(g) => Value::Gauge(g.get()),
                        Cell::Histogram(h) => Value::Histogram(h.value()),
                        Cell::Latency(l) => Value::Quantiles(l.read()),
                    };
                    families[i].series.push(Series { labels: labels.clone(), value });
                }
            }
        }
        let sources: Vec<Arc<dyn Source>> = self.sources.read().unwrap_or_else(|p| p.into_inner()).clone();
        let mut scrape = Scrape { families: &mut families, index: &self.index };
        for s in &sources {
            s.collect(&mut scrape);
        }
        crate::ratelimit::collect_suppressed(&mut scrape);
        for f in &mut families {
            f.series.sort_by(|a, b| crate::snapshot::label_order(&a.labels, &b.labels));
        }
        Snapshot { families }
    }

    /// The Prometheus text exposition of [`Metrics::snapshot`] (format 0.0.4).
    pub fn render_prometheus(&self) -> String {
        self.snapshot().to_prometheus_text()
    }
}

/// The process-wide registry, for code that has no handle passed in.
pub fn global() -> &'static Metrics {
    static GLOBAL: OnceLock<Metrics> = OnceLock::new();
    GLOBAL.get_or_init(Metrics::new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::*;

    #[test]
    fn handles_share_one_series() {
        let m = Metrics::new();
        let a = m.counter(&IKE_EXCHANGES, ["ike_auth", "initiator"]);
        let b = m.counter(&IKE_EXCHANGES, ["ike_auth", "initiator"]);
        a.inc();
        b.add(2);
        m.gauge(&IKE_SAS, ["established"]).set(7);
        let s = m.snapshot();
        let flat = s.flat();
        assert_eq!(flat["rampart_ike_exchanges_total{exchange=\"ike_auth\",role=\"initiator\"}"], 3.0);
        assert_eq!(flat["rampart_ike_sas{state=\"established\"}"], 7.0);
    }

    #[test]
    fn families_stop_growing_at_the_cap() {
        let m = Metrics::new();
        for i in 0..MAX_SERIES_PER_FAMILY + 10 {
            m.counter(&IKE_FAILURES, [&format!("r{i}")]).inc();
        }
        let s = m.snapshot();
        let fam = s.family("rampart_ike_failures_total").unwrap();
        assert_eq!(fam.series.len(), MAX_SERIES_PER_FAMILY + 1);
        let over = fam.series.iter().find(|s| s.labels == [OVERFLOW_LABEL]).unwrap();
        assert_eq!(over.value, Value::Counter(10));
    }

    #[test]
    fn histogram_handle_counts_into_its_bucket() {
        let m = Metrics::new();
        let h = m.histogram(&WORKER_BURST_FRAMES, ["0"]);
        for v in [1.0, 2.0, 64.0, 100.0] {
            h.observe(v);
        }
        let flat = m.snapshot().flat();
        assert_eq!(flat["rampart_worker_burst_frames_bucket{worker=\"0\",le=\"1\"}"], 1.0);
        assert_eq!(flat["rampart_worker_burst_frames_bucket{worker=\"0\",le=\"3\"}"], 2.0);
        assert_eq!(flat["rampart_worker_burst_frames_bucket{worker=\"0\",le=\"63\"}"], 2.0);
        assert_eq!(flat["rampart_worker_burst_frames_bucket{worker=\"0\",le=\"64\"}"], 3.0);
        assert_eq!(flat["rampart_worker_burst_frames_bucket{worker=\"0\",le=\"+Inf\"}"], 4.0);
        assert_eq!(flat["rampart_worker_burst_frames_count{worker=\"0\"}"], 4.0);
        assert_eq!(flat["rampart_worker_burst_frames_sum{worker=\"0\"}"], 167.0);
    }
}
