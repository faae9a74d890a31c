//! A final data file as a reduce task describes it to the committer, which
//! runs in another process: everything the Iceberg manifest entry needs
//! (path, bucket, counts, column bounds), as JSON.

use std::collections::HashMap;

use iceberg::spec::{DataContentType, DataFile, DataFileBuilder, DataFileFormat, Datum};
use serde::{Deserialize, Serialize};

use crate::catalog::CatalogError;

/// One final data file of a backfill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StagedFile {
    pub path: String,
    pub cell: String,
    pub year: Option<i32>,
    pub record_count: u64,
    pub file_size_in_bytes: u64,
    #[serde(default)]
    pub value_counts: HashMap<i32, u64>,
    #[serde(default)]
    pub null_value_counts: HashMap<i32, u64>,
    #[serde(default)]
    pub nan_value_counts: HashMap<i32, u64>,
    #[serde(default)]
    pub lower_bounds: HashMap<i32, Datum>,
    #[serde(default)]
    pub upper_bounds: HashMap<i32, Datum>,
}

impl StagedFile {
    /// Describes `file`, written for bucket (`cell`, `year`).
    pub fn of(file: &DataFile, cell: &str, year: Option<i32>) -> Self {
        Self {
            path: file.file_path().to_string(),
            cell: cell.to_string(),
            year,
            record_count: file.record_count(),
            file_size_in_bytes: file.file_size_in_bytes(),
            value_counts: file.value_counts().clone(),
            null_value_counts: file.null_value_counts().clone(),
            nan_value_counts: file.nan_value_counts().clone(),
            lower_bounds: file.lower_bounds().clone(),
            upper_bounds: file.upper_bounds().clone(),
        }
    }

    /// The manifest entry's data file, in `table`'s default partition spec.
    pub fn to_data_file(&self, table: &iceberg::table::Table) -> Result<DataFile, CatalogError> {
        let (partition, spec_id) =
            crate::catalog::partition::bucket_partition(table, &self.cell, self.year)?;
        DataFileBuilder::default()
            .content(DataContentType::Data)
            .file_path(self.path.clone())
            .file_format(DataFileFormat::Parquet)
            .partition(partition)
            .partition_spec_id(spec_id)
            .record_count(self.record_count)
            .file_size_in_bytes(self.file_size_in_bytes)
            .value_counts(self.value_counts.clone())
            .null_value_counts(self.null_value_counts.clone())
            .nan_value_counts(self.nan_value_counts.clone())
            .lower_bounds(self.lower_bounds.clone())
            .upper_bounds(self.upper_bounds.clone())
            .build()
            .map_err(|e| CatalogError::Invalid(format!("describing {}: {e}", self.path)))
    }
}
