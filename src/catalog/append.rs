//! Writing one (cell, year) bucket as a GeoParquet data file, and committing
//! data files as one append snapshot.
//!
//! Files are written through iceberg's ParquetWriter (so DataFiles carry
//! column stats and Parquet field ids match the schema) with our own location
//! generator, because iceberg's default puts a year partition at
//! `year=<years since 1970>`; earthcatalog's layout is
//! `warehouse/grid_partition=<cell>/year=<yyyy>/part_<tag>.parquet`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_ord::sort::{SortColumn, lexsort_to_indices};
use arrow_schema::SortOptions;
use iceberg::spec::{DataFile, Literal, PartitionKey, Struct};
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{FileNameGenerator, LocationGenerator};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::{CatalogError, EarthCatalog, schema::NO_CELL};
use crate::stac::geoparquet;

/// A partition bucket: one H3 cell (or `__none__`) and one year (or none).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bucket {
    pub cell: String,
    pub year: Option<i32>,
}

impl Bucket {
    /// Folder of this bucket below the warehouse.
    pub fn dir(&self) -> String {
        match self.year {
            Some(y) => format!("grid_partition={}/year={y}", self.cell),
            None => format!("grid_partition={}/year=null", self.cell),
        }
    }

    /// Only hex H3 cell ids and `__none__` may become path segments.
    fn validate(&self) -> Result<(), CatalogError> {
        let ok = self.cell == NO_CELL
            || (!self.cell.is_empty()
                && self.cell.len() <= 16
                && self.cell.bytes().all(|b| b.is_ascii_hexdigit()));
        if ok && self.year.is_none_or(|y| (-9999..=9999).contains(&y)) {
            Ok(())
        } else {
            Err(CatalogError::Invalid(format!(
                "invalid partition bucket {:?}",
                self
            )))
        }
    }
}

/// Options for writing bucket files.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// Roll to a new file past this many bytes.
    pub target_file_size: usize,
    /// Distinguishes this writer's files (job and chunk, for example).
    pub tag: String,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            target_file_size: 128 * 1024 * 1024,
            tag: uuid::Uuid::now_v7().simple().to_string(),
        }
    }
}

#[derive(Clone)]
struct BucketLocation {
    dir: String,
}

impl LocationGenerator for BucketLocation {
    fn generate_location(&self, _partition_key: Option<&PartitionKey>, file_name: &str) -> String {
        format!("{}/{file_name}", self.dir)
    }
}

#[derive(Clone)]
struct PartNames {
    tag: String,
    next: Arc<AtomicU64>,
}

impl FileNameGenerator for PartNames {
    fn generate_file_name(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("part_{n:06}_{}.parquet", self.tag)
    }
}

/// Sorts rows by (platform, datetime), nulls last, as the data contract asks.
pub fn sort_rows(batch: &RecordBatch) -> Result<RecordBatch, CatalogError> {
    let arrow = |e: arrow_schema::ArrowError| CatalogError::Invalid(format!("sorting rows: {e}"));
    let (Some(platform), Some(datetime)) = (
        batch.column_by_name("platform"),
        batch.column_by_name("datetime"),
    ) else {
        return Ok(batch.clone());
    };
    let opts = Some(SortOptions {
        descending: false,
        nulls_first: false,
    });
    let indices = lexsort_to_indices(
        &[
            SortColumn {
                values: platform.clone(),
                options: opts,
            },
            SortColumn {
                values: datetime.clone(),
                options: opts,
            },
        ],
        None,
    )
    .map_err(arrow)?;
    let columns = batch
        .columns()
        .iter()
        .map(|c| arrow_select::take::take(c.as_ref(), &indices, None))
        .collect::<Result<Vec<_>, _>>()
        .map_err(arrow)?;
    RecordBatch::try_new(batch.schema(), columns).map_err(arrow)
}

impl EarthCatalog {
    /// Writes the rows of one bucket as GeoParquet data file(s) under
    /// `warehouse/grid_partition=<cell>/year=<yyyy>/` and returns their
    /// DataFiles (partition values, sizes, column stats). Nothing is committed.
    pub async fn write_bucket(
        &self,
        table: &Table,
        bucket: &Bucket,
        batches: &[RecordBatch],
        opts: &WriteOptions,
    ) -> Result<Vec<DataFile>, CatalogError> {
        self.ensure_writable()?;
        bucket.validate()?;
        if batches.iter().all(|b| b.num_rows() == 0) {
            return Ok(vec![]);
        }
        let schema = batches[0].schema();
        let merged = arrow_select::concat::concat_batches(&schema, batches)
            .map_err(|e| CatalogError::Invalid(format!("bucket {}: {e}", bucket.dir())))?;
        check_cells(&merged, bucket)?;
        let sorted = sort_rows(&merged)?;

        let metadata = table.metadata();
        let kv = geoparquet::file_metadata(std::slice::from_ref(&sorted))
            .into_iter()
            .map(|(k, v)| KeyValue::new(k, v))
            .collect();
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(3).map_err(|e| CatalogError::Invalid(e.to_string()))?,
            ))
            .set_key_value_metadata(Some(kv))
            .set_max_row_group_row_count(Some(64 * 1024))
            .build();
        let parquet = ParquetWriterBuilder::new(props, metadata.current_schema().clone());
        let rolling = RollingFileWriterBuilder::new(
            parquet,
            opts.target_file_size,
            table.file_io().clone(),
            BucketLocation {
                dir: format!("{}/{}", self.warehouse_uri(), bucket.dir()),
            },
            PartNames {
                tag: opts.tag.clone(),
                next: Arc::new(AtomicU64::new(0)),
            },
        );
        let year_literal = bucket.year.map(|y| Literal::int(y - 1970));
        let key = PartitionKey::new(
            metadata.default_partition_spec().as_ref().clone(),
            metadata.current_schema().clone(),
            Struct::from_iter([Some(Literal::string(bucket.cell.clone())), year_literal]),
        );
        let mut writer = DataFileWriterBuilder::new(rolling)
            .build(Some(key))
            .await
            .map_err(|e| CatalogError::iceberg("create data file writer", e))?;
        writer
            .write(sorted)
            .await
            .map_err(|e| CatalogError::iceberg(&format!("write {}", bucket.dir()), e))?;
        writer
            .close()
            .await
            .map_err(|e| CatalogError::iceberg(&format!("close {}", bucket.dir()), e))
    }

    /// Commits data files as one append snapshot whose summary carries `summary`
    /// (job id, inventory position…). The commit is atomic: the pointer moves
    /// to metadata naming all files, or not at all.
    pub async fn commit_append(
        &self,
        files: Vec<DataFile>,
        summary: HashMap<String, String>,
    ) -> Result<Table, CatalogError> {
        self.ensure_writable()?;
        let table = self.table().await?;
        let tx = Transaction::new(&table);
        let action = tx
            .fast_append()
            .add_data_files(files)
            .set_snapshot_properties(summary);
        let tx = action
            .apply(tx)
            .map_err(|e| CatalogError::iceberg("prepare append", e))?;
        tx.commit(self.sql().as_ref())
            .await
            .map_err(|e| CatalogError::iceberg("commit append", e))
    }
}

/// Every row's grid_partition must be the bucket's cell: a file never mixes buckets.
fn check_cells(batch: &RecordBatch, bucket: &Bucket) -> Result<(), CatalogError> {
    let Some(cells) = batch.column_by_name("grid_partition") else {
        return Err(CatalogError::Invalid(
            "batch has no grid_partition column".into(),
        ));
    };
    let Some(cells) = cells.as_string_opt::<i32>() else {
        return Err(CatalogError::Invalid(
            "grid_partition is not a string column".into(),
        ));
    };
    if cells.iter().any(|c| c != Some(bucket.cell.as_str())) {
        return Err(CatalogError::Invalid(format!(
            "rows of other cells in bucket {}",
            bucket.dir()
        )));
    }
    Ok(())
}

/// What one append wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AppendReport {
    pub items: u64,
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
    pub buckets: u64,
    pub snapshot_id: Option<i64>,
}

/// Groups items into (cell, year) buckets: one row per cell an item touches;
/// items without geometry go to `__none__`.
pub fn bucket_items(
    items: &[crate::stac::Item],
    resolution: h3o::Resolution,
) -> Result<std::collections::BTreeMap<Bucket, Vec<&crate::stac::Item>>, CatalogError> {
    let mut buckets: std::collections::BTreeMap<Bucket, Vec<&crate::stac::Item>> =
        Default::default();
    for item in items {
        let year = item.partition_year();
        let cells = match &item.geometry {
            Some(g) => crate::grid::cells_for(g, resolution)
                .map_err(|e| CatalogError::Invalid(format!("item {}: {e}", item.id)))?
                .into_iter()
                .map(|c| c.to_string())
                .collect(),
            None => vec![NO_CELL.to_string()],
        };
        for cell in cells {
            buckets.entry(Bucket { cell, year }).or_default().push(item);
        }
    }
    Ok(buckets)
}

impl EarthCatalog {
    /// Fans `items` out to buckets at the table's resolution, writes one file
    /// per bucket and commits them all as one append snapshot.
    pub async fn append_items(
        &self,
        items: &[crate::stac::Item],
        opts: &WriteOptions,
        summary: HashMap<String, String>,
    ) -> Result<AppendReport, CatalogError> {
        use futures::{StreamExt, TryStreamExt};
        self.ensure_writable()?;
        let table = self.table().await?;
        let grid = self
            .grid(&table)
            .await
            .ok_or_else(|| CatalogError::Invalid("table has no grid resolution recorded".into()))?;
        let resolution = crate::grid::resolution(grid.resolution)
            .map_err(|e| CatalogError::Invalid(e.to_string()))?;
        let buckets = bucket_items(items, resolution)?;
        let schema = crate::stac::batch::arrow_schema()
            .map_err(|e| CatalogError::iceberg("arrow schema", e))?;
        let table_ref = &table;
        let schema_ref = &schema;
        let written: Vec<Vec<DataFile>> = futures::stream::iter(buckets.iter())
            .map(|(bucket, rows)| async move {
                let pairs: Vec<(&crate::stac::Item, &str)> =
                    rows.iter().map(|i| (*i, bucket.cell.as_str())).collect();
                let batch = crate::stac::batch::rows_to_batch(schema_ref, &pairs)
                    .map_err(|e| CatalogError::Invalid(format!("bucket {}: {e}", bucket.dir())))?;
                self.write_bucket(table_ref, bucket, &[batch], opts).await
            })
            .buffer_unordered(8)
            .try_collect()
            .await?;
        let files: Vec<DataFile> = written.into_iter().flatten().collect();
        let report = AppendReport {
            items: items.len() as u64,
            rows: files.iter().map(|f| f.record_count()).sum(),
            files: files.len() as u64,
            bytes: files.iter().map(|f| f.file_size_in_bytes()).sum(),
            buckets: buckets.len() as u64,
            snapshot_id: None,
        };
        if files.is_empty() {
            return Ok(report);
        }
        let table = self.commit_append(files, summary).await?;
        Ok(AppendReport {
            snapshot_id: table.metadata().current_snapshot_id(),
            ..report
        })
    }
}
