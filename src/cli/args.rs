//! The accepted range of every numeric command-line option, in one place.
//!
//! An option outside its range is a usage error (exit 2) that names the
//! option and the range, raised by clap before any command runs: a typo
//! such as `tail -n 99999999999` must not allocate for a trillion lines,
//! and `--max-cost NaN` must not silently match nothing. The ranges are
//! wide enough for any real use; the help text of each option states it.
use clap::builder::{RangedU64ValueParser, TypedValueParser};

/// `init --segment-bytes`: a segment must hold its header and a few frames;
/// above 4 GiB a sealed segment stops being cheap to map and verify.
/// `init --clock-tolerance-s`: a second to a day.
pub const CLOCK_TOLERANCE_S: std::ops::RangeInclusive<u64> = 1..=86_400;

pub const SEGMENT_BYTES: std::ops::RangeInclusive<u64> = 4096..=(4 << 30);
/// `tail -n`: 0 (with `-f`, only new entries) up to a million lines kept.
pub const TAIL_LINES: std::ops::RangeInclusive<u64> = 0..=1_000_000;
/// `inspect --scan`: entries after the inspected one searched for children.
pub const INSPECT_SCAN: std::ops::RangeInclusive<u64> = 0..=1_000_000_000;
/// `verify --threads`.
pub const THREADS: std::ops::RangeInclusive<u64> = 1..=256;
/// `workers --stale-after-s` / `--stuck-after-s`: up to a year (0 reports
/// every worker or claim, which tests and drills use).
pub const AGE_SECONDS: std::ops::RangeInclusive<u64> = 0..=366 * 86_400;
/// `route --context-length`: tokens.
pub const CONTEXT_LENGTH: std::ops::RangeInclusive<u64> = 1..=1_000_000_000;
/// `route --max-cost`, `policy check --cost`: US dollars.
pub const USD_MAX: f64 = 1e9;
/// `workers --rss-max-mb`: megabytes (16 TiB).
pub const MB_MAX: f64 = 16.0 * 1024.0 * 1024.0;

/// A `usize` option within `range`.
pub fn usize_in(range: std::ops::RangeInclusive<u64>) -> impl TypedValueParser<Value = usize> {
    RangedU64ValueParser::<usize>::new().range(range)
}

/// A `u64` option within `range`.
pub fn u64_in(range: std::ops::RangeInclusive<u64>) -> impl TypedValueParser<Value = u64> {
    RangedU64ValueParser::<u64>::new().range(range)
}

fn bounded_f64(s: &str, max: f64) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number (expected 0..={max})"))?;
    if !v.is_finite() || !(0.0..=max).contains(&v) {
        return Err(format!("{v} is not in 0..={max}"));
    }
    Ok(v)
}

/// US dollars: finite, 0 to `USD_MAX`.
pub fn usd(s: &str) -> Result<f64, String> {
    bounded_f64(s, USD_MAX)
}

/// Megabytes: finite, 0 to `MB_MAX`.
pub fn megabytes(s: &str) -> Result<f64, String> {
    bounded_f64(s, MB_MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn usd_refuses_non_finite_negative_and_huge() {
        assert_eq!(super::usd("0.5").unwrap(), 0.5);
        assert_eq!(super::usd("0").unwrap(), 0.0);
        for bad in [
            "nan", "NaN", "inf", "-inf", "-0.01", "1e10", "1e400", "", "abc",
        ] {
            assert!(super::usd(bad).is_err(), "{bad:?} accepted");
        }
    }
}
