//! `ecops bench query`: planning and end-to-end latency of seven query
//! shapes on a demo catalog built by the real ingest, each checked against a
//! brute-force scan of every demo item (no cells, no pruning).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::{Value, json};

use super::bench::{ingest_demo, percentile};
use super::{Settings, print_json};
use crate::catalog::{EarthCatalog, OpenOptions};
use crate::demo::{DemoOptions, generate};
use crate::query::geom::Planar;
use crate::query::{self, Query, QueryText, ScanOptions};

/// Arguments of `ecops bench query`.
#[derive(Debug, Clone, Args)]
pub struct BenchQueryArgs {
    /// Demo items in the catalog.
    #[arg(long, default_value_t = 20_000)]
    pub items: u64,
    /// Working folder (demo data and catalog are built once and reused).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Timed warm runs per shape.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Grid resolution of the catalog.
    #[arg(long, default_value_t = 1)]
    pub h3_resolution: u8,
    /// Items per ingest commit (smaller chunks, more files).
    #[arg(long, default_value_t = 1_000)]
    pub chunk_size: usize,
}

/// The seven benchmark shapes: (name, query text).
pub fn shapes() -> Vec<(&'static str, QueryText)> {
    let t = |f: &dyn Fn(&mut QueryText)| {
        let mut q = QueryText::default();
        f(&mut q);
        q
    };
    vec![
        ("point", t(&|q| q.point = Some("35.5,5.5".into()))),
        ("regional bbox", t(&|q| q.bbox = Some("30,0,40,10".into()))),
        (
            "bbox + years",
            t(&|q| {
                q.bbox = Some("30,0,40,10".into());
                q.datetime = Some("2018-01-01/2020-12-31".into());
            }),
        ),
        (
            "datetime only",
            t(&|q| q.datetime = Some("2019-03-01T00:00:00Z/2019-04-30T23:59:59Z".into())),
        ),
        (
            "antimeridian bbox",
            t(&|q| q.bbox = Some("170,50,-170,70".into())),
        ),
        (
            "whole world",
            t(&|q| q.bbox = Some("-180,-90,180,90".into())),
        ),
        (
            "polygon with hole",
            t(&|q| {
                q.intersects = Some(
                    "POLYGON ((165 45, -165 45, -165 75, 165 75, 165 45), \
                     (175 55, -175 55, -175 65, 175 65, 175 55))"
                        .into(),
                )
            }),
        ),
    ]
}

/// Runs the benchmark.
pub async fn run(settings: &Settings, args: &BenchQueryArgs) -> Result<ExitCode> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("target/ecops-bench/query-{}", args.items)));
    let data = dir.join("data");
    let base = dir.join("catalog");
    build(&data, &base, args, settings.json)?;
    let items = load_items(&data.join("items"))?;
    let base_s = base.to_string_lossy().to_string();
    let catalog = EarthCatalog::open(
        &base_s,
        &OpenOptions {
            read_only: true,
            ..Default::default()
        },
    )
    .await?;
    let mut results = Vec::new();
    for (name, text) in shapes() {
        let query = Query::parse(&text)?;
        // Cold: the first plan decodes the manifests (then they are cached).
        let cold = Instant::now();
        let first = query::search(&catalog, &query, &ScanOptions::default()).await?;
        let cold_ms = cold.elapsed().as_secs_f64() * 1000.0;
        let (mut plan_ms, mut total_ms) = (Vec::new(), Vec::new());
        for _ in 0..args.runs.max(1) {
            let started = Instant::now();
            let plan = query::plan(&catalog, &query).await?;
            plan_ms.push(started.elapsed().as_secs_f64() * 1000.0);
            let result = query::search(&catalog, &query, &ScanOptions::default()).await?;
            total_ms.push(result.elapsed.as_secs_f64() * 1000.0);
            drop(plan);
        }
        plan_ms.sort_by(f64::total_cmp);
        total_ms.sort_by(f64::total_cmp);
        let got: Vec<&str> = first.hits.iter().map(|h| h.id.as_str()).collect();
        let got_set: HashSet<&str> = got.iter().copied().collect();
        let expected = brute_force(&items, &query);
        let missed = expected
            .iter()
            .filter(|id| !got_set.contains(id.as_str()))
            .count();
        let extra = got_set.iter().filter(|id| !expected.contains(**id)).count();
        let r = json!({
            "shape": name,
            "query": text_json(&text),
            "items": got.len(),
            "expected": expected.len(),
            "missed": missed,
            "extra": extra,
            "duplicates": got.len() - got_set.len(),
            "cells": first.plan.cells.as_ref().map(Vec::len),
            "files_kept": first.plan.files.len(),
            "files_total": first.plan.files_total,
            "bytes_kept": first.plan.bytes_kept,
            "rows_read": first.scan["rows_read"],
            "cold_ms": cold_ms,
            "plan_ms_p50": percentile(&plan_ms, 50.0),
            "plan_ms_p95": percentile(&plan_ms, 95.0),
            "total_ms_p50": percentile(&total_ms, 50.0),
            "total_ms_p95": percentile(&total_ms, 95.0),
        });
        if !settings.json {
            println!(
                "{name:<18} {:>6} items (expected {}, missed {missed}, extra {extra}) files {:>5}/{} plan p50 {:>6.2} p95 {:>6.2} ms  total p50 {:>7.1} p95 {:>7.1} ms (cold {:.0} ms)",
                got.len(),
                expected.len(),
                first.plan.files.len(),
                first.plan.files_total,
                percentile(&plan_ms, 50.0),
                percentile(&plan_ms, 95.0),
                percentile(&total_ms, 50.0),
                percentile(&total_ms, 95.0),
                cold_ms
            );
        }
        results.push(r);
    }
    if settings.json {
        print_json(&json!({
            "bench": "query",
            "base": base_s,
            "items": items.len(),
            "runs": args.runs,
            "h3_resolution": args.h3_resolution,
            "shapes": results,
            "peak_rss_bytes": crate::metrics::peak_rss_bytes(),
        }))?;
    }
    let wrong = results
        .iter()
        .any(|r| r["missed"] != 0 || r["extra"] != 0 || r["duplicates"] != 0);
    Ok(if wrong {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn text_json(t: &QueryText) -> Value {
    let mut o = BTreeMap::new();
    for (k, v) in [
        ("point", &t.point),
        ("bbox", &t.bbox),
        ("intersects", &t.intersects),
        ("datetime", &t.datetime),
    ] {
        if let Some(v) = v {
            o.insert(k, v.clone());
        }
    }
    json!(o)
}

/// Generates demo data and ingests it with the real `ecops ingest` (once).
fn build(data: &Path, base: &Path, args: &BenchQueryArgs, quiet: bool) -> Result<()> {
    if base.join(crate::catalog::DB_FILE).is_file() && data.join("meta.json").is_file() {
        return Ok(());
    }
    if !quiet {
        eprintln!(
            "building: {} demo items into {}",
            args.items,
            data.display()
        );
    }
    generate(&DemoOptions::new(args.items, data))?;
    let chunk = args.chunk_size.to_string();
    let res = args.h3_resolution.to_string();
    let extra = [
        "--chunk-size",
        chunk.as_str(),
        "--h3-resolution",
        res.as_str(),
    ];
    ingest_demo(base, data, None, &extra, &[])?
        .result("ecops ingest (building the bench catalog)")?;
    Ok(())
}

/// A demo item as the brute force sees it.
struct Item {
    id: String,
    datetime: Option<DateTime<Utc>>,
    footprint: Option<Planar>,
}

fn load_items(dir: &Path) -> Result<Vec<Item>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("read {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(".stac.json") {
                let item = crate::stac::parse_item(&std::fs::read(&path)?)
                    .with_context(|| format!("parse {}", path.display()))?;
                out.push(Item {
                    id: item.id,
                    datetime: item.datetime,
                    footprint: item.geometry.as_ref().map(Planar::from_geometry),
                });
            }
        }
    }
    Ok(out)
}

/// Ids of the items matching the query's geometry and datetime, by testing every item.
fn brute_force(items: &[Item], query: &Query) -> HashSet<String> {
    let planar = crate::query::regions::query_shape(query);
    items
        .iter()
        .filter(|i| match (&planar, &i.footprint) {
            (None, _) => true,
            (Some(q), Some(f)) => f.intersects(q),
            (Some(_), None) => false,
        })
        .filter(|i| match (&query.datetime, i.datetime) {
            (None, _) => true,
            (Some(r), Some(t)) => r.contains(t),
            (Some(_), None) => false,
        })
        .map(|i| i.id.clone())
        .collect()
}
