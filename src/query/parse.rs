//! Query text → typed values. Every error carries the byte offset of the
//! offending character ([`ParseError`]).

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use geo_types::Geometry;

use super::filter::Filter;
use super::model::{
    DatetimeRange, ParseError, Query, QueryError, QueryGeometry, QueryText, SortOrder,
};
use super::wkt;

/// Largest `@FILE` / inline geometry we read (a hostile file cannot exhaust memory).
pub const MAX_GEOMETRY_BYTES: u64 = 64 * 1024 * 1024;

impl Query {
    /// Parses every non-empty field of `text` into a typed query.
    ///
    /// # Errors
    /// [`QueryError::Parse`] pointing at the offending character of the
    /// offending field; [`QueryError::ConflictingGeometry`] when more than one
    /// of point / bbox / intersects is given; [`QueryError::GeometryFile`] when
    /// an `@FILE` cannot be read.
    pub fn parse(text: &QueryText) -> Result<Query, QueryError> {
        let geoms: Vec<&str> = [
            ("--point", &text.point),
            ("--bbox", &text.bbox),
            ("--intersects", &text.intersects),
        ]
        .iter()
        .filter(|(_, v)| given(v).is_some())
        .map(|(n, _)| *n)
        .collect();
        if geoms.len() > 1 {
            return Err(QueryError::ConflictingGeometry(geoms.join(" and ")));
        }
        let geometry = if let Some(p) = given(&text.point) {
            Some(parse_point(p)?)
        } else if let Some(b) = given(&text.bbox) {
            Some(parse_bbox(b)?)
        } else if let Some(g) = given(&text.intersects) {
            Some(QueryGeometry::Shape(parse_intersects(g)?))
        } else {
            None
        };
        Ok(Query {
            geometry,
            datetime: given(&text.datetime).map(parse_datetime).transpose()?,
            filter: match given(&text.filter) {
                Some(f) => Filter::parse(f)?,
                None => Filter::default(),
            },
            ids: given(&text.ids)
                .map(|s| parse_list("--ids", s))
                .transpose()?,
            collections: given(&text.collections)
                .map(|s| parse_list("--collections", s))
                .transpose()?,
            limit: given(&text.limit).map(parse_limit).transpose()?,
            sort: given(&text.sort).map(parse_sort).transpose()?,
        })
    }
}

/// A field's trimmed text, unless absent or blank.
fn given(f: &Option<String>) -> Option<&str> {
    f.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Splits `text` at commas into (offset, trimmed piece).
fn fields(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = 0;
    for piece in text.split(',') {
        let lead = piece.len() - piece.trim_start().len();
        out.push((start + lead, piece.trim()));
        start += piece.len() + 1;
    }
    out
}

/// Parses `count` comma-separated finite numbers.
fn numbers(
    field: &'static str,
    text: &str,
    count: usize,
    what: &str,
) -> Result<Vec<f64>, ParseError> {
    let parts = fields(text);
    // A bad character first (it is usually why the count is off too), then the count.
    for (at, s) in &parts {
        if s.parse::<f64>().ok().is_none_or(|v| !v.is_finite()) {
            let bad = s
                .find(|c: char| !(c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | 'e' | 'E')))
                .unwrap_or(0);
            return Err(ParseError::new(
                field,
                text,
                at + bad,
                format!("'{s}' is not a number"),
            ));
        }
    }
    if parts.len() != count {
        let at = if parts.len() > count {
            // The comma before the first extra value.
            parts[count].0.saturating_sub(1)
        } else {
            text.len()
        };
        return Err(ParseError::new(
            field,
            text,
            at,
            format!(
                "expected {count} comma-separated numbers ({what}), found {}",
                parts.len()
            ),
        ));
    }
    Ok(parts
        .iter()
        .filter_map(|(_, s)| s.parse::<f64>().ok())
        .collect())
}

fn check_lon(field: &'static str, text: &str, at: usize, v: f64) -> Result<(), ParseError> {
    if (-180.0..=180.0).contains(&v) {
        Ok(())
    } else {
        Err(ParseError::new(
            field,
            text,
            at,
            format!("longitude {v} is outside -180..180"),
        ))
    }
}

fn check_lat(field: &'static str, text: &str, at: usize, v: f64) -> Result<(), ParseError> {
    if (-90.0..=90.0).contains(&v) {
        Ok(())
    } else {
        Err(ParseError::new(
            field,
            text,
            at,
            format!("latitude {v} is outside -90..90"),
        ))
    }
}

/// `LON,LAT` in degrees.
pub fn parse_point(text: &str) -> Result<QueryGeometry, ParseError> {
    const F: &str = "--point";
    let v = numbers(F, text, 2, "LON,LAT")?;
    let at = fields(text);
    check_lon(F, text, at[0].0, v[0])?;
    check_lat(F, text, at[1].0, v[1])?;
    Ok(QueryGeometry::Point {
        lon: v[0],
        lat: v[1],
    })
}

/// `W,S,E,N` in degrees; `W > E` crosses the antimeridian.
pub fn parse_bbox(text: &str) -> Result<QueryGeometry, ParseError> {
    const F: &str = "--bbox";
    let v = numbers(F, text, 4, "W,S,E,N")?;
    let at = fields(text);
    check_lon(F, text, at[0].0, v[0])?;
    check_lat(F, text, at[1].0, v[1])?;
    check_lon(F, text, at[2].0, v[2])?;
    check_lat(F, text, at[3].0, v[3])?;
    if v[1] > v[3] {
        return Err(ParseError::new(
            F,
            text,
            at[3].0,
            format!("north {} is south of south {}", v[3], v[1]),
        ));
    }
    Ok(QueryGeometry::BBox {
        west: v[0],
        south: v[1],
        east: v[2],
        north: v[3],
    })
}

/// GeoJSON (a geometry, or a Feature's geometry) or WKT; `@FILE` reads either from a file.
pub fn parse_intersects(text: &str) -> Result<Geometry<f64>, QueryError> {
    const F: &str = "--intersects";
    if let Some(path) = text.strip_prefix('@') {
        // Read at most one byte past the limit: the size in the metadata says
        // nothing for FIFOs, /dev/zero or /proc files.
        let read = || -> std::io::Result<String> {
            use std::io::Read;
            if !std::fs::metadata(path)?.is_file() {
                return Err(std::io::Error::other("not a regular file"));
            }
            let mut body = String::new();
            std::fs::File::open(path)?
                .take(MAX_GEOMETRY_BYTES + 1)
                .read_to_string(&mut body)?;
            if body.len() as u64 > MAX_GEOMETRY_BYTES {
                return Err(std::io::Error::other(format!(
                    "more than the limit of {MAX_GEOMETRY_BYTES} bytes"
                )));
            }
            Ok(body)
        };
        let body = read().map_err(|source| QueryError::GeometryFile {
            path: path.to_string(),
            source,
        })?;
        return parse_geometry_text(F, &body).map_err(Into::into);
    }
    parse_geometry_text(F, text).map_err(Into::into)
}

/// GeoJSON when the text starts with `{`, WKT otherwise.
pub fn parse_geometry_text(field: &'static str, text: &str) -> Result<Geometry<f64>, ParseError> {
    let lead = text.len() - text.trim_start().len();
    if text.trim_start().starts_with('{') {
        parse_geojson(field, text, lead)
    } else {
        wkt::parse(field, text)
    }
}

fn parse_geojson(
    field: &'static str,
    text: &str,
    lead: usize,
) -> Result<Geometry<f64>, ParseError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        ParseError::new(
            field,
            text,
            line_col_offset(text, e.line(), e.column()),
            format!("invalid JSON: {e}"),
        )
    })?;
    let geometry = match value.get("type").and_then(|t| t.as_str()) {
        Some("Feature") => value
            .get("geometry")
            .cloned()
            .unwrap_or(serde_json::Value::Null),
        Some("FeatureCollection") => {
            return Err(ParseError::new(
                field,
                text,
                lead,
                "a FeatureCollection is not a geometry: give one geometry or Feature",
            ));
        }
        _ => value,
    };
    if geometry.is_null() {
        return Err(ParseError::new(
            field,
            text,
            lead,
            "the Feature has no geometry",
        ));
    }
    let mut vertices = 0usize;
    geojson_geometry(&geometry, 0, &mut vertices)
        .map_err(|m| ParseError::new(field, text, lead, format!("invalid GeoJSON geometry: {m}")))
}

/// Most vertices a query geometry may have.
const MAX_QUERY_VERTICES: usize = 1_000_000;

/// GeoJSON → geo-types without planar validity checks: a query polygon may
/// cross the antimeridian (its hole is then "outside" it in plain lon/lat),
/// which the item validator would refuse.
fn geojson_geometry(
    v: &serde_json::Value,
    depth: usize,
    vertices: &mut usize,
) -> Result<Geometry<f64>, String> {
    use geo_types::{
        GeometryCollection, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon,
    };
    let kind = v
        .get("type")
        .and_then(|t| t.as_str())
        .ok_or("no \"type\"")?;
    if kind == "GeometryCollection" {
        if depth > 4 {
            return Err("collections nested too deep".into());
        }
        let members = v
            .get("geometries")
            .and_then(|g| g.as_array())
            .ok_or("no \"geometries\" array")?;
        return members
            .iter()
            .map(|m| geojson_geometry(m, depth + 1, vertices))
            .collect::<Result<Vec<_>, _>>()
            .map(|g| Geometry::GeometryCollection(GeometryCollection(g)));
    }
    let c = v.get("coordinates").ok_or("no \"coordinates\"")?;
    let mut position = |p: &serde_json::Value| -> Result<geo_types::Coord<f64>, String> {
        *vertices += 1;
        if *vertices > MAX_QUERY_VERTICES {
            return Err(format!("more than {MAX_QUERY_VERTICES} vertices"));
        }
        let a = p
            .as_array()
            .filter(|a| a.len() >= 2)
            .ok_or("a position is not [lon, lat]")?;
        let (x, y) = (a[0].as_f64(), a[1].as_f64());
        match (x, y) {
            (Some(x), Some(y)) if (-180.0..=180.0).contains(&x) && (-90.0..=90.0).contains(&y) => {
                Ok(geo_types::Coord { x, y })
            }
            _ => Err(format!("position {p} is not a lon/lat in degrees")),
        }
    };
    fn list<'v>(
        v: &'v serde_json::Value,
        what: &str,
    ) -> Result<&'v Vec<serde_json::Value>, String> {
        v.as_array()
            .ok_or_else(|| format!("{what} is not an array"))
    }
    let mut line = |v: &serde_json::Value| -> Result<geo_types::LineString<f64>, String> {
        list(v, "a line")?
            .iter()
            .map(&mut position)
            .collect::<Result<Vec<_>, _>>()
            .map(geo_types::LineString)
    };
    let polygon = |v: &serde_json::Value,
                   line: &mut dyn FnMut(
        &serde_json::Value,
    ) -> Result<geo_types::LineString<f64>, String>|
     -> Result<Polygon<f64>, String> {
        let rings = list(v, "a polygon")?
            .iter()
            .map(|r| {
                let ring = line(r)?;
                if ring.0.len() < 4 || ring.0.first() != ring.0.last() {
                    return Err(
                        "a ring needs 4 or more positions, the last equal to the first".to_string(),
                    );
                }
                Ok(ring)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut rings = rings.into_iter();
        let exterior = rings.next().ok_or("a polygon has no ring")?;
        Ok(Polygon::new(exterior, rings.collect()))
    };
    let g = match kind {
        "Point" => Geometry::Point(Point(position(c)?)),
        "MultiPoint" => Geometry::MultiPoint(MultiPoint(
            list(c, "coordinates")?
                .iter()
                .map(|p| position(p).map(Point))
                .collect::<Result<_, _>>()?,
        )),
        "LineString" => Geometry::LineString(line(c)?),
        "MultiLineString" => Geometry::MultiLineString(MultiLineString(
            list(c, "coordinates")?
                .iter()
                .map(&mut line)
                .collect::<Result<_, _>>()?,
        )),
        "Polygon" => Geometry::Polygon(polygon(c, &mut line)?),
        "MultiPolygon" => Geometry::MultiPolygon(MultiPolygon(
            list(c, "coordinates")?
                .iter()
                .map(|p| polygon(p, &mut line))
                .collect::<Result<_, _>>()?,
        )),
        other => return Err(format!("unknown geometry type {other}")),
    };
    Ok(g)
}

/// Byte offset of serde_json's 1-based (line, column); column 0 means "at the line's end".
fn line_col_offset(text: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return offset + column.saturating_sub(1).min(l.len());
        }
        offset += l.len();
    }
    text.len()
}

/// RFC 3339 instant or interval `A/B`, `../B`, `A/..` (an empty side is open
/// too). A date alone (`2020-05-01`) means the whole day: as a start, its
/// first instant; as an end, its last; alone, both.
pub fn parse_datetime(text: &str) -> Result<DatetimeRange, ParseError> {
    const F: &str = "--datetime";
    let Some(slash) = text.find('/') else {
        let (start, end) = instant(F, text, text, 0)?;
        return Ok(DatetimeRange {
            start: Some(start),
            end: Some(end),
        });
    };
    let (a, b) = (&text[..slash], &text[slash + 1..]);
    if let Some(extra) = b.find('/') {
        return Err(ParseError::new(
            F,
            text,
            slash + 1 + extra,
            "more than one '/' in the interval",
        ));
    }
    type Bounds = Option<(DateTime<Utc>, DateTime<Utc>)>;
    let side = |s: &str, at: usize| -> Result<Bounds, ParseError> {
        let t = s.trim();
        if t.is_empty() || t == ".." {
            Ok(None)
        } else {
            let lead = s.len() - s.trim_start().len();
            instant(F, text, t, at + lead).map(Some)
        }
    };
    let start = side(a, 0)?.map(|(s, _)| s);
    let end = side(b, slash + 1)?.map(|(_, e)| e);
    if start.is_none() && end.is_none() {
        return Err(ParseError::new(
            F,
            text,
            slash,
            "both ends of the interval are open: give at least one",
        ));
    }
    if let (Some(s), Some(e)) = (start, end)
        && s > e
    {
        return Err(ParseError::new(
            F,
            text,
            slash + 1,
            "the interval ends before it starts",
        ));
    }
    Ok(DatetimeRange { start, end })
}

/// One RFC 3339 instant (or a date: its first instant) written at byte
/// `base` of `full` (for filter literals).
pub(crate) fn instant_in(
    field: &'static str,
    full: &str,
    s: &str,
    base: usize,
) -> Result<DateTime<Utc>, ParseError> {
    instant(field, full, s, base).map(|(first, _)| first)
}

/// One RFC 3339 instant (or a date: its first and last instant) found at
/// `base` within `full`. Returns (first, last) instant it denotes.
fn instant(
    field: &'static str,
    full: &str,
    s: &str,
    base: usize,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ParseError> {
    let b = s.as_bytes();
    let err = |i: usize, m: &str| ParseError::new(field, full, base + i, m.to_string());
    let digits = |i: usize, n: usize, what: &str| -> Result<u32, ParseError> {
        let mut v = 0u32;
        for k in 0..n {
            match b.get(i + k) {
                Some(c) if c.is_ascii_digit() => v = v * 10 + u32::from(c - b'0'),
                _ => return Err(err(i + k, &format!("expected {n} digits of the {what}"))),
            }
        }
        Ok(v)
    };
    let expect = |i: usize, chars: &[u8], what: &str| -> Result<(), ParseError> {
        match b.get(i) {
            Some(c) if chars.contains(c) => Ok(()),
            _ => Err(err(i, &format!("expected {what}"))),
        }
    };
    let year = digits(0, 4, "year")?;
    expect(4, b"-", "'-' after the year")?;
    let month = digits(5, 2, "month")?;
    expect(7, b"-", "'-' after the month")?;
    let day = digits(8, 2, "day")?;
    let date = NaiveDate::from_ymd_opt(year as i32, month, day).ok_or_else(|| {
        err(
            5,
            &format!("{year:04}-{month:02}-{day:02} is not a calendar date"),
        )
    })?;
    if b.len() == 10 {
        let first = date.and_time(NaiveTime::MIN).and_utc();
        let last = first + TimeDelta::days(1) - TimeDelta::microseconds(1);
        return Ok((first, last));
    }
    expect(
        10,
        b"Tt ",
        "'T' between date and time (or nothing: a whole day)",
    )?;
    let hour = digits(11, 2, "hour")?;
    expect(13, b":", "':' after the hour")?;
    let minute = digits(14, 2, "minute")?;
    expect(16, b":", "':' after the minutes")?;
    let second = digits(17, 2, "second")?;
    let mut i = 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let from = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - from < 9 {
                nanos = nanos * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == from {
            return Err(err(i, "expected digits of the fraction of a second"));
        }
        for _ in (i - from).min(9)..9 {
            nanos *= 10;
        }
    }
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second.min(59), nanos)
        .filter(|_| second <= 60)
        .ok_or_else(|| {
            err(
                11,
                &format!("{hour:02}:{minute:02}:{second:02} is not a time of day"),
            )
        })?;
    let offset_secs: i64 = match b.get(i) {
        Some(b'Z' | b'z') => {
            i += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let h = digits(i + 1, 2, "offset hours")?;
            expect(i + 3, b":", "':' in the UTC offset")?;
            let m = digits(i + 4, 2, "offset minutes")?;
            if h > 23 || m > 59 {
                return Err(err(i, "UTC offset out of range"));
            }
            i += 6;
            let v = i64::from(h * 3600 + m * 60);
            if sign == b'-' { -v } else { v }
        }
        _ => return Err(err(i, "expected 'Z' or a UTC offset like +02:00")),
    };
    if i != b.len() {
        return Err(err(i, "unexpected text after the datetime"));
    }
    let t = date.and_time(time).and_utc() - TimeDelta::seconds(offset_secs);
    Ok((t, t))
}

/// Comma-separated non-empty values.
fn parse_list(field: &'static str, text: &str) -> Result<BTreeSet<String>, ParseError> {
    fields(text)
        .into_iter()
        .map(|(at, s)| {
            if s.is_empty() {
                Err(ParseError::new(field, text, at, "empty value in the list"))
            } else {
                Ok(s.to_string())
            }
        })
        .collect()
}

/// A positive integer.
pub fn parse_limit(text: &str) -> Result<usize, ParseError> {
    let bad = text.find(|c: char| !c.is_ascii_digit());
    match (bad, text.parse::<usize>()) {
        (None, Ok(n)) if n > 0 => Ok(n),
        (Some(at), _) => Err(ParseError::new(
            "--limit",
            text,
            at,
            "expected a positive integer",
        )),
        _ => Err(ParseError::new(
            "--limit",
            text,
            0,
            "expected a positive integer",
        )),
    }
}

/// `datetime` (oldest first) or `-datetime` (newest first); `+datetime` too.
pub fn parse_sort(text: &str) -> Result<SortOrder, ParseError> {
    match text {
        "datetime" | "+datetime" => Ok(SortOrder::DatetimeAsc),
        "-datetime" => Ok(SortOrder::DatetimeDesc),
        _ => {
            let at = usize::from(text.starts_with(['-', '+']));
            Err(ParseError::new(
                "--sort",
                text,
                at,
                "only datetime can be sorted on: give datetime or -datetime",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_files_must_be_regular_files() {
        // A character device reports size 0 and never ends: refused, not read.
        let e = parse_intersects("@/dev/zero").unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("area.wkt");
        std::fs::write(&file, "POINT (1 2)").unwrap();
        assert!(parse_intersects(&format!("@{}", file.display())).is_ok());
    }

    #[test]
    fn bbox_errors_point_at_the_value() {
        let e = parse_bbox("10, 20,x,30").unwrap_err();
        assert_eq!((e.offset, e.column()), (7, 8));
        let e = parse_bbox("10,20,30").unwrap_err();
        assert_eq!(e.offset, 8);
        let e = parse_bbox("10,20;30,40").unwrap_err();
        assert_eq!(e.offset, 5);
        let e = parse_bbox("10,95,30,96").unwrap_err();
        assert_eq!(e.offset, 3);
        let e = parse_bbox("10,50,30,40").unwrap_err();
        assert!(e.message.contains("south"), "{e}");
        assert!(matches!(
            parse_bbox("170,-10,-170,10").unwrap(),
            QueryGeometry::BBox { west, east, .. } if west > east
        ));
    }

    #[test]
    fn datetimes_and_intervals() {
        let r = parse_datetime("2020-01-01T00:00:00Z/2020-12-31T23:59:59Z").unwrap();
        assert_eq!(r.start.unwrap().to_rfc3339(), "2020-01-01T00:00:00+00:00");
        let r = parse_datetime("../2020-03-01").unwrap();
        assert!(r.start.is_none());
        assert_eq!(
            r.end.unwrap().to_rfc3339(),
            "2020-03-01T23:59:59.999999+00:00"
        );
        let r = parse_datetime("2020-03-01T10:00:00+02:00/..").unwrap();
        assert_eq!(r.start.unwrap().to_rfc3339(), "2020-03-01T08:00:00+00:00");
        let e = parse_datetime("2020-13-01").unwrap_err();
        assert_eq!(e.offset, 5);
        let e = parse_datetime("2020-01-01/2020-01-01T10:0x:00Z").unwrap_err();
        assert_eq!(e.offset, 11 + 15);
        let e = parse_datetime("2021-01-01/2020-01-01").unwrap_err();
        assert!(e.message.contains("ends before"), "{e}");
        assert!(parse_datetime("../..").is_err());
    }

    #[test]
    fn error_display_has_a_caret_under_the_character() {
        let e = parse_point("12.5,abc").unwrap_err();
        let shown = e.to_string();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines[1], "  12.5,abc");
        assert_eq!(lines[2], "       ^");
    }

    #[test]
    fn limit_and_sort() {
        assert_eq!(parse_limit("25").unwrap(), 25);
        assert_eq!(parse_limit("2x5").unwrap_err().offset, 1);
        assert!(parse_limit("0").is_err());
        assert_eq!(parse_sort("-datetime").unwrap(), SortOrder::DatetimeDesc);
        assert_eq!(parse_sort("-platform").unwrap_err().offset, 1);
    }
}
