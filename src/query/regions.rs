//! Planning on a GeoJSON-region grid: the partitions a query reads are the
//! regions its geometry touches (the rule ingest files items by), plus the
//! outside partitions unless one region covers the whole query.

use std::sync::Arc;

use iceberg::table::Table;

use super::model::{Query, QueryError, QueryGeometry};
use crate::catalog::EarthCatalog;
use crate::catalog::schema::{self, GridSpec};
use crate::grid::planar::Planar;
use crate::grid::{Grid, RegionGrid};

/// The table's regions when its grid is a GeoJSON one; None for H3 grids.
pub async fn region_grid(
    catalog: &EarthCatalog,
    table: &Table,
) -> Result<Option<Arc<RegionGrid>>, QueryError> {
    let recorded = schema::grid_from_properties(table.metadata().properties(), None);
    if !matches!(recorded.map(|g| g.spec()), Some(GridSpec::GeoJson { .. })) {
        return Ok(None);
    }
    match catalog.load_grid(table).await? {
        Grid::Regions(r) => Ok(Some(r)),
        Grid::H3(_) => Ok(None),
    }
}

/// The query geometry as the exact test reads it (None: no geometry).
pub fn query_shape(query: &Query) -> Option<Planar> {
    query.geometry.as_ref().map(|g| match g {
        QueryGeometry::Point { lon, lat } => Planar::point(*lon, *lat),
        QueryGeometry::BBox {
            west,
            south,
            east,
            north,
        } => Planar::bbox(*west, *south, *east, *north),
        QueryGeometry::Shape(s) => Planar::from_geometry(s),
    })
}

/// The partitions `query` must read on `regions`; None when the query has
/// no geometry (every partition).
pub fn query_partitions(regions: &RegionGrid, query: &Query) -> Option<Vec<String>> {
    query_shape(query).map(|shape| regions.query_partitions(&shape))
}
