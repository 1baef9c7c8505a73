//! Simulated time: integer nanoseconds since the start of a run.
//!
//! No wall clock ever reaches a run. smoltcp counts microseconds, so the
//! conversions to its types live here, in one place.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// A point in simulated time, in nanoseconds since the run started.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Instant(u64);

/// A span of simulated time, in nanoseconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Duration(u64);

impl Instant {
    pub const ZERO: Instant = Instant(0);
    pub const MAX: Instant = Instant(u64::MAX);

    pub const fn from_nanos(ns: u64) -> Self {
        Instant(ns)
    }
    pub const fn nanos(self) -> u64 {
        self.0
    }
    /// The same instant on smoltcp's microsecond clock (rounded down).
    pub fn to_smoltcp(self) -> smoltcp::time::Instant {
        smoltcp::time::Instant::from_micros((self.0 / 1_000) as i64)
    }
    pub fn saturating_sub(self, earlier: Instant) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

impl Duration {
    pub const ZERO: Duration = Duration(0);

    pub const fn from_nanos(ns: u64) -> Self {
        Duration(ns)
    }
    pub const fn from_micros(us: u64) -> Self {
        Duration(us * 1_000)
    }
    pub const fn from_millis(ms: u64) -> Self {
        Duration(ms * 1_000_000)
    }
    pub const fn from_secs(s: u64) -> Self {
        Duration(s * 1_000_000_000)
    }
    pub const fn nanos(self) -> u64 {
        self.0
    }
    pub fn from_smoltcp(d: smoltcp::time::Duration) -> Self {
        Duration(d.total_micros().saturating_mul(1_000))
    }
    pub fn to_smoltcp(self) -> smoltcp::time::Duration {
        smoltcp::time::Duration::from_micros(self.0 / 1_000)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d.0))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Add for Duration {
    type Output = Duration;
    fn add(self, d: Duration) -> Duration {
        Duration(self.0.saturating_add(d.0))
    }
}

impl Sub for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_sub(earlier)
    }
}

/// Seconds with all nine decimals: `1.000250000`. Fixed width keeps timelines aligned.
impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = format!("{}.{:09}", self.0 / 1_000_000_000, self.0 % 1_000_000_000);
        f.pad(&text)
    }
}

/// The shortest exact spelling with a unit: `5ms`, `2.5s`, `250us`, `0s`.
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 4] = [
            (1_000_000_000, "s"),
            (1_000_000, "ms"),
            (1_000, "us"),
            (1, "ns"),
        ];
        if self.0 == 0 {
            return f.pad("0s");
        }
        let (scale, unit) = UNITS
            .iter()
            .copied()
            .find(|&(scale, _)| self.0 >= scale)
            .unwrap_or((1, "ns"));
        let whole = self.0 / scale;
        let frac = self.0 % scale;
        let text = if frac == 0 {
            format!("{whole}{unit}")
        } else {
            let digits = scale.ilog10() as usize;
            let frac = format!("{frac:0digits$}");
            format!("{whole}.{}{unit}", frac.trim_end_matches('0'))
        };
        f.pad(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_prints_nine_decimals() {
        assert_eq!(
            Instant::from_nanos(1_000_250_000).to_string(),
            "1.000250000"
        );
        assert_eq!(Instant::ZERO.to_string(), "0.000000000");
    }

    #[test]
    fn duration_prints_shortest_exact_form() {
        assert_eq!(Duration::from_millis(5).to_string(), "5ms");
        assert_eq!(Duration::from_millis(2500).to_string(), "2.5s");
        assert_eq!(Duration::from_nanos(4096).to_string(), "4.096us");
        assert_eq!(Duration::ZERO.to_string(), "0s");
    }

    #[test]
    fn smoltcp_conversion_rounds_down_to_micros() {
        assert_eq!(Instant::from_nanos(1_999).to_smoltcp().total_micros(), 1);
    }
}
