//! Fast UTC timestamp formatting for the demo-data generator (a million items
//! carry seven timestamps each; chrono's format strings are parsed per call).

use std::fmt::Write as _;

pub const MICROS_PER_DAY: i64 = 86_400_000_000;
pub const MILLIS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub const fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of days since 1970-01-01.
pub const fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + if m <= 2 { 1 } else { 0 }, m, d)
}

/// Year of a timestamp in microseconds since the epoch.
pub fn year_of_micros(us: i64) -> i64 {
    civil_from_days(us.div_euclid(MICROS_PER_DAY)).0
}

/// `YYYYMMDD` of a timestamp in microseconds.
pub fn write_compact_date(out: &mut String, us: i64) {
    let (y, m, d) = civil_from_days(us.div_euclid(MICROS_PER_DAY));
    let _ = write!(out, "{y:04}{m:02}{d:02}");
}

/// `YYYY-MM-DDTHH:MM:SS.ffffff` (+ `Z` when `zulu`) of microseconds since the epoch.
pub fn write_micros(out: &mut String, us: i64, zulu: bool) {
    let (days, rem) = (us.div_euclid(MICROS_PER_DAY), us.rem_euclid(MICROS_PER_DAY));
    let (y, mo, d) = civil_from_days(days);
    let secs = rem / 1_000_000;
    let _ = write!(
        out,
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:06}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        rem % 1_000_000
    );
    if zulu {
        out.push('Z');
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (S3 Inventory's form) of milliseconds since the epoch.
pub fn write_millis(out: &mut String, ms: i64) {
    let (days, rem) = (ms.div_euclid(MILLIS_PER_DAY), ms.rem_euclid(MILLIS_PER_DAY));
    let (y, mo, d) = civil_from_days(days);
    let secs = rem / 1000;
    let _ = write!(
        out,
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        rem % 1000
    );
}

/// `YYYY-MM-DD` of milliseconds since the epoch.
pub fn date_of_millis(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(MILLIS_PER_DAY));
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    #[test]
    fn matches_chrono() {
        for us in [
            0i64,
            1_422_436_389_020_906,
            1_767_225_599_999_999,
            951_782_400_000_000,
            -86_400_000_001,
        ] {
            let dt = DateTime::<Utc>::from_timestamp_micros(us).unwrap();
            let mut s = String::new();
            write_micros(&mut s, us, true);
            assert_eq!(s, dt.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
            let mut s = String::new();
            write_millis(&mut s, us / 1000);
            assert_eq!(
                s,
                DateTime::<Utc>::from_timestamp_millis(us / 1000)
                    .unwrap()
                    .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                    .to_string()
            );
            assert_eq!(year_of_micros(us), i64::from(chrono::Datelike::year(&dt)));
        }
        assert_eq!(days_from_civil(2015, 1, 28), 16_463);
        assert_eq!(civil_from_days(16_463), (2015, 1, 28));
        assert_eq!(date_of_millis(1_422_436_389_020), "2015-01-28");
    }
}
