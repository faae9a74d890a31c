//! The embedded demo: what `ecops` opens when no catalog is configured.
//!
//! 1. [`prepare`] writes the 300 sample items and their inventory bundled in
//!    `assets/demo/` to a local folder and creates a catalog beside them.
//! 2. [`start`] ingests the sample at once (the panes have data within
//!    seconds), then generates a larger synthetic set with
//!    [`crate::demo::generate`] and ingests it through a throttled loopback
//!    server ([`super::feed`]), so throughput, jobs, partitions and the map
//!    keep moving for minutes.
//!
//! ```text
//! <dir>/.ecops-console-demo   marker: the console may wipe and rebuild this folder
//! <dir>/catalog/              the demo catalog (earthcatalog.db, warehouse/, .lock, …)
//! <dir>/sample/               inventory.csv + items/<key> from assets/demo
//! <dir>/live/                 `ecops demo-data` layout, generated at startup
//! ```

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use super::{IngestSpec, Jobs};
use crate::catalog::{CatalogError, EarthCatalog, OpenOptions};

/// Sample inventory (S3 Inventory CSV, no header), from `assets/demo/`.
const SAMPLE_INVENTORY: &[u8] = include_bytes!("../../assets/demo/inventory.csv");
/// Sample item bodies, gzip of `<key>\t<json>` lines, from `assets/demo/`.
const SAMPLE_ITEMS: &[u8] = include_bytes!("../../assets/demo/items.tsv.gz");
/// Marker file of a demo folder.
pub const MARKER: &str = ".ecops-console-demo";
/// H3 resolution of the demo catalog (earthcatalog's default).
pub const RESOLUTION: u8 = 1;

/// Errors preparing the demo folder.
#[derive(Debug, thiserror::Error)]
pub enum DemoSetupError {
    #[error("demo folder {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "demo folder {} exists and was not made by the console (no {MARKER}); \
         set ECOPS_DEMO_DIR to another folder",
        .0.display()
    )]
    Foreign(PathBuf),
    #[error("bundled demo sample is corrupt: {0}")]
    Sample(String),
    #[error("demo catalog: {0}")]
    Catalog(#[from] CatalogError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DemoSetupError + '_ {
    move |source| DemoSetupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The demo folder: `ECOPS_DEMO_DIR`, else `<cache>/ecops/demo` (XDG cache or
/// `~/.cache`), else the temp dir.
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ECOPS_DEMO_DIR") {
        return PathBuf::from(d);
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map(|d| PathBuf::from(d).join("ecops"))
        .or_else(|| std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/ecops")))
        .unwrap_or_else(|| std::env::temp_dir().join("ecops"))
        .join("demo")
}

/// Where the sample was written.
#[derive(Debug, Clone)]
pub struct Sample {
    pub inventory: PathBuf,
    pub items_root: PathBuf,
    pub items: u64,
}

/// Writes the bundled sample to `dir/inventory.csv` and `dir/items/<key>`.
pub fn write_sample(dir: &Path) -> Result<Sample, DemoSetupError> {
    let items_root = dir.join("items");
    std::fs::create_dir_all(&items_root).map_err(io(&items_root))?;
    let inventory = dir.join("inventory.csv");
    std::fs::write(&inventory, SAMPLE_INVENTORY).map_err(io(&inventory))?;
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(SAMPLE_ITEMS)
        .read_to_end(&mut text)
        .map_err(|e| DemoSetupError::Sample(e.to_string()))?;
    let mut items = 0;
    for line in text.lines() {
        let line = line.map_err(|e| DemoSetupError::Sample(e.to_string()))?;
        let Some((key, body)) = line.split_once('\t') else {
            return Err(DemoSetupError::Sample(format!(
                "line {} has no tab",
                items + 1
            )));
        };
        if key.split('/').any(|s| s == ".." || s.is_empty()) {
            return Err(DemoSetupError::Sample(format!("unsafe key {key}")));
        }
        let path = items_root.join(key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, body).map_err(io(&path))?;
        items += 1;
    }
    Ok(Sample {
        inventory,
        items_root,
        items,
    })
}

/// A prepared demo folder.
#[derive(Debug, Clone)]
pub struct Demo {
    pub dir: PathBuf,
    /// The catalog base (`<dir>/catalog`).
    pub base: String,
    pub sample: Sample,
}

/// (Re)builds the demo folder `dir`: wipes what an earlier demo left (only
/// if the folder carries the marker), writes the sample, creates the catalog.
pub async fn prepare(dir: &Path) -> Result<Demo, DemoSetupError> {
    if dir.exists() {
        if !dir.join(MARKER).is_file() {
            let empty = std::fs::read_dir(dir).map_err(io(dir))?.next().is_none();
            if !empty {
                return Err(DemoSetupError::Foreign(dir.to_path_buf()));
            }
        }
        for sub in ["catalog", "sample", "live"] {
            let p = dir.join(sub);
            if p.exists() {
                std::fs::remove_dir_all(&p).map_err(io(&p))?;
            }
        }
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let marker = dir.join(MARKER);
    std::fs::write(
        &marker,
        "the ecops console's demo folder: rebuilt at every demo start\n",
    )
    .map_err(io(&marker))?;
    let sample = write_sample(&dir.join("sample"))?;
    let base = dir.join("catalog").display().to_string();
    EarthCatalog::init(&base, RESOLUTION, &OpenOptions::default()).await?;
    Ok(Demo {
        dir: dir.to_path_buf(),
        base,
        sample,
    })
}

/// The live part of the demo.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Synthetic items generated at startup (`ECOPS_DEMO_ITEMS`, default 20 000).
    pub items: u64,
    /// Items served per second (`ECOPS_DEMO_RATE`, default 150).
    pub rate: f64,
    /// Items per commit.
    pub chunk_size: usize,
    pub seed: u64,
}

impl LiveOptions {
    /// Defaults, overridden by `ECOPS_DEMO_ITEMS` and `ECOPS_DEMO_RATE`.
    pub fn from_env() -> Self {
        let num = |k: &str| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        Self {
            items: num("ECOPS_DEMO_ITEMS").map_or(20_000, |v| v.max(1.0) as u64),
            rate: num("ECOPS_DEMO_RATE").map_or(150.0, |v| v.max(1.0)),
            chunk_size: 500,
            seed: 42,
        }
    }
}

/// Starts the demo's jobs: the sample ingest, then the live ingest.
pub fn start(jobs: &Jobs, demo: &Demo, live: LiveOptions) {
    let (jobs, demo) = (jobs.clone(), demo.clone());
    tokio::spawn(async move {
        let sample = IngestSpec::inventory(
            &demo.sample.inventory.display().to_string(),
            Some(&demo.sample.items_root.display().to_string()),
            Some("demo-sample"),
            100,
            8,
        );
        let sample = IngestSpec {
            expected_items: Some(demo.sample.items),
            ..sample
        };
        let (_, done) = jobs.start_ingest(sample);
        let _ = done.await;
        let out = demo.dir.join("live");
        jobs.notice(format!(
            "demo: generating {} synthetic items in {}",
            live.items,
            out.display()
        ));
        let opts = crate::demo::DemoOptions {
            seed: live.seed,
            parts: 1,
            ..crate::demo::DemoOptions::new(live.items, &out)
        };
        let generated = tokio::task::spawn_blocking(move || crate::demo::generate(&opts)).await;
        let summary = match generated {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return jobs.notice(format!("demo: generating items failed: {e}")),
            Err(e) => return jobs.notice(format!("demo: generator task failed: {e}")),
        };
        let server =
            match super::feed::FeedServer::start(summary.out.join("items"), live.rate).await {
                Ok(s) => s,
                Err(e) => return jobs.notice(format!("demo: item server failed to start: {e}")),
            };
        let url = server.url();
        jobs.keep_alive(Box::new(server));
        jobs.notice(format!(
            "demo: ingesting {} items from {url} (throttled to {:.0} items/s)",
            live.items, live.rate
        ));
        let spec = IngestSpec::inventory(
            &summary
                .out
                .join("inventory/inventory.csv")
                .display()
                .to_string(),
            Some(&url),
            Some("demo-live"),
            live.chunk_size,
            16,
        );
        let mut spec = spec;
        spec.params.timeout_seconds = Some(60);
        spec.expected_items = Some(summary.meta.inventory_rows);
        jobs.start_ingest(spec);
    });
}
