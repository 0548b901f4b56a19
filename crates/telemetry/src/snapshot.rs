//! One moment's values of every series, and the outputs made from it: the Prometheus text
//! format (through the `prometheus` crate's encoder), a table for `rampart ctl stats`, JSON, and
//! the flat `sample name -> value` map that benchmark reports use.
//!
//! Every output names a value the same way: the Prometheus sample name with its labels, e.g.
//! `rampart_worker_drops_total{worker="0",reason="unknown_spi"}`. Nothing here invents a name.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use prometheus::proto;

use crate::latency::QuantileValues;
use crate::schema::{Kind, MetricDef};

/// The label that the table output turns into columns.
pub const WORKER_LABEL: &str = "worker";

/// A histogram's value: cumulative counts per declared bound, then `+Inf`.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramValue {
    /// `(upper bound, cumulative count)`, the last bound being `+Inf`.
    pub buckets: Vec<(f64, u64)>,
    /// Number of observations (the `+Inf` bucket).
    pub count: u64,
    /// Sum of the observations.
    pub sum: f64,
}

impl HistogramValue {
    /// From per-bucket counts (one per bound, then `+Inf`; a missing count is 0).
    pub fn from_counts(bounds: &[f64], counts: &[u64], sum: f64) -> HistogramValue {
        let mut acc = 0u64;
        let mut buckets = Vec::with_capacity(bounds.len() + 1);
        for (i, b) in bounds.iter().chain(std::iter::once(&f64::INFINITY)).enumerate() {
            acc = acc.saturating_add(counts.get(i).copied().unwrap_or(0));
            buckets.push((*b, acc));
        }
        HistogramValue { buckets, count: acc, sum }
    }
}

/// One series' value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Counter.
    Counter(u64),
    /// Gauge.
    Gauge(i64),
    /// Histogram.
    Histogram(HistogramValue),
    /// Latency quantiles.
    Quantiles(QuantileValues),
}

/// One label set of a family and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Label values, in the order of the family's label names.
    pub labels: Vec<String>,
    /// The value.
    pub value: Value,
}

/// One family and its series.
#[derive(Clone, Debug)]
pub struct FamilySnapshot {
    /// The declaration.
    pub def: &'static MetricDef,
    /// Its series, sorted by label values.
    pub series: Vec<Series>,
}

/// Every series at one moment.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The families in schema order (some may have no series).
    pub families: Vec<FamilySnapshot>,
}

/// Orders label values, numbers by value (worker 2 before worker 10).
pub(crate) fn label_order(a: &[String], b: &[String]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(p), Ok(q)) => p.cmp(&q),
            _ => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

/// Escapes a label value as the text format requires.
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// `name{a="x",b="y"}` (just `name` without labels): the sample name used by every output.
pub fn sample_name(name: &str, labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return name.to_owned();
    }
    let mut s = String::from(name);
    s.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{k}=\"{}\"", escape(v));
    }
    s.push('}');
    s
}

fn fmt_float(v: f64) -> String {
    if v == f64::INFINITY { "+Inf".to_owned() } else { format!("{v}") }
}

impl FamilySnapshot {
    fn pairs<'a>(&'a self, s: &'a Series) -> Vec<(&'a str, &'a str)> {
        self.def.labels.iter().copied().zip(s.labels.iter().map(String::as_str)).collect()
    }

    /// The sample lines of one series: `(sample name, value)`, as in the text format.
    pub fn samples(&self, s: &Series) -> Vec<(String, f64)> {
        samples_of(self.def.name, &self.pairs(s), &s.value)
    }

    fn to_proto(&self) -> proto::MetricFamily {
        let mut mf = proto::MetricFamily::default();
        mf.set_name(self.def.name.to_owned());
        mf.set_help(self.def.help.to_owned());
        mf.set_field_type(match self.def.kind {
            Kind::Counter => proto::MetricType::COUNTER,
            Kind::Gauge => proto::MetricType::GAUGE,
            Kind::Histogram { .. } => proto::MetricType::HISTOGRAM,
            Kind::Quantiles => proto::MetricType::SUMMARY,
        });
        let metrics = self
            .series
            .iter()
            .map(|s| {
                let mut m = proto::Metric::default();
                m.set_label(
                    self.pairs(s)
                        .into_iter()
                        .map(|(k, v)| {
                            let mut l = proto::LabelPair::default();
                            l.set_name(k.to_owned());
                            l.set_value(v.to_owned());
                            l
                        })
                        .collect(),
                );
                match &s.value {
                    Value::Counter(v) => {
                        let mut c = proto::Counter::default();
                        c.set_value(*v as f64);
                        m.set_counter(c);
                    }
                    Value::Gauge(v) => {
                        let mut g = proto::Gauge::default();
                        g.set_value(*v as f64);
                        m.set_gauge(g);
                    }
                    Value::Histogram(h) => {
                        let mut ph = proto::Histogram::default();
                        ph.set_sample_count(h.count);
                        ph.set_sample_sum(h.sum);
                        // The encoder writes the `+Inf` bucket itself from the count.
                        ph.set_bucket(
                            h.buckets
                                .iter()
                                .filter(|(le, _)| le.is_finite())
                                .map(|(le, c)| {
                                    let mut b = proto::Bucket::default();
                                    b.set_upper_bound(*le);
                                    b.set_cumulative_count(*c);
                                    b
                                })
                                .collect(),
                        );
                        m.set_histogram(ph);
                    }
                    Value::Quantiles(q) => {
                        let mut ps = proto::Summary::default();
                        ps.set_sample_count(q.count);
                        ps.set_sample_sum(q.sum);
                        ps.set_quantile(
                            q.quantiles
                                .iter()
                                .map(|(qq, v)| {
                                    let mut pq = proto::Quantile::default();
                                    pq.set_quantile(*qq);
                                    pq.set_value(*v);
                                    pq
                                })
                                .collect(),
                        );
                        m.set_summary(ps);
                    }
                }
                m
            })
            .collect();
        mf.set_metric(metrics);
        mf
    }
}

impl Snapshot {
    /// The family called `name`.
    pub fn family(&self, name: &str) -> Option<&FamilySnapshot> {
        self.families.iter().find(|f| f.def.name == name)
    }

    /// Every sample line as `sample name -> value`: the names benchmark reports use.
    pub fn flat(&self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for f in &self.families {
            for s in &f.series {
                out.extend(f.samples(s));
            }
        }
        out
    }

    /// What changed since `before`: counters, histogram buckets, counts and sums as
    /// differences, gauges and quantiles as they are now. For benchmark reports.
    pub fn delta(&self, before: &Snapshot) -> BTreeMap<String, f64> {
        let old = before.flat();
        let mut out = BTreeMap::new();
        for f in &self.families {
            for s in &f.series {
                let cumulative = !matches!(s.value, Value::Gauge(_));
                for (name, v) in f.samples(s) {
                    let is_quantile = matches!(s.value, Value::Quantiles(_)) && name.contains("quantile=\"");
                    let d = if cumulative && !is_quantile { v - old.get(&name).copied().unwrap_or(0.0) } else { v };
                    out.insert(name, d);
                }
            }
        }
        out
    }

    /// The families in the `prometheus` crate's model (empty families left out).
    pub fn to_proto(&self) -> Vec<proto::MetricFamily> {
        self.families.iter().filter(|f| !f.series.is_empty()).map(FamilySnapshot::to_proto).collect()
    }

    /// The Prometheus text exposition format 0.0.4.
    pub fn to_prometheus_text(&self) -> String {
        let mut out = String::new();
        // Encoding only fails on invalid names, which the schema tests rule out; a failure
        // leaves the output short rather than panicking.
        let _ = prometheus::TextEncoder::new().encode_utf8(&self.to_proto(), &mut out);
        out
    }

    /// JSON: `{"families": [{"name", "help", "type", "series": [{"labels": {..}, "value": ..}]}]}`.
    pub fn to_json(&self) -> serde_json::Value {
        let families: Vec<serde_json::Value> = self
            .families
            .iter()
            .filter(|f| !f.series.is_empty())
            .map(|f| {
                let series: Vec<serde_json::Value> = f
                    .series
                    .iter()
                    .map(|s| {
                        let labels: serde_json::Map<String, serde_json::Value> =
                            f.pairs(s).into_iter().map(|(k, v)| (k.to_owned(), v.into())).collect();
                        let value = match &s.value {
                            Value::Counter(v) => (*v).into(),
                            Value::Gauge(v) => (*v).into(),
                            Value::Histogram(h) => {
                                let b: serde_json::Map<String, serde_json::Value> =
                                    h.buckets.iter().map(|(le, c)| (fmt_float(*le), (*c).into())).collect();
                                serde_json::json!({ "buckets": b, "count": h.count, "sum": h.sum })
                            }
                            Value::Quantiles(q) => {
                                let qs: serde_json::Map<String, serde_json::Value> = q
                                    .quantiles
                                    .iter()
                                    .map(|(qq, v)| (fmt_float(*qq), serde_json::Number::from_f64(*v).into()))
                                    .collect();
                                serde_json::json!({ "quantiles": qs, "count": q.count, "sum": q.sum })
                            }
                        };
                        serde_json::json!({ "labels": labels, "value": value })
                    })
                    .collect();
                serde_json::json!({
                    "name": f.def.name,
                    "help": f.def.help,
                    "type": f.def.kind.prometheus_type(),
                    "series": series,
                })
            })
            .collect();
        serde_json::json!({ "families": families })
    }

    /// A table for people (`rampart ctl stats`): one row per sample name without its `worker`
    /// label, one column per worker and a total (sums of counters and gauges; quantiles have
    /// none). With `nonzero`, rows that are zero everywhere are left out.
    pub fn to_table(&self, nonzero: bool) -> String {
        let mut workers: Vec<String> = Vec::new();
        // row name -> (worker -> value)
        let mut rows: Vec<(String, bool, BTreeMap<String, f64>)> = Vec::new();
        let mut row_index: BTreeMap<String, usize> = BTreeMap::new();
        for f in &self.families {
            let worker_pos = f.def.labels.iter().position(|l| *l == WORKER_LABEL);
            for s in &f.series {
                let worker = worker_pos.and_then(|p| s.labels.get(p)).cloned().unwrap_or_default();
                if !worker.is_empty() && !workers.contains(&worker) {
                    workers.push(worker.clone());
                }
                let mut pairs = f.pairs(s);
                if let Some(p) = worker_pos.filter(|p| *p < pairs.len()) {
                    pairs.remove(p);
                }
                let summable = !matches!(s.value, Value::Quantiles(_));
                for (name, v) in samples_of(f.def.name, &pairs, &s.value) {
                    let quantile_line = !summable && name.contains("quantile=\"");
                    let i = *row_index.entry(name.clone()).or_insert_with(|| {
                        rows.push((name.clone(), !quantile_line, BTreeMap::new()));
                        rows.len() - 1
                    });
                    *rows[i].2.entry(worker.clone()).or_insert(0.0) += v;
                }
            }
        }
        workers.sort_by(|a, b| label_order(std::slice::from_ref(a), std::slice::from_ref(b)));
        let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(6).max(6);
        let mut s = String::new();
        let _ = write!(s, "{:<width$}", "metric");
        for w in &workers {
            let _ = write!(s, " {:>14}", format!("worker {w}"));
        }
        let _ = writeln!(s, " {:>14}", "total");
        for (name, summable, vals) in rows {
            if nonzero && vals.values().all(|v| *v == 0.0 || v.is_nan()) {
                continue;
            }
            let _ = write!(s, "{name:<width$}");
            for w in &workers {
                match vals.get(w) {
                    Some(v) => {
                        let _ = write!(s, " {:>14}", fmt_value(*v));
                    }
                    None => {
                        let _ = write!(s, " {:>14}", "");
                    }
                }
            }
            let total = if summable || vals.len() == 1 { fmt_value(vals.values().sum()) } else { "-".to_owned() };
            let _ = writeln!(s, " {total:>14}");
        }
        s
    }
}

/// The sample lines of one series of family `name` with label pairs `pairs`.
fn samples_of(name: &str, pairs: &[(&str, &str)], value: &Value) -> Vec<(String, f64)> {
    fn with<'a>(pairs: &[(&'a str, &'a str)], extra: (&'a str, &'a str)) -> Vec<(&'a str, &'a str)> {
        let mut p = pairs.to_vec();
        p.push(extra);
        p
    }
    match value {
        Value::Counter(v) => vec![(sample_name(name, pairs), *v as f64)],
        Value::Gauge(v) => vec![(sample_name(name, pairs), *v as f64)],
        Value::Histogram(h) => {
            let mut out = Vec::with_capacity(h.buckets.len() + 2);
            for (le, c) in &h.buckets {
                let le = fmt_float(*le);
                out.push((sample_name(&format!("{name}_bucket"), &with(pairs, ("le", &le))), *c as f64));
            }
            out.push((sample_name(&format!("{name}_sum"), pairs), h.sum));
            out.push((sample_name(&format!("{name}_count"), pairs), h.count as f64));
            out
        }
        Value::Quantiles(q) => {
            let mut out = Vec::with_capacity(q.quantiles.len() + 2);
            for (qq, v) in &q.quantiles {
                let qs = fmt_float(*qq);
                out.push((sample_name(name, &with(pairs, ("quantile", &qs))), *v));
            }
            out.push((sample_name(&format!("{name}_sum"), pairs), q.sum));
            out.push((sample_name(&format!("{name}_count"), pairs), q.count as f64));
            out
        }
    }
}

fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        "-".to_owned()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.6}")
    }
}
