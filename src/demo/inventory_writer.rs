//! Streaming S3 Inventory writer: every row pushed goes at once to every
//! format ingest reads, so memory stays bounded by one Arrow batch however
//! many rows the inventory has.
//!
//! Files, under the inventory folder:
//!
//! | file | format |
//! | --- | --- |
//! | `inventory.csv` | AWS S3 Inventory CSV: no header, every field quoted: `"bucket","key","size","last_modified_date"` |
//! | `inventory_header.csv` | the same rows after a header line `bucket,key,size,last_modified_date` |
//! | `inventory.csv.gz` | gzip of `inventory.csv` |
//! | `inventory.parquet` | bucket, key (utf8), size (int64), last_modified_date (timestamp[ms, UTC]); row groups of [`ROW_GROUP_ROWS`] |
//! | `data/part-0000K.csv.gz`, `data/part-0000K.parquet` | the rows split into contiguous parts |
//! | `manifest.json`, `manifest-parquet.json` | S3 Inventory manifests listing those parts |
//!
//! Manifest `files[].key` values are relative to the manifest's folder
//! (`data/part-00000.csv.gz`); real manifests hold keys in the destination
//! bucket, which a reader resolves the same way against the bucket root.
//! `MD5checksum` holds an xxh3-128 hex digest (informational, stable).
//! Every output is byte-for-byte deterministic for the same rows.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{Int64Builder, StringBuilder, TimestampMillisecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as ParquetCompression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::Serialize;
use serde_json::json;

use super::DemoError;
use super::time::write_millis;

/// Rows per Parquet row group.
pub const ROW_GROUP_ROWS: usize = 100_000;
/// Rows per Arrow batch handed to the Parquet writers (bounds memory).
const BATCH_ROWS: usize = 8_192;
/// The CSV header of `inventory_header.csv`.
pub const CSV_HEADER: &str = "bucket,key,size,last_modified_date";
/// Parquet schema string of the Parquet manifest (as AWS writes it).
const PARQUET_FILE_SCHEMA: &str = "message s3.inventory { required binary bucket (UTF8); required binary key (UTF8); optional int64 size; optional int64 last_modified_date (TIMESTAMP_MILLIS); }";

/// One file written, relative to the inventory folder.
#[derive(Debug, Clone, Serialize)]
pub struct WrittenFile {
    pub path: String,
    pub size: u64,
}

/// What [`InventoryWriter::finish`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct InventoryFiles {
    pub rows: u64,
    /// Every file written, relative to the inventory folder.
    pub files: Vec<WrittenFile>,
    pub parts: usize,
}

/// The Arrow schema of the Parquet inventories.
pub fn inventory_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("bucket", DataType::Utf8, false),
        Field::new("key", DataType::Utf8, false),
        Field::new("size", DataType::Int64, true),
        Field::new(
            "last_modified_date",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
    ]))
}

type Gz = GzEncoder<BufWriter<File>>;

/// Writes one inventory in every format as rows are pushed (in inventory order).
pub struct InventoryWriter {
    dir: PathBuf,
    bucket: String,
    csv: BufWriter<File>,
    header_csv: BufWriter<File>,
    gz: Gz,
    parquet: ArrowWriter<BufWriter<File>>,
    /// Exclusive end row of each part.
    part_ends: Vec<u64>,
    part: Option<Part>,
    part_files: Vec<(WrittenFile, WrittenFile)>,
    batch: Batch,
    line: String,
    rows: u64,
    total_rows: u64,
}

struct Part {
    index: usize,
    csv_gz: Gz,
    parquet: ArrowWriter<BufWriter<File>>,
}

struct Batch {
    buckets: StringBuilder,
    keys: StringBuilder,
    sizes: Int64Builder,
    modified: TimestampMillisecondBuilder,
    len: usize,
}

impl Batch {
    fn new() -> Self {
        Self {
            buckets: StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 16),
            keys: StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 112),
            sizes: Int64Builder::with_capacity(BATCH_ROWS),
            modified: TimestampMillisecondBuilder::with_capacity(BATCH_ROWS).with_timezone("UTC"),
            len: 0,
        }
    }

    fn take(&mut self) -> Result<RecordBatch, arrow_schema::ArrowError> {
        self.len = 0;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.buckets.finish()),
            Arc::new(self.keys.finish()),
            Arc::new(self.sizes.finish()),
            Arc::new(self.modified.finish()),
        ];
        RecordBatch::try_new(inventory_schema(), columns)
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DemoError + '_ {
    move |source| DemoError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn create(path: &Path) -> Result<BufWriter<File>, DemoError> {
    File::create(path)
        .map(|f| BufWriter::with_capacity(256 * 1024, f))
        .map_err(io_err(path))
}

fn gzip(path: &Path) -> Result<Gz, DemoError> {
    // mtime 0 and a fixed OS byte keep the bytes identical across runs and hosts;
    // level 1 because a million-row inventory is compressed twice.
    Ok(GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(create(path)?, Compression::fast()))
}

fn parquet_writer(path: &Path) -> Result<ArrowWriter<BufWriter<File>>, DemoError> {
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_compression(ParquetCompression::ZSTD(ZstdLevel::default()))
        .build();
    ArrowWriter::try_new(create(path)?, inventory_schema(), Some(props)).map_err(|source| {
        DemoError::Parquet {
            path: path.to_path_buf(),
            source,
        }
    })
}

fn finish_gz(gz: Gz, path: &Path) -> Result<(), DemoError> {
    let mut inner = gz.finish().map_err(io_err(path))?;
    inner.flush().map_err(io_err(path))
}

fn close_parquet(writer: ArrowWriter<BufWriter<File>>, path: &Path) -> Result<(), DemoError> {
    let mut inner = writer.into_inner().map_err(|source| DemoError::Parquet {
        path: path.to_path_buf(),
        source,
    })?;
    inner.flush().map_err(io_err(path))
}

impl InventoryWriter {
    /// Creates the inventory folder `dir` (and `dir/data`) and opens every
    /// output. `total_rows` (known up front) decides the part boundaries:
    /// `parts` contiguous, nearly equal parts (clamped to 1..=total_rows).
    pub fn create(
        dir: &Path,
        bucket: &str,
        total_rows: u64,
        parts: usize,
    ) -> Result<Self, DemoError> {
        let data = dir.join("data");
        std::fs::create_dir_all(&data).map_err(io_err(&data))?;
        let parts = (parts.max(1) as u64).min(total_rows.max(1));
        let part_ends = (1..=parts).map(|k| total_rows * k / parts).collect();
        let mut header_csv = create(&dir.join("inventory_header.csv"))?;
        writeln!(header_csv, "{CSV_HEADER}").map_err(io_err(dir))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            bucket: bucket.to_string(),
            csv: create(&dir.join("inventory.csv"))?,
            header_csv,
            gz: gzip(&dir.join("inventory.csv.gz"))?,
            parquet: parquet_writer(&dir.join("inventory.parquet"))?,
            part_ends,
            part: None,
            part_files: Vec::new(),
            batch: Batch::new(),
            line: String::with_capacity(256),
            rows: 0,
            total_rows,
        })
    }

    fn part_names(index: usize) -> (String, String) {
        (
            format!("data/part-{index:05}.csv.gz"),
            format!("data/part-{index:05}.parquet"),
        )
    }

    /// Appends one row. `key` must be JSON/CSV-safe (no quotes, no control characters).
    pub fn push(&mut self, key: &str, size: u64, last_modified_ms: i64) -> Result<(), DemoError> {
        if self.rows >= self.total_rows {
            return Err(DemoError::Options(format!(
                "more inventory rows than the {} announced",
                self.total_rows
            )));
        }
        if self.part.is_none() {
            let index = self.part_files.len();
            let (csv, pq) = Self::part_names(index);
            self.part = Some(Part {
                index,
                csv_gz: gzip(&self.dir.join(csv))?,
                parquet: parquet_writer(&self.dir.join(pq))?,
            });
        }
        self.line.clear();
        self.line.push('"');
        self.line.push_str(&self.bucket);
        self.line.push_str("\",\"");
        self.line.push_str(key);
        self.line.push_str("\",\"");
        {
            use std::fmt::Write as _;
            let _ = write!(self.line, "{size}");
        }
        self.line.push_str("\",\"");
        write_millis(&mut self.line, last_modified_ms);
        self.line.push_str("\"\n");
        let bytes = self.line.as_bytes();
        let dir = self.dir.clone();
        self.csv.write_all(bytes).map_err(io_err(&dir))?;
        self.header_csv.write_all(bytes).map_err(io_err(&dir))?;
        self.gz.write_all(bytes).map_err(io_err(&dir))?;
        if let Some(part) = &mut self.part {
            part.csv_gz.write_all(bytes).map_err(io_err(&dir))?;
        }

        self.batch.buckets.append_value(&self.bucket);
        self.batch.keys.append_value(key);
        self.batch.sizes.append_value(size as i64);
        self.batch.modified.append_value(last_modified_ms);
        self.batch.len += 1;
        self.rows += 1;

        let part_end = self.part_ends[self.part_files.len()];
        if self.rows == part_end {
            self.flush_batch()?;
            self.close_part()?;
        } else if self.batch.len >= BATCH_ROWS {
            self.flush_batch()?;
        }
        Ok(())
    }

    fn flush_batch(&mut self) -> Result<(), DemoError> {
        if self.batch.len == 0 {
            return Ok(());
        }
        let batch = self
            .batch
            .take()
            .map_err(|e| DemoError::Options(e.to_string()))?;
        let full = self.dir.join("inventory.parquet");
        self.parquet
            .write(&batch)
            .map_err(|source| DemoError::Parquet { path: full, source })?;
        if let Some(part) = &mut self.part {
            let (_, pq) = Self::part_names(part.index);
            part.parquet
                .write(&batch)
                .map_err(|source| DemoError::Parquet {
                    path: self.dir.join(pq),
                    source,
                })?;
        }
        Ok(())
    }

    fn close_part(&mut self) -> Result<(), DemoError> {
        let Some(part) = self.part.take() else {
            return Ok(());
        };
        let (csv, pq) = Self::part_names(part.index);
        finish_gz(part.csv_gz, &self.dir.join(&csv))?;
        close_parquet(part.parquet, &self.dir.join(&pq))?;
        let size = |name: &str| -> Result<u64, DemoError> {
            let p = self.dir.join(name);
            Ok(std::fs::metadata(&p).map_err(io_err(&p))?.len())
        };
        self.part_files.push((
            WrittenFile {
                size: size(&csv)?,
                path: csv,
            },
            WrittenFile {
                size: size(&pq)?,
                path: pq,
            },
        ));
        Ok(())
    }

    /// Closes every output and writes the two manifests. `creation_ms` is the
    /// manifests' `creationTimestamp` (given, not read from the clock, so
    /// reruns are byte-identical).
    pub fn finish(mut self, creation_ms: i64) -> Result<InventoryFiles, DemoError> {
        if self.rows != self.total_rows {
            return Err(DemoError::Options(format!(
                "{} inventory rows written, {} announced",
                self.rows, self.total_rows
            )));
        }
        self.flush_batch()?;
        self.close_part()?;
        // No rows at all: still one (empty) part so the manifests list a file.
        if self.part_files.is_empty() {
            let (csv, pq) = Self::part_names(0);
            self.part = Some(Part {
                index: 0,
                csv_gz: gzip(&self.dir.join(csv))?,
                parquet: parquet_writer(&self.dir.join(pq))?,
            });
            self.close_part()?;
        }
        let dir = self.dir.clone();
        for (w, name) in [
            (self.csv, "inventory.csv"),
            (self.header_csv, "inventory_header.csv"),
        ] {
            let mut w = w;
            w.flush().map_err(io_err(&dir.join(name)))?;
        }
        finish_gz(self.gz, &dir.join("inventory.csv.gz"))?;
        close_parquet(self.parquet, &dir.join("inventory.parquet"))?;

        for (format, schema, manifest, pick_parquet) in [
            (
                "CSV",
                "Bucket, Key, Size, LastModifiedDate",
                "manifest.json",
                false,
            ),
            (
                "Parquet",
                PARQUET_FILE_SCHEMA,
                "manifest-parquet.json",
                true,
            ),
        ] {
            let mut files = Vec::new();
            for (csv, pq) in &self.part_files {
                let f = if pick_parquet { pq } else { csv };
                let path = dir.join(&f.path);
                let bytes = std::fs::read(&path).map_err(io_err(&path))?;
                let digest = xxhash_rust::xxh3::xxh3_128(&bytes);
                files.push(
                    json!({"key": f.path, "size": f.size, "MD5checksum": format!("{digest:032x}")}),
                );
            }
            let value = json!({
                "sourceBucket": self.bucket,
                "destinationBucket": format!("arn:aws:s3:::{}-inventory", self.bucket),
                "version": "2016-11-30",
                "creationTimestamp": creation_ms.to_string(),
                "fileFormat": format,
                "fileSchema": schema,
                "files": files,
            });
            let path = dir.join(manifest);
            let text = serde_json::to_string_pretty(&value)
                .map_err(|e| DemoError::Options(e.to_string()))?;
            std::fs::write(&path, text + "\n").map_err(io_err(&path))?;
        }

        let mut files = Vec::new();
        for name in [
            "inventory.csv",
            "inventory_header.csv",
            "inventory.csv.gz",
            "inventory.parquet",
            "manifest.json",
            "manifest-parquet.json",
        ] {
            let p = dir.join(name);
            files.push(WrittenFile {
                path: name.to_string(),
                size: std::fs::metadata(&p).map_err(io_err(&p))?.len(),
            });
        }
        let parts = self.part_files.len();
        for (csv, pq) in self.part_files {
            files.push(csv);
            files.push(pq);
        }
        Ok(InventoryFiles {
            rows: self.rows,
            files,
            parts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use std::io::Read;

    #[test]
    fn writes_every_format_consistently() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("inventory");
        let mut w = InventoryWriter::create(&dir, "bkt", 10, 3).unwrap();
        for i in 0..10 {
            w.push(
                &format!("a/k{i}.stac.json"),
                100 + i,
                1_600_000_000_000 + i as i64,
            )
            .unwrap();
        }
        assert!(w.push("extra", 1, 1).is_err(), "more rows than announced");
        let out = w.finish(1_700_000_000_000).unwrap();
        assert_eq!((out.rows, out.parts), (10, 3));

        let csv = std::fs::read_to_string(dir.join("inventory.csv")).unwrap();
        assert_eq!(csv.lines().count(), 10);
        assert_eq!(
            csv.lines().next().unwrap(),
            r#""bkt","a/k0.stac.json","100","2020-09-13T12:26:40.000Z""#
        );
        let header = std::fs::read_to_string(dir.join("inventory_header.csv")).unwrap();
        assert_eq!(header, format!("{CSV_HEADER}\n{csv}"));
        let mut unzipped = String::new();
        flate2::read::GzDecoder::new(File::open(dir.join("inventory.csv.gz")).unwrap())
            .read_to_string(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, csv);

        // Parts: 3 + 3 + 4 rows, concatenating to the whole inventory.
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest["creationTimestamp"], "1700000000000");
        let mut joined = String::new();
        for f in manifest["files"].as_array().unwrap() {
            let mut s = String::new();
            let path = dir.join(f["key"].as_str().unwrap());
            assert_eq!(
                f["size"].as_u64().unwrap(),
                std::fs::metadata(&path).unwrap().len()
            );
            flate2::read::GzDecoder::new(File::open(path).unwrap())
                .read_to_string(&mut s)
                .unwrap();
            joined.push_str(&s);
        }
        assert_eq!(joined, csv);

        let pq_manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("manifest-parquet.json")).unwrap())
                .unwrap();
        let mut rows = 0;
        for f in pq_manifest["files"].as_array().unwrap() {
            let file = File::open(dir.join(f["key"].as_str().unwrap())).unwrap();
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap()
                .build()
                .unwrap();
            for b in reader {
                let b = b.unwrap();
                assert_eq!(b.schema(), inventory_schema());
                rows += b.num_rows();
            }
        }
        assert_eq!(rows, 10);
    }
}
