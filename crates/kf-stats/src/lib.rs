//! Order statistics for noisy runs: medians and percentiles, never lone
//! absolute times. The one implementation every report uses: the benchmarks,
//! the KLMS's issuance benchmark, the station's console and `demo` summary,
//! and the SKS timing example.
//!
//! Data flow: samples in, one number out. Depends on nothing; everything
//! that reports times may depend on it.

/// The `p` quantile of `samples` (`p` in 0..=1), interpolated linearly
/// between the two nearest ranks (Hyndman & Fan type 7, the default of R and
/// NumPy): the minimum at 0, the maximum at 1, and for `p = 0.5` the mean of
/// the two middle values of an even count. `None` when `samples` is empty,
/// holds a NaN, or `p` is outside 0..=1. The input needs no sorting.
pub fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    if samples.is_empty() || samples.iter().any(|s| s.is_nan()) || !(0.0..=1.0).contains(&p) {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (sorted.len() - 1) as f64 * p;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    let (a, b) = (sorted[lo], sorted[hi]);
    Some(a + (b - a) * (rank - lo as f64))
}

/// Median of `samples` (mean of the two middle values for an even count);
/// `None` when empty or when a sample is NaN.
pub fn median(samples: &[f64]) -> Option<f64> {
    percentile(samples, 0.5)
}

#[cfg(test)]
mod tests {
    use super::{median, percentile};

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.0]), Some(7.0));
    }

    #[test]
    fn median_rejects_empty_and_nan() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn percentiles_interpolate_between_ranks() {
        let v: Vec<f64> = (1..=101).rev().map(f64::from).collect();
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&v, 1.0), Some(101.0));
        assert_eq!(percentile(&v, 0.99), Some(100.0));
        assert_eq!(percentile(&v, 0.1), Some(11.0));
        assert_eq!(percentile(&[10.0, 20.0], 0.25), Some(12.5));
        assert_eq!(percentile(&[5.0], 0.99), Some(5.0));
    }

    #[test]
    fn percentile_rejects_bad_quantiles() {
        assert_eq!(percentile(&[1.0], -0.1), None);
        assert_eq!(percentile(&[1.0], 1.5), None);
        assert_eq!(percentile(&[1.0], f64::NAN), None);
    }
}
