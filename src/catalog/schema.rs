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
    /// Ours: xxh3-64 (hex) of the boundaries file a GeoJSON grid was created
    /// with, so a changed file is noticed instead of misfiling items.
    pub const GRID_BOUNDARIES_DIGEST: &str = "ecops.grid.boundaries_xxh3";
}

/// earthcatalog's `grid.type` values.
pub const GRID_H3: &str = "h3";
pub const GRID_GEOJSON: &str = "geojson";
/// earthcatalog's default id field for GeoJSON grids.
pub const DEFAULT_ID_FIELD: &str = "id";

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
    /// `h3` or `geojson`.
    pub kind: String,
    /// H3 resolution (0–15); 0 for a GeoJSON grid.
    pub resolution: u8,
    /// False when the table lacked grid properties and the resolution was inferred from cell ids.
    pub recorded: bool,
    /// GeoJSON grids: the boundaries file and the feature property naming each region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boundaries_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_field: Option<String>,
}

impl GridInfo {
    /// The grid as a spec (what `init` would be given to create it).
    pub fn spec(&self) -> GridSpec {
        match (&self.boundaries_path, self.kind.as_str()) {
            (Some(path), GRID_GEOJSON) => GridSpec::GeoJson {
                boundaries_path: path.clone(),
                id_field: self
                    .id_field
                    .clone()
                    .unwrap_or_else(|| DEFAULT_ID_FIELD.to_string()),
            },
            _ => GridSpec::H3 {
                resolution: self.resolution,
            },
        }
    }

    /// One line: `h3 resolution 1`, or `geojson regions of FILE (id field F)`.
    pub fn describe(&self) -> String {
        match self.spec() {
            GridSpec::H3 { resolution } => format!("h3 resolution {resolution}"),
            GridSpec::GeoJson {
                boundaries_path,
                id_field,
            } => format!("geojson regions of {boundaries_path} (id field {id_field})"),
        }
    }
}

/// A grid to create a table with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GridSpec {
    /// H3 cells at a resolution (0–15).
    H3 { resolution: u8 },
    /// Named regions: a GeoJSON FeatureCollection (local path, `file://` or
    /// `s3://`) and the feature property holding each region's id.
    GeoJson {
        boundaries_path: String,
        id_field: String,
    },
}

impl std::fmt::Display for GridSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GridSpec::H3 { resolution } => write!(f, "H3 resolution {resolution}"),
            GridSpec::GeoJson {
                boundaries_path,
                id_field,
            } => write!(
                f,
                "GeoJSON regions of {boundaries_path} (id field {id_field})"
            ),
        }
    }
}

/// Table properties recording the grid (earthcatalog's keys, plus the
/// boundaries digest for GeoJSON grids) and the hash index path.
pub fn grid_properties(
    spec: &GridSpec,
    hash_index_path: &str,
    boundaries_digest: Option<&str>,
) -> HashMap<String, String> {
    let mut props = HashMap::from([
        (
            props::HASH_INDEX_PATH.to_string(),
            hash_index_path.to_string(),
        ),
        (props::NAME_MAPPING.to_string(), name_mapping_json()),
    ]);
    let (kind, resolution, boundaries, id_field) = match spec {
        GridSpec::H3 { resolution } => (GRID_H3, resolution.to_string(), "", ""),
        GridSpec::GeoJson {
            boundaries_path,
            id_field,
        } => (
            GRID_GEOJSON,
            String::new(),
            boundaries_path.as_str(),
            id_field.as_str(),
        ),
    };
    props.insert(props::GRID_TYPE.to_string(), kind.to_string());
    props.insert(props::GRID_RESOLUTION.to_string(), resolution);
    props.insert(
        props::GRID_BOUNDARIES_PATH.to_string(),
        boundaries.to_string(),
    );
    props.insert(props::GRID_ID_FIELD.to_string(), id_field.to_string());
    if let Some(d) = boundaries_digest {
        props.insert(props::GRID_BOUNDARIES_DIGEST.to_string(), d.to_string());
    }
    props
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
    let text = |key: &str| {
        properties
            .get(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    if text(props::GRID_TYPE).as_deref() == Some(GRID_GEOJSON) {
        return Some(GridInfo {
            kind: GRID_GEOJSON.to_string(),
            resolution: 0,
            recorded: true,
            boundaries_path: text(props::GRID_BOUNDARIES_PATH),
            id_field: Some(text(props::GRID_ID_FIELD).unwrap_or_else(|| DEFAULT_ID_FIELD.into())),
        });
    }
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
            boundaries_path: None,
            id_field: None,
        });
    }
    let cell = sample_cell?;
    let index = u64::from_str_radix(cell, 16).ok()?;
    let cell = h3o::CellIndex::try_from(index).ok()?;
    Some(GridInfo {
        kind: "h3".to_string(),
        resolution: u8::from(cell.resolution()),
        recorded: false,
        boundaries_path: None,
        id_field: None,
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
        let grid = grid_from_properties(
            &grid_properties(&GridSpec::H3 { resolution: 3 }, "x", None),
            None,
        )
        .unwrap();
        assert_eq!((grid.resolution, grid.recorded), (3, true));
        let spec = GridSpec::GeoJson {
            boundaries_path: "/b.geojson".into(),
            id_field: "basin".into(),
        };
        let grid = grid_from_properties(
            &grid_properties(&spec, "x", Some("ab")),
            Some("81017ffffffffff"),
        )
        .unwrap();
        assert_eq!(
            grid.spec(),
            spec,
            "a GeoJSON grid is never inferred from cells"
        );
        assert!(grid_from_properties(&HashMap::new(), Some("zz")).is_none());
    }
}
