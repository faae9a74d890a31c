//! The EarthCatalog table: schema, partition spec and grid properties
//! (crate docs: the catalog). Field ids and names match earthcatalog's table exactly.

use std::collections::HashMap;

use iceberg::spec::{NestedField, PrimitiveType, Schema, Transform, Type, UnboundPartitionSpec};

/// Catalog name, namespace and table name earthcatalog uses.
pub const CATALOG_NAME: &str = "earthcatalog";
/// Namespace of the items table.
pub const NAMESPACE: &str = "earthcatalog";
/// Name of the items table.
pub const TABLE_NAME: &str = "stac_items";

/// Table property keys earthcatalog reads for the grid.
pub mod props {
    pub const GRID_TYPE: &str = "earthcatalog.grid.type";
    pub const GRID_RESOLUTION: &str = "earthcatalog.grid.resolution";
    pub const GRID_BOUNDARIES_PATH: &str = "earthcatalog.grid.boundaries_path";
    pub const GRID_ID_FIELD: &str = "earthcatalog.grid.id_field";
    pub const HASH_INDEX_PATH: &str = "earthcatalog.hash_index_path";
    pub const NAME_MAPPING: &str = "schema.name-mapping.default";
}

/// Partition value of items without a usable geometry.
pub const NO_CELL: &str = "__none__";

/// Columns of the table, in field-id order: (id, name, type).
pub const COLUMNS: &[(i32, &str, PrimitiveType)] = &[
    (1, "id", PrimitiveType::String),
    (2, "grid_partition", PrimitiveType::String),
    (3, "geometry", PrimitiveType::Binary),
    (4, "datetime", PrimitiveType::Timestamptz),
    (5, "platform", PrimitiveType::String),
    (6, "percent_valid_pixels", PrimitiveType::Long),
    (7, "date_dt", PrimitiveType::Long),
    (8, "proj:code", PrimitiveType::String),
    (9, "assets", PrimitiveType::String),
    (10, "links", PrimitiveType::String),
    (11, "stac_version", PrimitiveType::String),
    (12, "type", PrimitiveType::String),
    (13, "start_datetime", PrimitiveType::Timestamptz),
    (14, "version", PrimitiveType::String),
    (15, "sat:orbit_state", PrimitiveType::String),
    (16, "scene_1_id", PrimitiveType::String),
    (17, "scene_2_id", PrimitiveType::String),
    (18, "scene_1_frame", PrimitiveType::String),
    (19, "scene_2_frame", PrimitiveType::String),
    (20, "mid_datetime", PrimitiveType::String),
    (21, "created", PrimitiveType::Timestamptz),
    (22, "updated", PrimitiveType::Timestamptz),
    (23, "end_datetime", PrimitiveType::Timestamptz),
    (24, "stac_extensions", PrimitiveType::String),
    (25, "collection", PrimitiveType::String),
    (26, "latitude", PrimitiveType::Double),
    (27, "longitude", PrimitiveType::Double),
    (28, "bbox", PrimitiveType::String),
    // Ours: item properties outside the columns above, as one JSON object, so
    // nothing an item carried is lost. earthcatalog's readers ignore it.
    (29, "extra_properties", PrimitiveType::String),
];

/// Field id of the geometry column.
pub const GEOMETRY_FIELD_ID: i32 = 3;

/// The table schema: every column optional, as earthcatalog writes it.
pub fn table_schema() -> iceberg::Result<Schema> {
    let fields = COLUMNS
        .iter()
        .map(|(id, name, ty)| NestedField::optional(*id, *name, Type::Primitive(ty.clone())).into())
        .collect::<Vec<_>>();
    Schema::builder()
        .with_schema_id(0)
        .with_fields(fields)
        .build()
}

/// identity(grid_partition) + year(datetime), field ids 1000 and 1001 as PyIceberg assigns.
pub fn partition_spec() -> iceberg::Result<UnboundPartitionSpec> {
    UnboundPartitionSpec::builder()
        .with_spec_id(0)
        .add_partition_field(2, "grid_partition", Transform::Identity)?
        .add_partition_field(4, "year", Transform::Year)
        .map(|b| b.build())
}

/// The grid a table is partitioned by.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GridInfo {
    /// `h3` for the grids ecops writes.
    pub kind: String,
    /// H3 resolution (0–15).
    pub resolution: u8,
    /// False when the table lacked grid properties and the resolution was inferred from cell ids.
    pub recorded: bool,
}

/// Table properties recording the grid and the hash index path.
pub fn grid_properties(resolution: u8, hash_index_path: &str) -> HashMap<String, String> {
    HashMap::from([
        (props::GRID_TYPE.to_string(), "h3".to_string()),
        (props::GRID_RESOLUTION.to_string(), resolution.to_string()),
        (props::GRID_BOUNDARIES_PATH.to_string(), String::new()),
        (props::GRID_ID_FIELD.to_string(), String::new()),
        (
            props::HASH_INDEX_PATH.to_string(),
            hash_index_path.to_string(),
        ),
        (props::NAME_MAPPING.to_string(), name_mapping_json()),
    ])
}

/// `schema.name-mapping.default` for our schema: lets readers map files
/// without Parquet field ids (earthcatalog's) by column name.
pub fn name_mapping_json() -> String {
    let entries = COLUMNS
        .iter()
        .map(|(id, name, _)| serde_json::json!({"names": [name], "field-id": id}))
        .collect::<Vec<_>>();
    serde_json::Value::Array(entries).to_string()
}

/// Reads the grid from table properties, or infers the resolution from a cell id.
pub fn grid_from_properties(
    properties: &HashMap<String, String>,
    sample_cell: Option<&str>,
) -> Option<GridInfo> {
    if let Some(res) = properties
        .get(props::GRID_RESOLUTION)
        .and_then(|r| r.trim().parse::<u8>().ok())
    {
        let kind = properties
            .get(props::GRID_TYPE)
            .cloned()
            .unwrap_or_else(|| "h3".to_string());
        return Some(GridInfo {
            kind,
            resolution: res,
            recorded: true,
        });
    }
    let cell = sample_cell?;
    let index = u64::from_str_radix(cell, 16).ok()?;
    let cell = h3o::CellIndex::try_from(index).ok()?;
    Some(GridInfo {
        kind: "h3".to_string(),
        resolution: u8::from(cell.resolution()),
        recorded: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_has_contract_field_ids() {
        let schema = table_schema().unwrap();
        assert_eq!(
            schema.field_by_name("geometry").unwrap().id,
            GEOMETRY_FIELD_ID
        );
        assert_eq!(schema.field_by_name("bbox").unwrap().id, 28);
        assert_eq!(schema.field_by_name("proj:code").unwrap().id, 8);
        assert!(schema.as_struct().fields().iter().all(|f| !f.required));
    }

    #[test]
    fn infers_resolution_from_cell() {
        let grid = grid_from_properties(&HashMap::new(), Some("81017ffffffffff")).unwrap();
        assert_eq!((grid.resolution, grid.recorded), (1, false));
        let grid = grid_from_properties(&grid_properties(3, "x"), None).unwrap();
        assert_eq!((grid.resolution, grid.recorded), (3, true));
        assert!(grid_from_properties(&HashMap::new(), Some("zz")).is_none());
    }
}
