//! Medians with spread over repeated runs, and percentiles of samples.

use std::fmt;

/// The median and the range of a figure measured several times.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    /// The median run.
    pub median: f64,
    /// The lowest run.
    pub min: f64,
    /// The highest run.
    pub max: f64,
    /// How many runs.
    pub runs: usize,
}

impl Summary {
    /// Summarises `values` (NaN-free); all zero when empty.
    pub fn of(values: &[f64]) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Self {
            median,
            min: sorted[0],
            max: sorted[n - 1],
            runs: n,
        }
    }

    /// Shows the median with `decimals`, and the range when there is more than one
    /// run: `12.3 (11.9–12.8)`.
    pub fn show(&self, decimals: usize) -> String {
        if self.runs <= 1 {
            format!("{:.*}", decimals, self.median)
        } else {
            format!(
                "{:.*} ({:.*}–{:.*})",
                decimals, self.median, decimals, self.min, decimals, self.max
            )
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.show(2))
    }
}

/// The `p`-th percentile (0–100) of `samples` by the nearest-rank method; 0 when empty.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `a / b`, or NaN when `b` is zero.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { f64::NAN } else { a / b }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries() {
        let s = Summary::of(&[3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max, s.runs), (2.0, 1.0, 3.0, 3));
        assert_eq!(Summary::of(&[1.0, 2.0, 3.0, 10.0]).median, 2.5);
        assert_eq!(Summary::of(&[]).runs, 0);
        assert_eq!(Summary::of(&[1.5]).show(1), "1.5");
        assert_eq!(s.show(1), "2.0 (1.0–3.0)");
    }

    #[test]
    fn percentiles() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&samples, 50.0), 50.0);
        assert_eq!(percentile(&samples, 99.0), 99.0);
        assert_eq!(percentile(&samples, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn ratios() {
        assert!(ratio(1.0, 0.0).is_nan());
        assert_eq!(ratio(3.0, 2.0), 1.5);
    }
}
