//! Plain-text formatting and parsing shared by the engine's messages and both
//! front ends: byte counts, thousands, ages, rates and durations such as a
//! lock TTL; and the two guards every output of item data goes through —
//! [`terminal_safe`] (text for a terminal) and [`csv_cell`] (a cell a
//! spreadsheet will open). No terminal, no styling: just strings.

use std::borrow::Cow;
use std::time::Duration;

/// True for a character a terminal could act on rather than show: C0 and C1
/// controls and DEL (ESC starts CSI/OSC sequences that retitle the window,
/// write the clipboard or worse; BEL, BS and CR rewrite what is shown), and
/// the bidi overrides and isolates that reorder what is shown.
fn acts_on_terminal(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every character a terminal could act on escaped visibly
/// (`\x1b`, `\x07`, `\n`, `\u{202e}`): one line that shows what the data
/// holds and cannot drive the terminal. Borrowed when there is nothing to
/// escape (the usual case). For item data — ids, properties, titles — and
/// error text on its way to a terminal; JSON output needs none of it.
pub fn terminal_safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(acts_on_terminal) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 && acts_on_terminal(c) => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if acts_on_terminal(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// [`terminal_safe`] for text of several lines (a report, a message block):
/// newlines stay, everything else a terminal could act on is escaped.
pub fn terminal_safe_lines(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && acts_on_terminal(c)) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.split('\n')
            .map(terminal_safe)
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// A CSV cell a spreadsheet will not run: text starting with `=`, `+`, `-`,
/// `@`, tab or CR (a formula, or one once the spreadsheet trims it) gets a
/// leading `'`, which spreadsheets show as text (OWASP's CSV-injection
/// advice). Plain numbers such as `-12.5` stay numbers. Quoting for the CSV
/// syntax itself is the writer's job.
pub fn csv_cell(text: &str) -> Cow<'_, str> {
    let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if formula && !is_plain_number(text) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// `-12`, `-0.5`: an optional minus, digits, at most one decimal point.
fn is_plain_number(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let mut parts = digits.splitn(2, '.');
    let whole = parts.next().unwrap_or_default();
    let fraction = parts.next();
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

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

/// A table of text cells, written as Markdown or CSV (exports and
/// `--format markdown`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextTable {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl TextTable {
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: vec![],
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// A GitHub-flavoured Markdown table (`|` in cells escaped, and what a
    /// terminal could act on, see [`markdown_row`]).
    pub fn markdown(&self) -> String {
        let mut out = markdown_row(&self.headers);
        out.push_str(&format!("|{}\n", " --- |".repeat(self.headers.len())));
        for row in &self.rows {
            out.push_str(&markdown_row(row));
        }
        out
    }

    /// CSV with a header row (RFC 4180 quoting; formula cells neutralised,
    /// see [`csv_record`]).
    pub fn csv(&self) -> String {
        let mut out = csv_record(&self.headers);
        for row in &self.rows {
            out.push_str(&csv_record(row));
        }
        out
    }
}

/// One CSV record with its line end: RFC 4180 quoting, each cell made safe
/// for spreadsheets by [`csv_cell`] and for the terminal it is often printed
/// to by [`terminal_safe`]. Every CSV ecops writes goes through here.
pub fn csv_record<S: AsRef<str>>(cells: &[S]) -> String {
    let mut w = csv::Writer::from_writer(vec![]);
    let safe = |c: &S| csv_cell(&terminal_safe(c.as_ref())).into_owned();
    // Writing to a Vec cannot fail.
    let _ = w.write_record(cells.iter().map(safe));
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// One Markdown table row, newline-terminated: `|` in cells escaped, and
/// what a terminal could act on ([`terminal_safe`]: the rows are printed).
pub fn markdown_row(cells: &[String]) -> String {
    let escaped: Vec<String> = cells
        .iter()
        .map(|c| terminal_safe(c).replace('|', "\\|"))
        .collect();
    format!("| {} |\n", escaped.join(" | "))
}

/// The top cells as a table (cell, rows, files, bytes).
pub fn top_cells_table(cells: &[crate::catalog::stats::CellStats]) -> TextTable {
    let mut t = TextTable::new(&["cell", "rows", "files", "bytes"]);
    for c in cells {
        t.push(vec![
            c.cell.clone(),
            c.rows.to_string(),
            c.files.to_string(),
            c.bytes.to_string(),
        ]);
    }
    t
}

/// (cell, year) partitions as a table (cell, year, rows, files, bytes, small files).
pub fn partitions_table<'a>(
    parts: impl IntoIterator<Item = &'a crate::catalog::stats::PartitionStats>,
) -> TextTable {
    let mut t = TextTable::new(&["cell", "year", "rows", "files", "bytes", "small_files"]);
    for p in parts {
        t.push(vec![
            p.cell.clone(),
            p.year.map_or("-".into(), |y| y.to_string()),
            p.rows.to_string(),
            p.files.to_string(),
            p.bytes.to_string(),
            p.small_files.to_string(),
        ]);
    }
    t
}

/// Backfill runs as a table (run, state, chunks, reduce, counters, rate).
pub fn backfills_table(runs: &[crate::backfill::Status]) -> TextTable {
    let mut t = TextTable::new(&[
        "run",
        "state",
        "chunks",
        "chunks_done",
        "chunks_failed",
        "partitions",
        "partitions_reduced",
        "buckets_reduced",
        "items",
        "rows",
        "failed_items",
        "items_per_second",
    ]);
    for s in runs {
        t.push(vec![
            s.run.clone(),
            s.state.label().into(),
            s.chunks.total.to_string(),
            s.chunks.done.to_string(),
            s.chunks.failed.to_string(),
            s.partitions.to_string(),
            s.partitions_reduced.to_string(),
            s.buckets_reduced.to_string(),
            s.items.to_string(),
            s.rows.to_string(),
            s.failed_items.to_string(),
            format!("{:.1}", s.items_per_second),
        ]);
    }
    t
}

#[cfg(test)]
mod table_tests {
    use super::*;

    #[test]
    fn markdown_and_csv_escape_their_separators() {
        let mut t = TextTable::new(&["id", "note"]);
        t.push(vec!["a|b".into(), "x, \"y\"".into()]);
        assert_eq!(
            t.markdown(),
            "| id | note |\n| --- | --- |\n| a\\|b | x, \"y\" |\n"
        );
        assert_eq!(t.csv(), "id,note\na|b,\"x, \"\"y\"\"\"\n");
    }

    #[test]
    fn formula_cells_are_neutralised_and_numbers_kept() {
        for (cell, safe) in [
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "'=HYPERLINK(\"http://x\",\"y\")",
            ),
            ("+1+1", "'+1+1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("-2+3", "'-2+3"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("-", "'-"),
            ("-12", "-12"),
            ("-0.5", "-0.5"),
            ("S2A_1", "S2A_1"),
            ("", ""),
        ] {
            assert_eq!(csv_cell(cell), safe, "{cell:?}");
        }
        let mut t = TextTable::new(&["id", "platform"]);
        t.push(vec!["=1+1".into(), "\u{1b}]0;x\u{7}".into()]);
        assert_eq!(t.csv(), "id,platform\n'=1+1,\\x1b]0;x\\x07\n");
    }

    #[test]
    fn terminal_text_shows_controls_instead_of_sending_them() {
        assert!(matches!(terminal_safe("S2A tile 31"), Cow::Borrowed(_)));
        assert_eq!(terminal_safe("\u{1b}]0;pwned\u{7}"), "\\x1b]0;pwned\\x07");
        assert_eq!(terminal_safe("a\nb\tc\rd\u{7f}"), "a\\nb\\tc\\rd\\x7f");
        assert_eq!(terminal_safe("\u{9b}31m"), "\\x9b31m");
        assert_eq!(terminal_safe("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(terminal_safe("é ✓ 日本"), "é ✓ 日本");
        assert_eq!(terminal_safe_lines("a\u{1b}[2J\nb"), "a\\x1b[2J\nb");
        assert_eq!(
            markdown_row(&["\u{1b}]0;x\u{7}|y".into()]),
            "| \\x1b]0;x\\x07\\|y |\n"
        );
    }
}
