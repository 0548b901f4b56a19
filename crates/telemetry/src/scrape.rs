//! One scrape in progress: the series that [`Source`]s add when the registry asks them, written
//! into the families of the schema. Sources are read only at a scrape, so hot-path owners (the
//! data plane) never pay for metrics between scrapes.

use std::collections::HashMap;

use crate::latency::QuantileValues;
use crate::schema::{CounterDef, GaugeDef, HistogramDef, Kind, LatencyDef, MetricDef};
use crate::snapshot::{FamilySnapshot, HistogramValue, Series, Value};

/// Something that reports series only when a scrape asks (see [`crate::dataplane`]).
pub trait Source: Send + Sync {
    /// Adds this source's series to `scrape`. Must be quick and must not block on the data path.
    fn collect(&self, scrape: &mut Scrape<'_>);
}

impl<F: Fn(&mut Scrape<'_>) + Send + Sync> Source for F {
    fn collect(&self, scrape: &mut Scrape<'_>) {
        self(scrape)
    }
}

/// The series of one scrape, filled by [`Source`]s.
#[derive(Debug)]
pub struct Scrape<'a> {
    pub(crate) families: &'a mut Vec<FamilySnapshot>,
    pub(crate) index: &'a HashMap<&'static str, usize>,
}

impl Scrape<'_> {
    pub(crate) fn push(&mut self, def: &'static MetricDef, labels: Vec<String>, value: Value) {
        match self.index.get(def.name) {
            Some(&i) => self.families[i].series.push(Series { labels, value }),
            None => {
                // A family declared outside this registry's schema: keep it anyway.
                self.families.push(FamilySnapshot { def, series: vec![Series { labels, value }] });
            }
        }
    }

    /// A counter value.
    pub fn counter<const N: usize>(&mut self, family: &'static CounterDef<N>, labels: [&str; N], v: u64) {
        self.push(family.def(), owned(&labels), Value::Counter(v));
    }

    /// A gauge value.
    pub fn gauge<const N: usize>(&mut self, family: &'static GaugeDef<N>, labels: [&str; N], v: i64) {
        self.push(family.def(), owned(&labels), Value::Gauge(v));
    }

    /// A histogram from per-bucket counts (one per declared bound, then `+Inf`; not cumulative).
    pub fn histogram<const N: usize>(
        &mut self,
        family: &'static HistogramDef<N>,
        labels: [&str; N],
        counts: &[u64],
        sum: f64,
    ) {
        let bounds = match family.def().kind {
            Kind::Histogram { buckets } => buckets,
            _ => &[],
        };
        self.push(family.def(), owned(&labels), Value::Histogram(HistogramValue::from_counts(bounds, counts, sum)));
    }

    /// Quantiles read elsewhere (e.g. from a [`crate::LatencyCell`] the source owns).
    pub fn quantiles<const N: usize>(&mut self, family: &'static LatencyDef<N>, labels: [&str; N], q: QuantileValues) {
        self.push(family.def(), owned(&labels), Value::Quantiles(q));
    }
}

pub(crate) fn owned(labels: &[&str]) -> Vec<String> {
    labels.iter().map(|s| (*s).to_owned()).collect()
}
