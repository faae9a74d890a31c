//! Query results as STAC items, and written as a stac-geoparquet file
//! (`ecops query --format stac-geoparquet`, `ecops export`).

use std::path::Path;

use futures::TryStreamExt;
use serde_json::{Map, Value};

use super::model::{Query, QueryError};
use super::plan::Plan;
use super::scan::{Fields, Hit, ScanOptions, execute};
use crate::catalog::EarthCatalog;
use crate::stac::stac_geoparquet::{ExportError, ExportReport, StacGeoparquetWriter, stac_item};

impl Hit {
    /// The item as a STAC Item (GeoJSON Feature): `stac_version`,
    /// `stac_extensions`, `bbox` and `links` at the top level, `datetime`
    /// and `platform` among the properties. Needs a scan with [`Fields::All`].
    pub fn stac_item(&self) -> Value {
        let mut properties: Map<String, Value> = self.properties.clone().into_iter().collect();
        properties.insert(
            "datetime".into(),
            self.datetime
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
                .into(),
        );
        if let Some(p) = &self.platform {
            properties.insert("platform".into(), p.clone().into());
        }
        let geometry = self
            .geometry
            .as_ref()
            .map_or(Value::Null, crate::stac::geojson::geometry_to_json);
        stac_item(
            &self.id,
            self.collection.as_deref(),
            geometry,
            self.assets.as_ref(),
            properties,
        )
    }
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryExportError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error("{path}: {source}")]
    Output {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Runs `plan` for `query` and writes every matching item, once, to `out`
/// as stac-geoparquet. The file appears whole or not at all (written
/// beside it, then renamed); `temp_dir` holds the items while their column
/// types are learnt.
pub async fn export(
    catalog: &EarthCatalog,
    query: &Query,
    plan: &Plan,
    concurrency: usize,
    out: &Path,
    temp_dir: &Path,
) -> Result<ExportReport, QueryExportError> {
    let opts = ScanOptions {
        fields: Fields::All,
        concurrency,
    };
    let mut writer = StacGeoparquetWriter::new(temp_dir)?;
    let mut hits = execute(catalog, query, plan, &opts).stream;
    while let Some(hit) = hits.try_next().await? {
        writer.push(&hit.stac_item())?;
    }
    let output = |source| QueryExportError::Output {
        path: out.display().to_string(),
        source,
    };
    let staged = out.with_file_name(format!(
        ".{}.tmp-{}",
        out.file_name()
            .map_or("export".into(), |n| n.to_string_lossy()),
        uuid::Uuid::new_v4().simple()
    ));
    let file = std::fs::File::create(&staged).map_err(output)?;
    let written = {
        let staged = staged.clone();
        tokio::task::spawn_blocking(move || {
            let report = writer.finish(std::io::BufWriter::new(file))?;
            Ok::<_, ExportError>((report, staged))
        })
        .await
        .map_err(|e| output(std::io::Error::other(e)))?
    };
    match written {
        Ok((report, staged)) => {
            std::fs::rename(&staged, out).map_err(output)?;
            Ok(report)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&staged);
            Err(e.into())
        }
    }
}
