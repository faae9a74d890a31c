//! Streaming output of hits: each item is written as it arrives (JSON and
//! GeoJSON are streamed arrays), so memory does not grow with the result.

use std::io::Write;

use serde_json::{Value, json};

use crate::fmt::{csv_record, terminal_safe};
use crate::query::scan::{Fields, Hit};

/// Output formats of `ecops query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns: id, datetime, platform, cell (or id, href with --uris).
    Table,
    /// One JSON array of items, on one line (streamed: the `--json` convention
    /// of a single JSON value on the last stdout line holds).
    Json,
    /// One JSON object per item per line.
    Ndjson,
    /// CSV with a header.
    Csv,
    /// A GeoJSON FeatureCollection, on one line (streamed).
    Geojson,
    /// A Markdown table (the table format's columns), for tickets.
    Markdown,
    /// stac-geoparquet 1.0.0 (a Parquet file STAC tools read as items): needs --output FILE.
    StacGeoparquet,
}

impl Format {
    /// The columns the format needs read.
    pub fn fields(self, uris: bool) -> Fields {
        match self {
            _ if uris => Fields::Assets,
            Format::Table | Format::Csv | Format::Markdown => Fields::Core,
            Format::Json | Format::Ndjson | Format::Geojson | Format::StacGeoparquet => Fields::All,
        }
    }
}

/// What each output record holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// The item.
    Item,
    /// (id, href of this asset), like earthcatalog's `search_uris`.
    Uri(String),
}

/// Writes hits one by one in a format.
pub struct HitWriter<W: Write> {
    out: W,
    format: Format,
    record: Record,
    count: u64,
}

fn rfc3339(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// An item as one JSON object, members in this order: id, collection,
/// datetime, platform, grid_partition, geometry (GeoJSON), assets,
/// properties (every other column).
#[derive(Debug, serde::Serialize)]
pub struct ItemRecord<'a> {
    pub id: &'a str,
    pub collection: Option<&'a str>,
    pub datetime: Option<String>,
    pub platform: Option<&'a str>,
    pub grid_partition: &'a str,
    pub geometry: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assets: Option<&'a Value>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub properties: &'a std::collections::BTreeMap<String, Value>,
}

/// The [`ItemRecord`] of a hit.
pub fn item_record(hit: &Hit) -> ItemRecord<'_> {
    ItemRecord {
        id: &hit.id,
        collection: hit.collection.as_deref(),
        datetime: hit.datetime.as_ref().map(rfc3339),
        platform: hit.platform.as_deref(),
        grid_partition: &hit.grid_partition,
        geometry: hit
            .geometry
            .as_ref()
            .map_or(Value::Null, crate::stac::geojson::geometry_to_json),
        assets: hit.assets.as_ref(),
        properties: &hit.properties,
    }
}

/// An item as a GeoJSON Feature: the STAC item, with the partition it was
/// read from among its properties.
pub fn item_feature(hit: &Hit) -> Value {
    let mut item = hit.stac_item();
    if let Some(props) = item.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert("grid_partition".into(), hit.grid_partition.clone().into());
    }
    item
}

impl<W: Write> HitWriter<W> {
    /// Starts the output (writes headers / opening brackets).
    pub fn new(mut out: W, format: Format, record: Record) -> std::io::Result<Self> {
        match format {
            Format::Json => out.write_all(b"[")?,
            Format::Geojson => out.write_all(b"{\"type\":\"FeatureCollection\",\"features\":[")?,
            Format::Csv => {
                let header: &[&str] = match record {
                    Record::Uri(_) => &["id", "href"],
                    Record::Item => &["id", "datetime", "platform", "collection", "grid_partition"],
                };
                out.write_all(crate::fmt::csv_record(header).as_bytes())?;
            }
            Format::Table => {
                let header = match record {
                    Record::Uri(_) => format!("{:<48} href", "id"),
                    Record::Item => format!(
                        "{:<48} {:<27} {:<8} grid_partition",
                        "id", "datetime", "platform"
                    ),
                };
                writeln!(out, "{header}")?;
            }
            Format::Markdown => {
                let header: &[&str] = match record {
                    Record::Uri(_) => &["id", "href"],
                    Record::Item => &["id", "datetime", "platform", "grid_partition"],
                };
                write!(out, "{}", crate::fmt::TextTable::new(header).markdown())?;
            }
            Format::Ndjson | Format::StacGeoparquet => {}
        }
        Ok(Self {
            out,
            format,
            record,
            count: 0,
        })
    }

    /// Writes one hit. With [`Record::Uri`], an item without that asset is skipped
    /// (returns false), as earthcatalog's `search_uris` does.
    pub fn write(&mut self, hit: &Hit) -> std::io::Result<bool> {
        let href = match &self.record {
            Record::Uri(asset) => match hit.href(asset) {
                Some(h) => Some(h.to_string()),
                None => return Ok(false),
            },
            Record::Item => None,
        };
        let sep = if self.count > 0 { "," } else { "" };
        match (self.format, &href) {
            (Format::Markdown, _) => {
                let cells = match &href {
                    Some(h) => vec![hit.id.clone(), h.clone()],
                    None => vec![
                        hit.id.clone(),
                        hit.datetime.as_ref().map(rfc3339).unwrap_or_default(),
                        hit.platform.clone().unwrap_or_default(),
                        hit.grid_partition.clone(),
                    ],
                };
                write!(self.out, "{}", crate::fmt::markdown_row(&cells))?;
            }
            // Item data goes to a terminal: nothing in it may drive the terminal.
            (Format::Table, Some(h)) => writeln!(
                self.out,
                "{:<48} {}",
                terminal_safe(&hit.id),
                terminal_safe(h)
            )?,
            (Format::Table, None) => writeln!(
                self.out,
                "{:<48} {:<27} {:<8} {}",
                terminal_safe(&hit.id),
                hit.datetime.as_ref().map(rfc3339).unwrap_or_default(),
                terminal_safe(hit.platform.as_deref().unwrap_or("")),
                terminal_safe(&hit.grid_partition)
            )?,
            (Format::Csv, _) => {
                let line = match &href {
                    Some(h) => csv_record(&[hit.id.as_str(), h]),
                    None => csv_record(&[
                        hit.id.as_str(),
                        &hit.datetime.as_ref().map(rfc3339).unwrap_or_default(),
                        hit.platform.as_deref().unwrap_or(""),
                        hit.collection.as_deref().unwrap_or(""),
                        &hit.grid_partition,
                    ]),
                };
                self.out.write_all(line.as_bytes())?;
            }
            (Format::Json | Format::Ndjson, Some(h)) => {
                let v = json!({"id": hit.id, "href": h});
                self.json_record(sep, &v)?;
            }
            (Format::Json | Format::Ndjson, None) => self.json_record(sep, &item_record(hit))?,
            (Format::Geojson | Format::StacGeoparquet, _) => {
                self.out.write_all(sep.as_bytes())?;
                serde_json::to_writer(&mut self.out, &item_feature(hit))?;
            }
        }
        self.count += 1;
        Ok(true)
    }

    fn json_record(&mut self, sep: &str, v: &impl serde::Serialize) -> std::io::Result<()> {
        if self.format == Format::Json {
            self.out.write_all(sep.as_bytes())?;
            serde_json::to_writer(&mut self.out, v)?;
        } else {
            serde_json::to_writer(&mut self.out, v)?;
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Closes brackets and flushes; returns how many records were written.
    pub fn finish(mut self) -> std::io::Result<u64> {
        match self.format {
            Format::Json => self.out.write_all(b"]\n")?,
            Format::Geojson => self.out.write_all(b"]}\n")?,
            _ => {}
        }
        self.out.flush()?;
        Ok(self.count)
    }
}
