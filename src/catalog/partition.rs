//! Where a partition spec keeps the grid partition and the year. A table's
//! spec can evolve (another tool adds, drops or reorders fields, e.g.
//! PyIceberg's `update_spec()`), and each manifest's files carry the tuple
//! of the spec they were written with: readers look fields up in *that*
//! spec (by the manifest's spec id), writers fill the *default* spec.

use std::collections::HashMap;

use iceberg::spec::{Literal, PartitionSpec, Schema, Struct, Transform};
use iceberg::table::Table;

use super::CatalogError;

/// Positions of the grid partition and the year in one spec's partition
/// tuple, found by source column and transform (`identity(grid_partition)`,
/// `year(datetime)`), whatever the fields are named; None when the spec has
/// no such field (its files may then hold any cell, or any year).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionFields {
    pub cell: Option<usize>,
    pub year: Option<usize>,
}

impl PartitionFields {
    /// The fields of `spec` over `schema`.
    pub fn of_spec(spec: &PartitionSpec, schema: &Schema) -> Self {
        let source = |name: &str| schema.field_by_name(name).map(|f| f.id);
        let find = |column: &str, transform: Transform| {
            let id = source(column)?;
            spec.fields()
                .iter()
                .position(|f| f.source_id == id && f.transform == transform)
        };
        Self {
            cell: find("grid_partition", Transform::Identity),
            year: find("datetime", Transform::Year),
        }
    }

    /// The fields of the table's default spec (the one new files are written with).
    pub fn of_default(table: &Table) -> Self {
        let metadata = table.metadata();
        Self::of_spec(metadata.default_partition_spec(), metadata.current_schema())
    }
}

/// The fields of every spec the table has had, by spec id (a manifest
/// names the spec its files were written with).
pub fn fields_by_spec(table: &Table) -> HashMap<i32, PartitionFields> {
    let metadata = table.metadata();
    let schema = metadata.current_schema();
    metadata
        .partition_specs_iter()
        .map(|spec| (spec.spec_id(), PartitionFields::of_spec(spec, schema)))
        .collect()
}

/// The partition tuple of a (cell, year) bucket in the table's default spec,
/// and that spec's id. A spec with a field ecops cannot fill from a bucket
/// (other than a void transform, which stays null) is refused: writing a
/// wrong partition value would make readers prune the file wrongly.
pub fn bucket_partition(
    table: &Table,
    cell: &str,
    year: Option<i32>,
) -> Result<(Struct, i32), CatalogError> {
    let metadata = table.metadata();
    let spec = metadata.default_partition_spec();
    let fields = PartitionFields::of_spec(spec, metadata.current_schema());
    let values = spec
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| {
            if Some(i) == fields.cell {
                Ok(Some(Literal::string(cell)))
            } else if Some(i) == fields.year {
                Ok(year.map(|y| Literal::int(y - 1970)))
            } else if field.transform == Transform::Void {
                Ok(None)
            } else {
                Err(CatalogError::Invalid(format!(
                    "the table's partition spec {} has a field ecops cannot fill: {} ({} of field {}); \
                     ecops writes identity(grid_partition) and year(datetime)",
                    spec.spec_id(),
                    field.name,
                    field.transform,
                    field.source_id
                )))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((Struct::from_iter(values), spec.spec_id()))
}
