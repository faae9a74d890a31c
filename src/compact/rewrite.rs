//! Rewriting one bucket: read its files (a few at once), conform them to the
//! table's Arrow schema by column name (earthcatalog's files have no field
//! ids and millisecond timestamps), keep one row per id — the newest by
//! `updated`, ties to the later file, then the later row — and write the
//! result with [`EarthCatalog::write_bucket`] (sorted, GeoParquet, field ids).

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use arrow_array::{Array, ArrayRef, RecordBatch, UInt32Array, new_null_array};
use arrow_schema::SchemaRef;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use iceberg::spec::DataFile;
use iceberg::table::Table;
use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::CompactError;
use super::live::LiveFile;
use crate::catalog::{Bucket, EarthCatalog, WriteOptions};

/// What rewriting one bucket did (nothing is committed yet).
#[derive(Debug, Clone)]
pub struct BucketOutcome {
    pub bucket: Bucket,
    /// The files read, oldest first: the replace commit removes exactly these.
    pub removed: Vec<LiveFile>,
    pub added: Vec<DataFile>,
    pub rows_in: u64,
    pub rows_out: u64,
}

/// Reads, de-duplicates and rewrites `files` of `bucket`.
pub async fn rewrite_bucket(
    catalog: &EarthCatalog,
    table: &Table,
    schema: &SchemaRef,
    bucket: &Bucket,
    files: Vec<LiveFile>,
    write: &WriteOptions,
    read_concurrency: usize,
) -> Result<BucketOutcome, CompactError> {
    let reads: Vec<_> = files
        .iter()
        .map(|f| read_file(catalog.base().clone(), schema.clone(), f.path.clone()))
        .collect();
    // `buffered` keeps file order, which the tie-break needs.
    let batches: Vec<RecordBatch> = futures::stream::iter(reads)
        .buffered(read_concurrency.max(1))
        .try_collect::<Vec<Vec<RecordBatch>>>()
        .await?
        .into_iter()
        .flatten()
        .collect();
    // Merging and de-duplicating a large bucket is CPU work: off the async
    // workers, so heartbeats, progress and the console keep running.
    let (merge_schema, dir) = (schema.clone(), bucket.dir());
    let (rows_in, kept) = tokio::task::spawn_blocking(move || {
        let merged = arrow_select::concat::concat_batches(&merge_schema, &batches)
            .map_err(|e| format!("merging files: {e}"))?;
        drop(batches);
        let rows_in = merged.num_rows() as u64;
        dedupe(&merged).map(|kept| (rows_in, kept))
    })
    .await
    .map_err(|e| CompactError::Read {
        path: dir.clone(),
        reason: format!("merge task failed: {e}"),
    })?
    .map_err(|reason| CompactError::Read { path: dir, reason })?;
    let rows_out = kept.num_rows() as u64;
    let added = catalog.write_bucket(table, bucket, &[kept], write).await?;
    Ok(BucketOutcome {
        bucket: bucket.clone(),
        removed: files,
        added,
        rows_in,
        rows_out,
    })
}

/// Fetches one data file and decodes it.
async fn read_file(
    store: crate::store::Store,
    schema: SchemaRef,
    path: String,
) -> Result<Vec<RecordBatch>, CompactError> {
    let key = store.key_of(&path).map_err(|e| CompactError::Read {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let store_err = |source| CompactError::Store {
        path: path.clone(),
        source,
    };
    let bytes = store
        .object_store()
        .get(&key)
        .await
        .map_err(store_err)?
        .bytes()
        .await
        .map_err(store_err)?;
    // Decoded on the bucket's own task (small files, ~1 ms): blocking-pool
    // threads would each grow a malloc arena and inflate peak memory.
    decode(&path, bytes, &schema)
}

/// Decodes a Parquet file and conforms every batch to `schema`.
fn decode(path: &str, bytes: Bytes, schema: &SchemaRef) -> Result<Vec<RecordBatch>, CompactError> {
    let err = |reason: String| CompactError::Read {
        path: path.to_string(),
        reason,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| err(e.to_string()))?
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| err(e.to_string()))?;
    reader
        .map(|batch| {
            let batch = batch.map_err(|e| err(e.to_string()))?;
            conform(&batch, schema).map_err(err)
        })
        .collect()
}

/// The columns of `schema` taken from `batch` by name, cast where the file's
/// type differs (ms → µs timestamps, Binary → LargeBinary); missing columns are null.
pub fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, String> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| -> Result<ArrayRef, String> {
            match batch.column_by_name(field.name()) {
                Some(col) if col.data_type() == field.data_type() => Ok(col.clone()),
                Some(col) => arrow_cast::cast(col, field.data_type())
                    .map_err(|e| format!("column {}: {e}", field.name())),
                None => Ok(new_null_array(field.data_type(), batch.num_rows())),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())
}

/// One row per id: the greatest (`updated`, position) wins, nulls oldest.
/// Rows are in file order, so a later position means a later file or row.
/// Rows without an id cannot be matched and are all kept.
pub fn dedupe(batch: &RecordBatch) -> Result<RecordBatch, String> {
    let ids = batch
        .column_by_name("id")
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or("no string id column")?;
    let updated = batch
        .column_by_name("updated")
        .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>());
    let stamp = |i: usize| updated.and_then(|u| u.is_valid(i).then(|| u.value(i)));
    let mut best: HashMap<&str, usize> = HashMap::with_capacity(batch.num_rows());
    let mut keep: Vec<u32> = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        if ids.is_null(i) {
            keep.push(i as u32);
            continue;
        }
        best.entry(ids.value(i))
            .and_modify(|b| {
                if (stamp(i), i) >= (stamp(*b), *b) {
                    *b = i;
                }
            })
            .or_insert(i);
    }
    if best.len() + keep.len() == batch.num_rows() {
        return Ok(batch.clone());
    }
    keep.extend(best.into_values().map(|i| i as u32));
    keep.sort_unstable();
    let indices = UInt32Array::from(keep);
    let columns = batch
        .columns()
        .iter()
        .map(|c| arrow_select::take::take(c.as_ref(), &indices, None))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    RecordBatch::try_new(batch.schema(), columns).map_err(|e| e.to_string())
}

/// The table's Arrow schema, shared by every bucket of a run.
pub fn table_arrow_schema() -> Result<SchemaRef, CompactError> {
    crate::stac::batch::arrow_schema().map_err(|e| CompactError::iceberg("arrow schema", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{StringArray, TimestampMicrosecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use std::sync::Arc;

    fn batch(rows: &[(&str, Option<i64>, &str)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new(
                "updated",
                DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                true,
            ),
            Field::new("tag", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(
                    TimestampMicrosecondArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())
                        .with_timezone("+00:00"),
                ),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
            ],
        )
        .unwrap()
    }

    fn tags(b: &RecordBatch) -> Vec<String> {
        let t = b.column_by_name("tag").unwrap().as_string::<i32>();
        (0..b.num_rows()).map(|i| t.value(i).to_string()).collect()
    }

    #[test]
    fn newest_updated_wins_then_the_later_row() {
        let input = batch(&[
            ("a", Some(5), "a-new"),
            ("b", None, "b-1"),
            ("a", Some(3), "a-old-later"),
            ("b", None, "b-2"),
            ("c", Some(1), "c-dated"),
            ("c", None, "c-undated-later"),
        ]);
        let out = dedupe(&input).unwrap();
        let mut got = tags(&out);
        got.sort();
        assert_eq!(got, vec!["a-new", "b-2", "c-dated"]);
    }

    #[test]
    fn conform_maps_by_name_casts_and_fills_missing_columns() {
        use arrow_array::{BinaryArray, TimestampMillisecondArray};
        let file_schema = Arc::new(Schema::new(vec![
            Field::new("geometry", DataType::Binary, true),
            Field::new(
                "datetime",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                true,
            ),
            Field::new("id", DataType::Utf8, true),
        ]));
        let file = RecordBatch::try_new(
            file_schema,
            vec![
                Arc::new(BinaryArray::from_iter_values([b"wkb".as_slice()])),
                Arc::new(
                    TimestampMillisecondArray::from(vec![1_700_000_000_123]).with_timezone("UTC"),
                ),
                Arc::new(StringArray::from_iter_values(["x"])),
            ],
        )
        .unwrap();
        let table = crate::stac::batch::arrow_schema().unwrap();
        let out = conform(&file, &table).unwrap();
        assert_eq!(out.schema(), table);
        let dt = out
            .column_by_name("datetime")
            .unwrap()
            .as_primitive::<TimestampMicrosecondType>();
        assert_eq!(dt.value(0), 1_700_000_000_123_000);
        assert_eq!(
            out.column_by_name("geometry")
                .unwrap()
                .as_binary::<i64>()
                .value(0),
            b"wkb"
        );
        assert_eq!(
            out.column_by_name("id")
                .unwrap()
                .as_string::<i32>()
                .value(0),
            "x"
        );
        assert!(out.column_by_name("platform").unwrap().is_null(0));
    }

    #[test]
    fn no_duplicates_returns_the_batch_unchanged() {
        let input = batch(&[("a", Some(1), "x"), ("b", Some(1), "y")]);
        assert_eq!(dedupe(&input).unwrap(), input);
    }
}
