//! Shared helpers of Rampart's benchmark binaries (timing, report tables).
//!
//! Benchmarks report medians of repeated runs and ratios measured side by side in one run;
//! nothing here asserts on a timing.
// `deny` rather than `forbid`: the FFI to intel-ipsec-mb in `ipsec_mb` (a benchmark reference,
// built only when the library is installed) is the only unsafe code of this crate and opts out
// there with `allow`, every block with a Safety comment; everything else stays safe.
#![deny(unsafe_code)]

#[cfg(ipsec_mb)]
pub mod ipsec_mb;

/// What the per-packet ESP and AH benchmarks share.
pub mod burst;

/// The data-plane traffic benchmark (`bin/traffic`): generator, sink, forwarder, orchestration.
pub mod traffic;

// ---- Timing and report helpers (first used by `bin/crypto.rs`) ----------------------------

use std::time::{Duration, Instant};

/// Pins the current thread to the last CPU the process may run on (away from CPU 0, where
/// interrupts and housekeeping tend to land). Returns the CPU index, or `None` when pinning is
/// not possible here.
pub fn pin_current_thread() -> Option<usize> {
    let cores = core_affinity::get_core_ids()?;
    let core = *cores.last()?;
    core_affinity::set_for_current(core).then_some(core.id)
}

/// The median of `values` (the mean of the two middle ones for an even count); NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 }
}

/// Gigabits per second for `bytes` processed in `ns` nanoseconds.
pub fn gbit_per_s(bytes: usize, ns: f64) -> f64 {
    bytes as f64 * 8.0 / ns
}

/// Runs `f` repeatedly for at least `period`, to bring caches, branch predictors and the CPU
/// clock to a steady state before measuring.
pub fn warm_up(period: Duration, mut f: impl FnMut()) {
    let start = Instant::now();
    while start.elapsed() < period {
        f();
    }
}

/// A plain-text table with right-aligned columns (the first column left-aligned).
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Table {
        Table { header: header.iter().map(|s| s.to_string()).collect(), rows: Vec::new() }
    }

    /// Appends a row (missing cells print empty).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Appends an empty separator row.
    pub fn gap(&mut self) {
        self.rows.push(Vec::new());
    }

    /// The table as text, one line per row, with a rule under the header.
    pub fn render(&self) -> String {
        let columns = self.header.len();
        let mut width = vec![0usize; columns];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate().take(columns) {
                width[i] = width[i].max(cell.chars().count());
            }
        }
        let line = |row: &[String]| {
            let mut out = String::new();
            for (i, w) in width.iter().enumerate() {
                let cell = row.get(i).map(String::as_str).unwrap_or("");
                if i == 0 {
                    out.push_str(&format!("{cell:<w$}"));
                } else {
                    out.push_str(&format!("  {cell:>w$}"));
                }
            }
            out.trim_end().to_string()
        };
        let mut out = line(&self.header);
        out.push('\n');
        out.push_str(&"-".repeat(width.iter().sum::<usize>() + 2 * (columns.saturating_sub(1))));
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row));
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(&["name", "ns"]);
        t.row(vec!["a".into(), "1.0".into()]);
        t.row(vec!["long name".into(), "12.5".into()]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2], "a           1.0");
        assert_eq!(lines[3], "long name  12.5");
    }

    #[test]
    fn gbit_per_s_is_bits_per_ns() {
        assert_eq!(gbit_per_s(1000, 1000.0), 8.0);
    }
}
