//! Writing STAC items as spec-conformant stac-geoparquet 1.0.0 (what
//! `ecops export` and `ecops query --format stac-geoparquet` produce), for
//! STAC tools (rustac, stac-geoparquet, DuckDB…) to read as items.
//!
//! Columns: `type`, `stac_version`, `stac_extensions` (list of strings),
//! `id`, `geometry` (WKB, `geoarrow.wkb`), `bbox` (struct `xmin`, `ymin`,
//! `xmax`, `ymax`), `links` (list of structs), `assets` (struct of
//! structs), `collection`, then each property as its own column — the
//! timestamps of STAC's datetime fields as `timestamp[us, UTC]`, everything
//! else typed from the values ([`super::json_arrow`]). Metadata: `geo`
//! (GeoParquet 1.1, with the bbox covering) and `stac-geoparquet`.
//!
//! Column types depend on every item, so items are first spilled as JSON
//! lines to a temporary file while their shape is learnt, then read back
//! in batches and written: memory is one batch, whatever the item count.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, Write};
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, LargeBinaryBuilder};
use arrow_array::{ArrayRef, RecordBatch, StructArray};
use arrow_buffer::NullBuffer;
use arrow_schema::{ArrowError, DataType, Field, Fields, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use serde_json::{Map, Value, json};

use super::json_arrow::{Shape, writable};

/// STAC's datetime properties (written as timestamps when they parse).
pub const DATETIME_PROPERTIES: &[&str] = &[
    "datetime",
    "start_datetime",
    "end_datetime",
    "created",
    "updated",
    "expires",
    "published",
    "unpublished",
];
/// Items per batch read back and written.
const BATCH_ITEMS: usize = 2_000;
/// Rows per row group.
const ROW_GROUP_ROWS: usize = 10_000;
/// The version of the spec written.
pub const SPEC_VERSION: &str = "1.0.0";

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("temporary file: {0}")]
    Spill(#[source] std::io::Error),
    #[error("item {id}: {reason}")]
    Item { id: String, reason: String },
    #[error("building columns: {0}")]
    Arrow(#[from] ArrowError),
    #[error("writing Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("writing the output: {0}")]
    Write(#[source] std::io::Error),
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ExportReport {
    pub items: u64,
    /// Items left out: stac-geoparquet requires a geometry.
    pub without_geometry: u64,
    pub columns: usize,
    pub bytes: u64,
}

/// Collects STAC items (GeoJSON Feature objects) and writes them as one
/// stac-geoparquet file.
pub struct StacGeoparquetWriter {
    spill: BufWriter<File>,
    geo: super::geoparquet::GeoSummary,
    items: u64,
    without_geometry: u64,
    stac_extensions: Shape,
    links: Shape,
    assets: Shape,
    bbox_3d: bool,
    /// Property columns, in first-seen order.
    properties: Vec<(String, Shape)>,
}

impl StacGeoparquetWriter {
    /// Spills to an anonymous temporary file in `temp_dir`.
    pub fn new(temp_dir: &Path) -> Result<Self, ExportError> {
        std::fs::create_dir_all(temp_dir).map_err(ExportError::Spill)?;
        let path = temp_dir.join(format!("export-{}.ndjson", uuid::Uuid::new_v4().simple()));
        let file = File::options()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(ExportError::Spill)?;
        // Unlinked at once: the open handle keeps it until the writer is dropped.
        let _ = std::fs::remove_file(&path);
        Ok(Self {
            spill: BufWriter::new(file),
            geo: Default::default(),
            items: 0,
            without_geometry: 0,
            stac_extensions: Shape::Unknown,
            links: Shape::Unknown,
            assets: Shape::Unknown,
            bbox_3d: false,
            properties: Vec::new(),
        })
    }

    /// Adds one item; returns false (and counts it) for an item without a
    /// geometry, which stac-geoparquet cannot hold (its geometry column is
    /// required; rustac refuses a null one).
    pub fn push(&mut self, item: &Value) -> Result<bool, ExportError> {
        let bad = |reason: &str| ExportError::Item {
            id: item["id"].as_str().unwrap_or("?").to_string(),
            reason: reason.to_string(),
        };
        if !item["id"].is_string() {
            return Err(bad("no id"));
        }
        if item["geometry"].is_null() {
            self.without_geometry += 1;
            return Ok(false);
        }
        let geometry = super::geojson::geometry_from_json(&item["geometry"])
            .map_err(|e| bad(&format!("geometry: {e}")))?;
        self.geo.add(&geometry);
        // Required members, empty when the item has none.
        let mut item = item.clone();
        for (member, empty) in [
            ("stac_extensions", json!([])),
            ("links", json!([])),
            ("assets", json!({})),
        ] {
            if item[member].is_null() {
                item[member] = empty;
            }
        }
        let item = &item;
        self.stac_extensions.observe(&item["stac_extensions"]);
        self.links.observe(&item["links"]);
        self.assets.observe(&item["assets"]);
        self.bbox_3d |= item["bbox"].as_array().is_some_and(|b| b.len() == 6);
        if let Some(props) = item["properties"].as_object() {
            for (k, v) in props {
                let at = match self.properties.iter().position(|(name, _)| name == k) {
                    Some(i) => i,
                    None => {
                        self.properties.push((k.clone(), Shape::Unknown));
                        self.properties.len() - 1
                    }
                };
                let shape = &mut self.properties[at].1;
                if DATETIME_PROPERTIES.contains(&k.as_str()) {
                    shape.observe_time(v);
                } else {
                    shape.observe(v);
                }
            }
        } else if !item["properties"].is_null() {
            return Err(bad("properties is not an object"));
        }
        serde_json::to_writer(&mut self.spill, item).map_err(|e| bad(&e.to_string()))?;
        self.spill.write_all(b"\n").map_err(ExportError::Spill)?;
        self.items += 1;
        Ok(true)
    }

    /// Writes every item to `out` and returns what was written.
    pub fn finish<W: Write + Send>(self, out: W) -> Result<ExportReport, ExportError> {
        let columns = self.columns();
        let covering = json!({"bbox": {
            "xmin": ["bbox", "xmin"], "ymin": ["bbox", "ymin"],
            "xmax": ["bbox", "xmax"], "ymax": ["bbox", "ymax"],
        }});
        // In the file's key-value metadata (Parquet readers) and on the Arrow
        // schema it embeds (Arrow readers: pyarrow's `read_table`).
        let metadata = [
            (
                "geo".to_string(),
                self.geo.to_json(Some(covering)).to_string(),
            ),
            (
                "stac-geoparquet".to_string(),
                json!({"version": SPEC_VERSION}).to_string(),
            ),
        ];
        let key_values = metadata
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
            .collect();
        let schema = Arc::new(Schema::new_with_metadata(
            columns.iter().map(|c| c.field()).collect::<Vec<_>>(),
            metadata.into(),
        ));
        let mut file = self
            .spill
            .into_inner()
            .map_err(|e| ExportError::Spill(e.into_error()))?;
        file.rewind().map_err(ExportError::Spill)?;
        let counting = CountingWrite {
            inner: out,
            bytes: 0,
        };
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_key_value_metadata(Some(key_values))
            .build();
        let mut writer = ArrowWriter::try_new(counting, schema.clone(), Some(props))?;
        let mut lines = BufReader::new(file).lines();
        loop {
            let mut items = Vec::with_capacity(BATCH_ITEMS);
            for line in lines.by_ref().take(BATCH_ITEMS) {
                let line = line.map_err(ExportError::Spill)?;
                let item: Value = serde_json::from_str(&line)
                    .map_err(|e| ExportError::Spill(std::io::Error::other(e)))?;
                items.push(item);
            }
            if items.is_empty() {
                break;
            }
            let arrays = columns
                .iter()
                .map(|c| c.build(&items))
                .collect::<Result<Vec<_>, _>>()?;
            writer.write(&RecordBatch::try_new(schema.clone(), arrays)?)?;
        }
        let mut out = writer.into_inner()?;
        out.flush().map_err(ExportError::Write)?;
        Ok(ExportReport {
            items: self.items,
            without_geometry: self.without_geometry,
            columns: columns.len(),
            bytes: out.bytes,
        })
    }

    /// The columns, in the spec's order, then the properties.
    fn columns(&self) -> Vec<Column> {
        let mut cols = vec![
            Column::Text("type"),
            Column::Text("stac_version"),
            Column::Member("stac_extensions", writable(self.stac_extensions.clone())),
            Column::Text("id"),
            Column::Geometry,
            Column::Bbox {
                three_d: self.bbox_3d,
            },
            Column::Member("links", writable(self.links.clone())),
            Column::Member("assets", writable(self.assets.clone())),
            Column::Text("collection"),
        ];
        let taken: Vec<String> = cols.iter().map(|c| c.name().to_string()).collect();
        cols.extend(
            self.properties
                .iter()
                .filter(|(name, _)| !taken.contains(name))
                .map(|(name, shape)| Column::Property(name.clone(), writable(shape.clone()))),
        );
        cols
    }
}

/// One output column and where its values come from.
enum Column {
    /// A top-level string member.
    Text(&'static str),
    /// A top-level member of any shape.
    Member(&'static str, Shape),
    Geometry,
    Bbox {
        three_d: bool,
    },
    /// A member of `properties`.
    Property(String, Shape),
}

impl Column {
    fn name(&self) -> &str {
        match self {
            Column::Text(n) | Column::Member(n, _) => n,
            Column::Geometry => "geometry",
            Column::Bbox { .. } => "bbox",
            Column::Property(n, _) => n,
        }
    }

    fn field(&self) -> Field {
        match self {
            Column::Text(n) => Field::new(*n, DataType::Utf8, true),
            Column::Member(n, shape) => Field::new(*n, shape.data_type(), true),
            Column::Geometry => Field::new("geometry", DataType::LargeBinary, true).with_metadata(
                [(
                    "ARROW:extension:name".to_string(),
                    "geoarrow.wkb".to_string(),
                )]
                .into(),
            ),
            Column::Bbox { three_d } => {
                Field::new("bbox", DataType::Struct(bbox_fields(*three_d)), true)
            }
            Column::Property(n, shape) => Field::new(n.as_str(), shape.data_type(), true),
        }
    }

    fn build(&self, items: &[Value]) -> Result<ArrayRef, ExportError> {
        let member =
            |name: &str| -> Vec<Option<&Value>> { items.iter().map(|i| i.get(name)).collect() };
        Ok(match self {
            Column::Text(n) => Shape::Text.build(&member(n))?,
            Column::Member(n, shape) => shape.build(&member(n))?,
            Column::Property(n, shape) => {
                let values: Vec<Option<&Value>> = items
                    .iter()
                    .map(|i| i.get("properties").and_then(|p| p.get(n.as_str())))
                    .collect();
                shape.build(&values)?
            }
            Column::Geometry => geometry_column(items)?,
            Column::Bbox { three_d } => bbox_column(items, *three_d)?,
        })
    }
}

fn bbox_fields(three_d: bool) -> Fields {
    let names: &[&str] = if three_d {
        &["xmin", "ymin", "zmin", "xmax", "ymax", "zmax"]
    } else {
        &["xmin", "ymin", "xmax", "ymax"]
    };
    names
        .iter()
        .map(|n| Field::new(*n, DataType::Float64, true))
        .collect()
}

/// Item bboxes as structs: `[w, s, e, n]` (or the 6-number 3D form).
fn bbox_column(items: &[Value], three_d: bool) -> Result<ArrayRef, ExportError> {
    let width = if three_d { 6 } else { 4 };
    let mut builders: Vec<Float64Builder> = (0..width)
        .map(|_| Float64Builder::with_capacity(items.len()))
        .collect();
    let mut valid = Vec::with_capacity(items.len());
    for item in items {
        let numbers: Option<Vec<f64>> = item["bbox"]
            .as_array()
            .map(|b| b.iter().filter_map(Value::as_f64).collect());
        let positions: Option<Vec<Option<f64>>> = match numbers {
            Some(b) if b.len() == width => Some(b.into_iter().map(Some).collect()),
            // A 2D bbox in a file that also has 3D ones: no z.
            Some(b) if b.len() == 4 && three_d => Some(vec![
                Some(b[0]),
                Some(b[1]),
                None,
                Some(b[2]),
                Some(b[3]),
                None,
            ]),
            _ => None,
        };
        valid.push(positions.is_some());
        for (i, builder) in builders.iter_mut().enumerate() {
            builder.append_option(positions.as_ref().and_then(|p| p[i]));
        }
    }
    let children: Vec<ArrayRef> = builders
        .into_iter()
        .map(|mut b| Arc::new(b.finish()) as ArrayRef)
        .collect();
    Ok(Arc::new(StructArray::try_new(
        bbox_fields(three_d),
        children,
        Some(NullBuffer::from(valid)),
    )?))
}

/// Item geometries as WKB.
fn geometry_column(items: &[Value]) -> Result<ArrayRef, ExportError> {
    let mut b = LargeBinaryBuilder::with_capacity(items.len(), items.len() * 128);
    for item in items {
        match &item["geometry"] {
            Value::Null => b.append_null(),
            g => {
                let geometry =
                    super::geojson::geometry_from_json(g).map_err(|e| ExportError::Item {
                        id: item["id"].as_str().unwrap_or("?").to_string(),
                        reason: format!("geometry: {e}"),
                    })?;
                b.append_value(super::wkb::encode(&geometry));
            }
        }
    }
    Ok(Arc::new(b.finish()))
}

struct CountingWrite<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for CountingWrite<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A STAC item (Feature) from its parts as the catalog holds them: the
/// table's top-level members (`stac_version`, `stac_extensions`, `bbox`,
/// `links`, `type`) are taken out of `properties` to the item's top level.
pub fn stac_item(
    id: &str,
    collection: Option<&str>,
    geometry: Value,
    assets: Option<&Value>,
    mut properties: Map<String, Value>,
) -> Value {
    let mut item = Map::new();
    item.insert("type".into(), "Feature".into());
    for member in ["stac_version", "stac_extensions"] {
        if let Some(v) = properties.remove(member) {
            item.insert(member.into(), v);
        }
    }
    properties.remove("type");
    item.insert("id".into(), id.into());
    item.insert("collection".into(), collection.into());
    item.insert("geometry".into(), geometry);
    if let Some(b) = properties.remove("bbox") {
        item.insert("bbox".into(), b);
    }
    let links = properties.remove("links");
    item.insert("properties".into(), Value::Object(properties));
    item.insert(
        "assets".into(),
        assets.cloned().unwrap_or_else(|| json!({})),
    );
    if let Some(l) = links {
        item.insert("links".into(), l);
    }
    Value::Object(item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    #[test]
    fn items_are_written_with_the_spec_columns() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = StacGeoparquetWriter::new(dir.path()).unwrap();
        let item = |id: &str, extra: Value| {
            json!({"type": "Feature", "stac_version": "1.0.0", "stac_extensions": [], "id": id,
                "geometry": {"type": "Point", "coordinates": [1.0, 2.0]}, "bbox": [1.0, 2.0, 1.0, 2.0],
                "properties": {"datetime": "2020-01-02T03:04:05.678901Z", "extra": extra},
                "links": [{"rel": "self", "href": "x"}],
                "assets": {"data": {"href": "h", "roles": ["data"]}}})
        };
        w.push(&item("a", json!(1))).unwrap();
        w.push(&item("b", json!(2.5))).unwrap();
        let path = dir.path().join("out.parquet");
        let report = w.finish(File::create(&path).unwrap()).unwrap();
        assert_eq!(report.items, 2);
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
        let kv = reader
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .unwrap()
            .clone();
        assert!(kv.iter().any(|k| k.key == "stac-geoparquet"));
        let schema = reader.schema().clone();
        assert!(
            matches!(schema.field_with_name("bbox").unwrap().data_type(), DataType::Struct(f) if f.len() == 4)
        );
        assert_eq!(
            schema.field_with_name("datetime").unwrap().data_type(),
            &DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert_eq!(
            schema.field_with_name("extra").unwrap().data_type(),
            &DataType::Float64
        );
        assert!(matches!(
            schema.field_with_name("links").unwrap().data_type(),
            DataType::List(_)
        ));
        let rows: usize = reader.build().unwrap().map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows, 2);
    }
}
