//! What every Criterion benchmark of this crate shares.

use std::time::Duration;

use criterion::Criterion;

/// Short warm-up and measurement: enough for stable medians of these
/// microsecond-scale operations.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

/// The benchmark binary's `main`: runs `targets` with [`config`].
macro_rules! benchmarks {
    ($($target:path),+ $(,)?) => {
        criterion::criterion_group! {
            name = benches;
            config = $crate::common::config();
            targets = $($target),+
        }
        criterion::criterion_main!(benches);
    };
}

pub(crate) use benchmarks;
