//! What a run measured: requests per second and latency percentiles, and the units they
//! are shown in.

use std::time::Duration;

/// Requests per second and latency percentiles of a run.
pub struct Row {
    pub name: String,
    pub rps: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
    /// The service's CPU time (user and system) per answer, where measured.
    pub cpu_per_answer: Option<Duration>,
    /// The latencies summarized, sorted.
    pub samples: Vec<Duration>,
}

/// Requests per second and percentiles of `samples` taken over `length`.
pub fn summarize(name: &str, mut samples: Vec<Duration>, length: Duration) -> Row {
    assert!(!samples.is_empty(), "{name}: no samples after the warm-up");
    let [p50, p99, p999] = percentiles(&mut samples, [0.5, 0.99, 0.999]);
    Row {
        name: name.to_string(),
        rps: samples.len() as f64 / length.as_secs_f64(),
        p50,
        p99,
        p999,
        cpu_per_answer: None,
        samples,
    }
}

/// The `qs` quantiles (0 to 1) of `samples`, which this sorts: the sample at rank
/// `(n − 1) · q`, rounded down, so 0.5 of 2,000 samples is the 1,000th smallest.
pub fn percentiles<const N: usize>(samples: &mut [Duration], qs: [f64; N]) -> [Duration; N] {
    assert!(!samples.is_empty(), "percentiles of no samples");
    samples.sort_unstable();
    qs.map(|q| samples[((samples.len() - 1) as f64 * q) as usize])
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}
