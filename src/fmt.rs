//! Plain-text formatting and parsing shared by the engine's messages and both
//! front ends: byte counts, thousands, ages, rates and durations such as a
//! lock TTL. No terminal, no styling: just strings.

use std::time::Duration;

/// Human byte count: "512 B", "1.5 KiB", "3.2 GiB".
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// 1234567 → "1,234,567".
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// An age or duration in seconds: "45s", "3m05s", "2h10m".
pub fn format_age(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// A span of time in the largest unit that reads well: "3 s", "5 min",
/// "1.5 h", "12 h", "322 h" (lock TTLs and ages in plain words).
pub fn span(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s < 90.0 {
        format!("{} s", s.floor())
    } else if s < 59.5 * 60.0 {
        format!("{} min", (s / 60.0).round())
    } else {
        let h = s / 3600.0;
        if h < 10.0 && (h - h.round()).abs() > 0.05 {
            format!("{h:.1} h")
        } else {
            format!("{} h", h.round())
        }
    }
}

/// A rate with a sensible number of decimals: "1234", "12.3", "1.23".
pub fn rate(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Parses a duration such as `45s`, `30m`, `2h`, `1d` (a lock TTL, a
/// skew allowance, an age guard). A number needs its unit.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("'{text}' has no unit: write e.g. 45s, 30m, 2h or 1d"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a number followed by a unit"))?;
    let seconds = match unit.trim() {
        "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86_400.0,
        other => {
            return Err(format!(
                "unknown unit '{other}' in '{text}' (use s, m, h or d)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("'{text}': {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers_and_ages() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(100), "100");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(format_age(59.9), "59s");
        assert_eq!(format_age(185.0), "3m05s");
        assert_eq!(format_age(7800.0), "2h10m");
        assert_eq!(rate(1234.4), "1234");
        assert_eq!(span(3.4), "3 s");
        assert_eq!(span(300.0), "5 min");
        assert_eq!(span(5400.0), "1.5 h");
        assert_eq!(span(3600.0), "1 h");
        assert_eq!(span(12.0 * 3600.0), "12 h");
        assert_eq!(span(322.0 * 3600.0 + 59.0), "322 h");
        assert_eq!(rate(12.34), "12.3");
    }

    #[test]
    fn parses_durations_with_units() {
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1.5d"), Ok(Duration::from_secs(129_600)));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("3w").is_err());
    }
}
