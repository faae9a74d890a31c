//! `ecops demo-data`: N realistic synthetic STAC items on disk plus their S3
//! inventory in every format ingest reads. Deterministic: the same options
//! (seed included) give the same bytes on every run.
//!
//! # Items
//! Modelled on the ITS_LIVE-style fixture items (tests/fixtures): velocity
//! image pairs from L8, L9, S1A, S1B, S2A, S2B with start/end/mid datetimes in
//! 2015–2025 (within each platform's mission life), created/updated,
//! percent_valid_pixels, date_dt, proj:code, sat:orbit_state, version, scene
//! ids and frames, latitude/longitude, s3:// and https:// asset hrefs, links,
//! collection, stac_extensions, and properties outside the table schema
//! (`eo:cloud_cover` on optical platforms, `custom:quality` on about a quarter).
//! Footprints are rotated 100–200 km rectangles (see [`super::footprint`]):
//! polar ones (some containing a pole), antimeridian-crossing ones (mostly an
//! RFC 7946 MultiPolygon split at ±180, a quarter one Polygon whose longitudes
//! jump), and 1 in 1000 items with `"geometry": null` (valid STAC; ingest puts
//! them in the `__none__` partition).
//!
//! # Keys and order
//! Keys look like `velocity_image_pair/<platform>/v02/<tile>/<id>.stac.json`,
//! where the tile (`N60W140`) is the 10° cell of the scene centre, truncated
//! toward zero like ITS_LIVE's. The inventory lists keys in byte order, as a
//! real S3 Inventory does, so consecutive rows share a key prefix and thus a
//! region: the generator walks platform by platform, tile by tile (a few dozen
//! items per tile for small N, a few hundred at a million), sorting each
//! tile's items by key. This mimics real inventories, and it matters for
//! benchmarks: an ingest chunk of consecutive rows touches few H3 cells, so it
//! writes few (cell, year) files; a shuffled inventory makes every chunk
//! write a file for nearly every cell. [`InventoryOrder::Shuffled`] writes
//! exactly that: the same rows in a seeded random order, as an S3 Inventory
//! whose key order follows neither space nor time gives them.
//!
//! # Scale
//! Items are generated tile by tile in batches of about [`BATCH_ITEMS`], in
//! parallel (each item has its own PRNG stream, so threads do not change the
//! bytes), written to disk at once and streamed to the inventory writer on
//! its own thread; memory is bounded by a batch, never by N.
//!
//! # last_modified_date
//! Increases with the row of the key-ordered inventory (2016-01-01 to
//! 2026-01-01, jittered within each row's slot), so `--since` keeps a suffix
//! of it; `meta.json` gives a `since_cutoff` date that keeps about the last
//! 10% of rows. A shuffled inventory keeps each row's date, so the same
//! `--since` keeps the same rows, scattered.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use serde::Serialize;

use super::DemoError;
use super::footprint::{self, Footprint, FootprintKind, SceneShape, round6};
use super::inventory_writer::{InventoryFiles, InventoryWriter};
use super::rng::{Rng, mix};
use super::time::{
    MICROS_PER_DAY, MILLIS_PER_DAY, date_of_millis, days_from_civil, write_compact_date,
    write_micros, year_of_micros,
};

/// Default bucket name of the inventory rows.
pub const DEFAULT_BUCKET: &str = "ecops-demo";
/// Collection of every item.
pub const COLLECTION: &str = "ecops-demo-image-pairs";
/// First component of every key.
pub const KEY_PREFIX: &str = "velocity_image_pair";
/// Items per batch handed to the worker threads.
pub const BATCH_ITEMS: u64 = 16_384;
/// File in the output folder marking it as ours (so a rerun may replace it).
pub const MARKER_FILE: &str = ".ecops-demo-data";
const MARKER_TEXT: &str =
    "written by `ecops demo-data`; a rerun may replace items/, inventory/ and meta.json\n";
/// Average items per (platform, tile) group while there are tiles to spare.
const ITEMS_PER_TILE: u64 = 30;
/// One item in this many has no geometry.
const NO_GEOMETRY_EVERY: u64 = 1000;

/// What to generate.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Valid items (≥ 1).
    pub items: u64,
    /// Output folder: created if missing; must be empty unless an earlier
    /// demo-data run wrote it (then its items/, inventory/ and meta.json are replaced).
    pub out: PathBuf,
    pub seed: u64,
    /// Bucket of the inventory rows and of the items' s3:// hrefs.
    pub bucket: String,
    /// Parts of the manifest inventories (clamped to 1..=rows).
    pub parts: usize,
    /// Deliberately bad items added to the inventory (not counted in `items`).
    pub invalid: usize,
    /// Worker threads; 0 = available parallelism. Does not change the output.
    pub threads: usize,
    /// Order of the inventory rows.
    pub order: InventoryOrder,
}

/// Order of the inventory rows (the item files are the same either way).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InventoryOrder {
    /// Key order, which here follows platform, region and last_modified_date
    /// (consecutive rows share a region: few buckets per ingest chunk).
    #[default]
    Time,
    /// A seeded shuffle of those rows, like a real S3 Inventory whose keys
    /// follow neither space nor time (every chunk touches many buckets).
    Shuffled,
}

impl std::str::FromStr for InventoryOrder {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "time" => Ok(Self::Time),
            "shuffled" => Ok(Self::Shuffled),
            other => Err(format!("unknown order '{other}' (time, shuffled)")),
        }
    }
}

impl std::fmt::Display for InventoryOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Time => "time",
            Self::Shuffled => "shuffled",
        })
    }
}

/// Sort key of key-ordered row `row` in a shuffled inventory: sorting by it
/// is a seeded uniform permutation (ties, vanishingly rare, keep row order).
fn shuffle_key(seed: u64, row: u64) -> (u64, u64) {
    (mix(seed ^ 0x5eed_5bff ^ mix(row.wrapping_add(1))), row)
}

impl DemoOptions {
    /// `items` items into `out` with the defaults: seed 42, bucket
    /// [`DEFAULT_BUCKET`], 4 parts, no invalid items.
    pub fn new(items: u64, out: impl Into<PathBuf>) -> Self {
        Self {
            items,
            out: out.into(),
            seed: 42,
            bucket: DEFAULT_BUCKET.to_string(),
            parts: 4,
            invalid: 0,
            threads: 0,
            order: InventoryOrder::Time,
        }
    }
}

/// Why an invalid item is bad; the string form is what `meta.json` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidClass {
    /// Truncated body (`ItemError::NotJson`).
    NotJson,
    /// No `id` member (`ItemError::BadId`).
    MissingId,
    /// `datetime` is "2021-02-30T25:61:00Z" (`ItemError::BadDatetime`).
    BadDatetime,
    /// A bowtie Polygon inside a correct bbox: only a validity check catches it.
    SelfIntersecting,
    /// The bbox is 3° of latitude away from the geometry (`ItemError::BboxMismatch`).
    BboxMismatch,
    /// Listed in the inventory, never written (a 404 for the fetcher).
    MissingFile,
}

impl InvalidClass {
    /// Invalid item `j` gets class `ALL[j % 6]`.
    pub const ALL: [InvalidClass; 6] = [
        Self::NotJson,
        Self::MissingId,
        Self::BadDatetime,
        Self::SelfIntersecting,
        Self::BboxMismatch,
        Self::MissingFile,
    ];
}

/// One deliberately bad inventory row.
#[derive(Debug, Clone, Serialize)]
pub struct InvalidItem {
    pub key: String,
    pub class: InvalidClass,
}

/// `DIR/meta.json`: what was generated, for tests to compare against.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DemoMeta {
    pub generator: String,
    pub seed: u64,
    pub bucket: String,
    pub collection: String,
    /// Order of the inventory rows.
    pub order: InventoryOrder,
    /// Valid items (item files written, excluding invalid ones).
    pub items: u64,
    /// Inventory rows: items + invalid.
    pub inventory_rows: u64,
    /// Bytes of all item files (valid and invalid).
    pub bytes_items: u64,
    /// Footprints with a vertex beyond ±75° latitude (pole-covering included).
    pub polar: u64,
    /// Footprints containing a pole (bbox spans −180..180 and reaches ±90).
    pub pole_covering: u64,
    /// MultiPolygons split at ±180 (bbox west > east).
    pub antimeridian_split: u64,
    /// Single Polygons whose longitudes jump across ±180 (bbox west > east).
    pub antimeridian_jump: u64,
    /// Items with `"geometry": null`.
    pub no_geometry: u64,
    /// Valid items per year of `datetime`.
    pub years: BTreeMap<String, u64>,
    /// Valid items per platform.
    pub platforms: BTreeMap<String, u64>,
    /// (platform, tile) key prefixes used.
    pub tiles: u64,
    pub first_last_modified: String,
    pub last_last_modified: String,
    /// `YYYY-MM-DD`: rows with last_modified_date ≥ this day keep ~ the last 10%.
    pub since_cutoff: String,
    /// Inventory rows (valid and invalid) with last_modified_date ≥ `since_cutoff`.
    pub rows_at_or_after_since: u64,
    /// Valid items among them.
    pub items_at_or_after_since: u64,
    /// Manifest parts.
    pub parts: usize,
    /// Files under `inventory/` (relative to it) and their sizes.
    pub inventory_files: Vec<super::inventory_writer::WrittenFile>,
    /// The bad rows, in inventory order.
    pub invalid: Vec<InvalidItem>,
}

/// What [`generate`] did.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    pub out: PathBuf,
    /// Files written: item files, inventory files, meta.json and the marker.
    pub files: u64,
    /// Bytes of those files.
    pub bytes: u64,
    pub seconds: f64,
    pub meta: DemoMeta,
}

struct Platform {
    code: &'static str,
    dir: &'static str,
    first: (i64, i64, i64),
    last: (i64, i64, i64),
    /// Days between the two scenes of a pair.
    date_dts: &'static [i64],
    width_km: (f64, f64),
    height_km: (f64, f64),
    optical: bool,
}

/// Sorted by `dir`, so iterating in this order is key order.
const PLATFORMS: [Platform; 6] = [
    Platform {
        code: "L8",
        dir: "l8",
        first: (2015, 1, 1),
        last: (2025, 12, 31),
        date_dts: &[16, 32, 48, 64, 96, 176, 352, 368],
        width_km: (175.0, 190.0),
        height_km: (170.0, 185.0),
        optical: true,
    },
    Platform {
        code: "L9",
        dir: "l9",
        first: (2021, 11, 1),
        last: (2025, 12, 31),
        date_dts: &[16, 32, 48, 64, 96, 176, 352],
        width_km: (175.0, 190.0),
        height_km: (170.0, 185.0),
        optical: true,
    },
    Platform {
        code: "S1A",
        dir: "s1a",
        first: (2015, 1, 1),
        last: (2025, 12, 31),
        date_dts: &[6, 12, 24, 36, 48, 72, 360],
        width_km: (180.0, 200.0),
        height_km: (150.0, 190.0),
        optical: false,
    },
    Platform {
        code: "S1B",
        dir: "s1b",
        first: (2016, 9, 26),
        last: (2021, 12, 23),
        date_dts: &[6, 12, 24, 36, 48, 72, 360],
        width_km: (180.0, 200.0),
        height_km: (150.0, 190.0),
        optical: false,
    },
    Platform {
        code: "S2A",
        dir: "s2a",
        first: (2015, 7, 1),
        last: (2025, 12, 31),
        date_dts: &[5, 10, 20, 30, 40, 60, 365],
        width_km: (100.0, 115.0),
        height_km: (100.0, 115.0),
        optical: true,
    },
    Platform {
        code: "S2B",
        dir: "s2b",
        first: (2017, 3, 15),
        last: (2025, 12, 31),
        date_dts: &[5, 10, 20, 30, 40, 60, 365],
        width_km: (100.0, 115.0),
        height_km: (100.0, 115.0),
        optical: true,
    },
];

/// (platform dir, tile) groups always generated first, so that even a small
/// N has polar caps, |lat| > 75 and antimeridian scenes.
const FORCED_GROUPS: [(&str, &str); 8] = [
    ("s2a", "N60E170"),
    ("l8", "N80E010"),
    ("s1a", "S80W100"),
    ("l9", "N50W170"),
    ("s2b", "S10E170"),
    ("s1b", "N70W040"),
    ("l8", "S70E100"),
    ("s2a", "N00E030"),
];

const EXT_PROJ: &str = "https://stac-extensions.github.io/projection/v2.0.0/schema.json";
const EXT_SAT: &str = "https://stac-extensions.github.io/sat/v1.0.0/schema.json";
const EXT_EO: &str = "https://stac-extensions.github.io/eo/v1.1.0/schema.json";

/// A 10° tile named like ITS_LIVE's: latitude and longitude truncated toward zero.
#[derive(Debug, Clone, Copy)]
struct Tile {
    north: bool,
    lat_band: u32,
    east: bool,
    lon_band: u32,
}

impl Tile {
    fn label(&self) -> String {
        format!(
            "{}{:02}{}{:03}",
            if self.north { 'N' } else { 'S' },
            self.lat_band,
            if self.east { 'E' } else { 'W' },
            self.lon_band
        )
    }

    /// A scene centre in the tile. Antimeridian tiles put half their scenes
    /// within 1.2° of ±180 and polar-cap tiles one in 20 within 0.5° of the
    /// pole, so crossing and pole-covering footprints are common enough to test.
    fn sample(&self, rng: &mut Rng) -> (f64, f64) {
        let mut u_lat = rng.f64();
        let mut u_lon = rng.f64();
        if self.lat_band == 80 && rng.chance(0.05) {
            u_lat = 0.95 + 0.05 * u_lat;
        }
        if self.lon_band == 170 && rng.chance(0.5) {
            u_lon = 0.88 + 0.12 * u_lon;
        }
        let lat = self.lat_band as f64 + 10.0 * u_lat;
        let lon = self.lon_band as f64 + 10.0 * u_lon;
        (
            if self.north { lat } else { -lat },
            if self.east { lon } else { -lon },
        )
    }
}

/// All 648 tiles in key (label) order.
fn all_tiles() -> Vec<(String, Tile)> {
    let mut tiles = Vec::with_capacity(648);
    for north in [true, false] {
        for lat_band in (0..90).step_by(10) {
            for east in [true, false] {
                for lon_band in (0..180).step_by(10) {
                    let t = Tile {
                        north,
                        lat_band,
                        east,
                        lon_band,
                    };
                    tiles.push((t.label(), t));
                }
            }
        }
    }
    tiles.sort_by(|a, b| a.0.cmp(&b.0));
    tiles
}

/// One key prefix `<KEY_PREFIX>/<platform>/v02/<tile>/`: `count` valid items
/// with sequence numbers `first_seq..`, plus the invalid items `invalid`.
#[derive(Debug, Clone)]
struct Group {
    platform: usize,
    label: String,
    tile: Tile,
    count: u64,
    first_seq: u64,
    invalid: Vec<u64>,
}

/// Chooses the groups (in key order) and spreads the items over them.
fn plan(seed: u64, items: u64, invalid: u64) -> Vec<Group> {
    let tiles = all_tiles();
    let mut all: Vec<(usize, &String, Tile)> = Vec::with_capacity(PLATFORMS.len() * tiles.len());
    for p in 0..PLATFORMS.len() {
        for (label, tile) in &tiles {
            all.push((p, label, *tile));
        }
    }
    let wanted = items.div_ceil(ITEMS_PER_TILE).clamp(1, all.len() as u64) as usize;
    // Priority: forced groups first, then a seeded shuffle; keep the first `wanted`.
    let mut order: Vec<(u64, u64, usize)> = all
        .iter()
        .enumerate()
        .map(|(i, (p, label, _))| {
            let forced = FORCED_GROUPS
                .iter()
                .position(|(d, l)| *d == PLATFORMS[*p].dir && l == label);
            match forced {
                Some(rank) => (0, rank as u64, i),
                None => (1, mix(seed ^ mix(i as u64 + 1)), i),
            }
        })
        .collect();
    order.sort_unstable();
    let mut chosen: Vec<usize> = order[..wanted].iter().map(|o| o.2).collect();
    chosen.sort_unstable();

    // Uneven but exact split of `items`: weights 500..=1500, cumulative rounding.
    let weights: Vec<u128> = chosen
        .iter()
        .map(|i| 500 + u128::from(mix(seed.wrapping_add(0x5eed) ^ mix(*i as u64)) % 1001))
        .collect();
    let total: u128 = weights.iter().sum();
    let mut groups = Vec::with_capacity(chosen.len());
    let (mut cum, mut prev_end, mut seq) = (0u128, 0u64, 0u64);
    for (k, i) in chosen.iter().enumerate() {
        cum += weights[k];
        let end = (u128::from(items) * cum / total) as u64;
        let (p, label, tile) = all[*i];
        groups.push(Group {
            platform: p,
            label: label.clone(),
            tile,
            count: end - prev_end,
            first_seq: seq,
            invalid: Vec::new(),
        });
        seq += end - prev_end;
        prev_end = end;
    }
    let g = groups.len() as u64;
    for j in 0..invalid {
        let at = (((2 * j + 1) * g / (2 * invalid)).min(g - 1)) as usize;
        groups[at].invalid.push(j);
    }
    groups
}

/// Per-item facts that feed `meta.json`.
#[derive(Debug, Default, Clone)]
struct Stats {
    items: u64,
    polar: u64,
    pole_covering: u64,
    antimeridian_split: u64,
    antimeridian_jump: u64,
    no_geometry: u64,
    years: BTreeMap<i64, u64>,
    platforms: BTreeMap<&'static str, u64>,
    bytes_items: u64,
    files: u64,
}

impl Stats {
    fn merge(&mut self, o: &Stats) {
        self.items += o.items;
        self.polar += o.polar;
        self.pole_covering += o.pole_covering;
        self.antimeridian_split += o.antimeridian_split;
        self.antimeridian_jump += o.antimeridian_jump;
        self.no_geometry += o.no_geometry;
        for (k, v) in &o.years {
            *self.years.entry(*k).or_default() += v;
        }
        for (k, v) in &o.platforms {
            *self.platforms.entry(k).or_default() += v;
        }
        self.bytes_items += o.bytes_items;
        self.files += o.files;
    }
}

/// One inventory row as produced by a worker.
#[derive(Debug)]
struct Row {
    key: String,
    size: u64,
    invalid: Option<InvalidClass>,
}

struct GroupOut {
    rows: Vec<Row>,
    stats: Stats,
}

/// Generates item `seq` of `group` into `out` (cleared first) and returns its key.
/// `bad` turns it into an invalid item of that class.
fn build_item(
    seed: u64,
    bucket: &str,
    group: &Group,
    seq: u64,
    bad: Option<InvalidClass>,
    out: &mut String,
    stats: &mut Stats,
) -> String {
    let p = &PLATFORMS[group.platform];
    let d = Draw::new(&mut Rng::stream(seed, seq), p, group);
    let no_geometry = bad.is_none() && seq % NO_GEOMETRY_EVERY == NO_GEOMETRY_EVERY / 2 - 1;
    let fp: Option<Footprint> = match bad {
        Some(InvalidClass::SelfIntersecting) => Some(footprint::bowtie(d.lat, d.lon)),
        _ if no_geometry => None,
        _ => Some(footprint::footprint(&d.shape, d.jump)),
    };
    let id = item_id(p, &d, seq);
    let stem = format!("{KEY_PREFIX}/{}/v02/{}/{id}", p.dir, group.label);
    out.clear();
    write_head(out, p, bad, &id);
    write_geometry(out, fp.as_ref(), bad);
    write_properties(out, p, &d, fp.as_ref(), bad);
    write_assets_and_links(out, bucket, &stem);
    if bad == Some(InvalidClass::NotJson) {
        out.truncate(out.len() / 2);
    }
    if bad.is_none() {
        count_item(stats, p, &d, fp.as_ref());
    }
    stem + ".stac.json"
}

/// Everything random about one item, drawn in a fixed order (the bytes of
/// a seed's items depend on it).
struct Draw {
    dt: i64,
    start_us: i64,
    end_us: i64,
    mid_us: i64,
    created_us: i64,
    updated_us: i64,
    lat: f64,
    lon: f64,
    ascending: bool,
    shape: SceneShape,
    jump: bool,
    pvp: i64,
    frames: [u64; 2],
    scene_nums: [u64; 2],
    cloud: f64,
    quality: Option<(f64, &'static str)>,
}

impl Draw {
    fn new(rng: &mut Rng, p: &Platform, group: &Group) -> Self {
        // When: a pair of scenes `dt` days apart inside the mission's life.
        let dt = *rng.pick(p.date_dts);
        let first = days_from_civil(p.first.0, p.first.1, p.first.2);
        let last = days_from_civil(p.last.0, p.last.1, p.last.2);
        let start_day = rng.range_i64(first, (last - dt).max(first));
        let start_us = start_day * MICROS_PER_DAY + rng.below(MICROS_PER_DAY as u64) as i64;
        let end_us = start_us + dt * MICROS_PER_DAY;
        let created_us = end_us + rng.range_i64(5 * MICROS_PER_DAY, 200 * MICROS_PER_DAY);
        let updated_us = created_us + rng.range_i64(0, 60 * MICROS_PER_DAY);
        // Where and what shape.
        let (lat, lon) = group.tile.sample(rng);
        let ascending = rng.chance(0.5);
        let shape = SceneShape {
            center_lat: lat,
            center_lon: lon,
            width_km: rng.range_f64(p.width_km.0, p.width_km.1),
            height_km: rng.range_f64(p.height_km.0, p.height_km.1),
            // Ascending and descending passes lean opposite ways.
            rotation_deg: if ascending { 1.0 } else { -1.0 } * rng.range_f64(3.0, 15.0),
        };
        let jump = rng.chance(0.25);
        let pvp = rng.range_i64(0, 100);
        let frames = [rng.below(1_000_000), rng.below(1_000_000)];
        let scene_nums = [rng.below(1_000_000), rng.below(1_000_000)];
        let cloud = (rng.f64() * rng.f64() * 10_000.0).round() / 100.0;
        let quality = rng.chance(0.25).then(|| {
            (
                (rng.f64() * 1000.0).round() / 1000.0,
                *rng.pick(&["A", "B", "C"]),
            )
        });
        Self {
            dt,
            start_us,
            end_us,
            mid_us: start_us + dt * MICROS_PER_DAY / 2,
            created_us,
            updated_us,
            lat,
            lon,
            ascending,
            shape,
            jump,
            pvp,
            frames,
            scene_nums,
            cloud,
            quality,
        }
    }
}

/// ITS_LIVE's id layout: `<platform>_X_<start>_<end>_<seq>_G0120V02_P<pvp>`.
fn item_id(p: &Platform, d: &Draw, seq: u64) -> String {
    let mut id = String::with_capacity(48);
    let _ = write!(id, "{}_X_", p.code);
    write_compact_date(&mut id, d.start_us);
    id.push('_');
    write_compact_date(&mut id, d.end_us);
    let _ = write!(id, "_{seq:07}_G0120V02_P{:03}", d.pvp);
    id
}

/// `{"type", "stac_version", "stac_extensions", "id", "collection",`
fn write_head(out: &mut String, p: &Platform, bad: Option<InvalidClass>, id: &str) {
    out.push_str(r#"{"type":"Feature","stac_version":"1.0.0","stac_extensions":[""#);
    out.push_str(EXT_PROJ);
    out.push_str(r#"",""#);
    out.push_str(EXT_SAT);
    if p.optical {
        out.push_str(r#"",""#);
        out.push_str(EXT_EO);
    }
    out.push_str("\"],");
    if bad != Some(InvalidClass::MissingId) {
        out.push_str(r#""id":""#);
        out.push_str(id);
        out.push_str("\",");
    }
    out.push_str(r#""collection":""#);
    out.push_str(COLLECTION);
}

/// `"geometry"` and `"bbox"` (shifted off the geometry for that bad class).
fn write_geometry(out: &mut String, fp: Option<&Footprint>, bad: Option<InvalidClass>) {
    out.push_str(r#"","geometry":"#);
    match fp {
        None => out.push_str("null"),
        Some(f) => {
            f.write_geometry(out);
            out.push_str(r#","bbox":"#);
            let mut bbox = f.bbox;
            if bad == Some(InvalidClass::BboxMismatch) {
                let shift = if bbox[3] + 3.0 <= 90.0 { 3.0 } else { -3.0 };
                bbox[1] = round6(bbox[1] + shift);
                bbox[3] = round6(bbox[3] + shift);
            }
            footprint::write_numbers(out, &bbox);
        }
    }
}

/// `"properties": {…}` up to (not including) its closing brace.
fn write_properties(
    out: &mut String,
    p: &Platform,
    d: &Draw,
    fp: Option<&Footprint>,
    bad: Option<InvalidClass>,
) {
    let (c_lat, c_lon) = fp.map_or((d.lat, d.lon), |f| (f.center_lat, f.center_lon));
    out.push_str(r#","properties":{"datetime":""#);
    if bad == Some(InvalidClass::BadDatetime) {
        out.push_str("2021-02-30T25:61:00Z");
    } else {
        write_micros(out, d.mid_us, true);
    }
    out.push_str(r#"","start_datetime":""#);
    write_micros(out, d.start_us, true);
    out.push_str(r#"","end_datetime":""#);
    write_micros(out, d.end_us, true);
    out.push_str(r#"","mid_datetime":""#);
    write_micros(out, d.mid_us, false);
    let _ = write!(
        out,
        r#"","platform":"{}","percent_valid_pixels":{},"date_dt":{},"proj:code":"{}","sat:orbit_state":"{}","version":"002","#,
        p.code,
        d.pvp,
        d.dt,
        proj_code(c_lat, c_lon),
        if d.ascending {
            "ascending"
        } else {
            "descending"
        },
    );
    out.push_str(r#""scene_1_id":""#);
    out.push_str(p.code);
    out.push('_');
    write_compact_date(out, d.start_us);
    let _ = write!(out, "_{:06}", d.scene_nums[0]);
    out.push_str(r#"","scene_2_id":""#);
    out.push_str(p.code);
    out.push('_');
    write_compact_date(out, d.end_us);
    let _ = write!(
        out,
        r#"_{:06}","scene_1_frame":"{:06}","scene_2_frame":"{:06}","latitude":{},"longitude":{},"created":""#,
        d.scene_nums[1],
        d.frames[0],
        d.frames[1],
        round2(c_lat),
        round2(c_lon),
    );
    write_micros(out, d.created_us, true);
    out.push_str(r#"","updated":""#);
    write_micros(out, d.updated_us, true);
    out.push('"');
    if p.optical {
        let _ = write!(out, r#","eo:cloud_cover":{}"#, d.cloud);
    }
    if let Some((score, grade)) = d.quality {
        let _ = write!(
            out,
            r#","custom:quality":{{"score":{score},"grade":"{grade}"}}"#
        );
    }
}

/// Closes the properties, then `"assets"` and `"links"` as ITS_LIVE writes them.
fn write_assets_and_links(out: &mut String, bucket: &str, stem: &str) {
    let _ = write!(
        out,
        concat!(
            r#"}},"assets":{{"data":{{"href":"s3://{b}/{s}.nc","type":"application/netcdf","title":"Velocity image pair (NetCDF)","roles":["data"]}},"#,
            r#""thumbnail":{{"href":"https://{b}.s3.us-west-2.amazonaws.com/{s}.png","type":"image/png","title":"Thumbnail","roles":["thumbnail","overview"]}}}},"#,
            r#""links":[{{"rel":"self","href":"s3://{b}/{s}.stac.json","type":"application/geo+json"}},"#,
            r#"{{"rel":"parent","href":"../collection.json","type":"application/json"}},"#,
            r#"{{"rel":"collection","href":"../collection.json","type":"application/json"}},"#,
            r#"{{"rel":"root","href":"../../catalog.json","type":"application/json"}}]}}"#
        ),
        b = bucket,
        s = stem,
    );
}

/// Counts a valid item in the generation's stats.
fn count_item(stats: &mut Stats, p: &Platform, d: &Draw, fp: Option<&Footprint>) {
    stats.items += 1;
    *stats.years.entry(year_of_micros(d.mid_us)).or_default() += 1;
    *stats.platforms.entry(p.code).or_default() += 1;
    match fp {
        None => stats.no_geometry += 1,
        Some(f) => {
            stats.polar += u64::from(f.is_polar());
            match f.kind {
                FootprintKind::Plain => {}
                FootprintKind::PoleCovering => stats.pole_covering += 1,
                FootprintKind::AntimeridianSplit => stats.antimeridian_split += 1,
                FootprintKind::AntimeridianJump => stats.antimeridian_jump += 1,
            }
        }
    }
}

fn round2(v: f64) -> f64 {
    let r = (v * 100.0).round() / 100.0;
    if r == 0.0 { 0.0 } else { r }
}

/// Polar stereographic north/south beyond ±60°, else the scene's UTM zone.
fn proj_code(lat: f64, lon: f64) -> String {
    if lat >= 60.0 {
        "EPSG:3413".to_string()
    } else if lat <= -60.0 {
        "EPSG:3031".to_string()
    } else {
        let zone = (((lon + 180.0) / 6.0).floor() as i64).clamp(0, 59) + 1;
        format!("EPSG:{}{zone:02}", if lat >= 0.0 { 326 } else { 327 })
    }
}

/// Generates one group's items, writes their files, returns its rows in key order.
fn run_group(
    seed: u64,
    bucket: &str,
    items_total: u64,
    items_dir: &Path,
    group: &Group,
) -> Result<GroupOut, DemoError> {
    let p = &PLATFORMS[group.platform];
    let dir = items_dir
        .join(KEY_PREFIX)
        .join(p.dir)
        .join("v02")
        .join(&group.label);
    std::fs::create_dir_all(&dir).map_err(|source| DemoError::Io {
        path: dir.clone(),
        source,
    })?;
    let mut stats = Stats::default();
    let mut rows = Vec::with_capacity((group.count as usize) + group.invalid.len());
    let mut buf = String::with_capacity(4096);
    let jobs =
        (0..group.count)
            .map(|k| (group.first_seq + k, None))
            .chain(group.invalid.iter().map(|j| {
                // Invalid items use sequence numbers after the valid ones.
                (items_total + j, Some(InvalidClass::ALL[(*j % 6) as usize]))
            }));
    for (seq, bad) in jobs {
        let key = build_item(seed, bucket, group, seq, bad, &mut buf, &mut stats);
        if bad != Some(InvalidClass::MissingFile) {
            // The key's last component is the file name inside `dir`.
            let name = key.rsplit('/').next().unwrap_or(&key);
            let path = dir.join(name);
            std::fs::write(&path, buf.as_bytes())
                .map_err(|source| DemoError::Io { path, source })?;
            stats.files += 1;
            stats.bytes_items += buf.len() as u64;
        }
        rows.push(Row {
            key,
            size: buf.len() as u64,
            invalid: bad,
        });
    }
    rows.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    Ok(GroupOut { rows, stats })
}

/// Generates a batch of groups on `threads` threads; outputs in group order.
fn run_batch(
    seed: u64,
    bucket: &str,
    items_total: u64,
    items_dir: &Path,
    groups: &[Group],
    threads: usize,
) -> Result<Vec<GroupOut>, DemoError> {
    if threads <= 1 || groups.len() <= 1 {
        return groups
            .iter()
            .map(|g| run_group(seed, bucket, items_total, items_dir, g))
            .collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, Result<GroupOut, DemoError>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.min(groups.len()))
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(g) = groups.get(i) else { break };
                        mine.push((i, run_group(seed, bucket, items_total, items_dir, g)));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// last_modified_date of inventory row `row` of `rows`: increasing, jittered
/// within the row's slot of [2016-01-01, 2026-01-01).
#[derive(Debug, Clone, Copy)]
struct Clock {
    seed: u64,
    rows: u64,
}

impl Clock {
    const START_MS: i64 = days_from_civil(2016, 1, 1) * MILLIS_PER_DAY;
    const END_MS: i64 = days_from_civil(2026, 1, 1) * MILLIS_PER_DAY;

    fn at(&self, row: u64) -> i64 {
        let span = i128::from(Self::END_MS - Self::START_MS);
        let rows = i128::from(self.rows.max(1));
        let lo = (span * i128::from(row) / rows) as i64;
        let hi = (span * (i128::from(row) + 1) / rows) as i64;
        let jitter = Rng::stream(self.seed ^ 0x1a57_0d1f, row).below((hi - lo).max(1) as u64);
        Self::START_MS + lo + jitter as i64
    }

    /// Midnight of the day of the first row of the last tenth.
    fn since_cutoff_ms(&self) -> i64 {
        let row = self.rows - self.rows.div_ceil(10);
        self.at(row).div_euclid(MILLIS_PER_DAY) * MILLIS_PER_DAY
    }
}

/// Creates `out` or clears what an earlier run wrote there; refuses a
/// non-empty folder that is not ours.
fn prepare_out(out: &Path) -> Result<(), DemoError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DemoError::Io { path, source }
    };
    if out.exists() {
        if !out.is_dir() {
            return Err(DemoError::Options(format!(
                "{} exists and is not a folder",
                out.display()
            )));
        }
        let non_empty = std::fs::read_dir(out).map_err(io(out))?.next().is_some();
        if non_empty {
            if !out.join(MARKER_FILE).is_file() {
                return Err(DemoError::Options(format!(
                    "{} is not empty and was not written by demo-data; give a new or empty folder",
                    out.display()
                )));
            }
            for sub in ["items", "inventory"] {
                let p = out.join(sub);
                if p.exists() {
                    std::fs::remove_dir_all(&p).map_err(io(&p))?;
                }
            }
            let meta = out.join("meta.json");
            if meta.exists() {
                std::fs::remove_file(&meta).map_err(io(&meta))?;
            }
        }
    }
    std::fs::create_dir_all(out).map_err(io(out))?;
    let marker = out.join(MARKER_FILE);
    std::fs::write(&marker, MARKER_TEXT).map_err(io(&marker))
}

fn check_options(opts: &DemoOptions) -> Result<(), DemoError> {
    if opts.items == 0 {
        return Err(DemoError::Options("--items must be at least 1".into()));
    }
    if opts.items + opts.invalid as u64 > 9_999_999 {
        // Ids carry a 7-digit sequence number.
        return Err(DemoError::Options(
            "at most 9,999,999 items (valid + invalid)".into(),
        ));
    }
    let b = &opts.bucket;
    let ok = (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.');
    if !ok {
        return Err(DemoError::Options(format!(
            "bucket '{b}' is not a valid S3 bucket name (3–63 of a-z 0-9 . -)"
        )));
    }
    Ok(())
}

/// Writes the demo data set described by `opts` (layout in the module docs of
/// [`super`]) and returns what was written. Same options → same bytes.
pub fn generate(opts: &DemoOptions) -> Result<DemoSummary, DemoError> {
    let started = Instant::now();
    check_options(opts)?;
    prepare_out(&opts.out)?;
    let invalid = opts.invalid as u64;
    let groups = plan(opts.seed, opts.items, invalid);
    let clock = Clock {
        seed: opts.seed,
        rows: opts.items + invalid,
    };
    let mut stats = Stats::default();
    // Bad rows with their shuffle keys.
    let mut invalid_rows = Vec::new();
    let (inventory, since_rows, since_items) = std::thread::scope(|s| {
        // The inventory writer (CSV, gzip, Parquet) runs beside the item workers.
        let (tx, rx) = sync_channel::<Vec<Row>>(2);
        let writer = s.spawn(|| write_inventory(rx, opts, &clock));
        let produced = write_items(opts, &groups, &tx, &mut stats, &mut invalid_rows);
        drop(tx);
        let written = writer
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        produced.and(written)
    })?;
    let mut meta = describe(opts, &stats, &clock, &inventory, groups.len() as u64);
    meta.rows_at_or_after_since = since_rows;
    meta.items_at_or_after_since = since_items;
    meta.invalid = in_inventory_order(invalid_rows, opts.order);
    let meta_path = opts.out.join("meta.json");
    let text =
        serde_json::to_string_pretty(&meta).map_err(|e| DemoError::Options(e.to_string()))?;
    std::fs::write(&meta_path, text.as_bytes()).map_err(|source| DemoError::Io {
        path: meta_path,
        source,
    })?;
    let inventory_bytes: u64 = inventory.files.iter().map(|f| f.size).sum();
    Ok(DemoSummary {
        out: opts.out.clone(),
        files: stats.files + inventory.files.len() as u64 + 2,
        bytes: stats.bytes_items + inventory_bytes + (text.len() + MARKER_TEXT.len()) as u64,
        seconds: started.elapsed().as_secs_f64(),
        meta,
    })
}

/// Writes the items, a batch of groups at a time on `opts.threads` workers,
/// and hands each batch's inventory rows to the writer; notes the bad rows.
fn write_items(
    opts: &DemoOptions,
    groups: &[Group],
    tx: &std::sync::mpsc::SyncSender<Vec<Row>>,
    stats: &mut Stats,
    invalid_rows: &mut Vec<((u64, u64), InvalidItem)>,
) -> Result<(), DemoError> {
    let items_dir = opts.out.join("items");
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    // `row` counts rows in key order.
    let mut row = 0u64;
    let mut start = 0;
    while start < groups.len() {
        let mut end = start;
        let mut n = 0;
        while end < groups.len() && n < BATCH_ITEMS {
            n += groups[end].count;
            end += 1;
        }
        let outs = run_batch(
            opts.seed,
            &opts.bucket,
            opts.items,
            &items_dir,
            &groups[start..end],
            threads,
        )?;
        let mut rows = Vec::with_capacity(n as usize);
        for o in outs {
            stats.merge(&o.stats);
            for r in o.rows {
                if let Some(class) = r.invalid {
                    let item = InvalidItem {
                        key: r.key.clone(),
                        class,
                    };
                    invalid_rows.push((shuffle_key(opts.seed, row), item));
                }
                rows.push(r);
                row += 1;
            }
        }
        // A send error means the writer stopped; its own error is reported by the caller.
        if tx.send(rows).is_err() {
            break;
        }
        start = end;
    }
    Ok(())
}

/// Writes the inventory from the rows received, in time or shuffled order;
/// returns its files and the rows and items at or after the `--since` cutoff.
fn write_inventory(
    rx: std::sync::mpsc::Receiver<Vec<Row>>,
    opts: &DemoOptions,
    clock: &Clock,
) -> Result<(InventoryFiles, u64, u64), DemoError> {
    let cutoff_ms = clock.since_cutoff_ms();
    let mut inv = InventoryWriter::create(
        &opts.out.join("inventory"),
        &opts.bucket,
        clock.rows,
        opts.parts,
    )?;
    let (mut row, mut since_rows, mut since_items) = (0u64, 0u64, 0u64);
    // A shuffle needs every row first (about 150 bytes each).
    let mut held = Vec::new();
    for batch in rx {
        for r in batch {
            let ms = clock.at(row);
            if ms >= cutoff_ms {
                since_rows += 1;
                since_items += u64::from(r.invalid.is_none());
            }
            match opts.order {
                InventoryOrder::Time => inv.push(&r.key, r.size, ms)?,
                InventoryOrder::Shuffled => {
                    held.push((shuffle_key(opts.seed, row), r.key, r.size, ms));
                }
            }
            row += 1;
        }
    }
    held.sort_unstable_by_key(|h| h.0);
    for (_, key, size, ms) in held {
        inv.push(&key, size, ms)?;
    }
    Ok((inv.finish(Clock::END_MS)?, since_rows, since_items))
}

/// `meta.json` from what was written (the `--since` counts and the bad rows
/// are filled in by the caller).
fn describe(
    opts: &DemoOptions,
    stats: &Stats,
    clock: &Clock,
    inventory: &InventoryFiles,
    tiles: u64,
) -> DemoMeta {
    let cutoff_ms = clock.since_cutoff_ms();
    DemoMeta {
        generator: "ecops demo-data".to_string(),
        seed: opts.seed,
        bucket: opts.bucket.clone(),
        collection: COLLECTION.to_string(),
        order: opts.order,
        items: stats.items,
        inventory_rows: clock.rows,
        bytes_items: stats.bytes_items,
        polar: stats.polar,
        pole_covering: stats.pole_covering,
        antimeridian_split: stats.antimeridian_split,
        antimeridian_jump: stats.antimeridian_jump,
        no_geometry: stats.no_geometry,
        years: stats
            .years
            .iter()
            .map(|(y, n)| (y.to_string(), *n))
            .collect(),
        platforms: stats
            .platforms
            .iter()
            .map(|(p, n)| (p.to_string(), *n))
            .collect(),
        tiles,
        first_last_modified: millis_string(clock.at(0)),
        last_last_modified: millis_string(clock.at(clock.rows - 1)),
        since_cutoff: date_of_millis(cutoff_ms),
        rows_at_or_after_since: 0,
        items_at_or_after_since: 0,
        parts: inventory.parts,
        inventory_files: inventory.files.clone(),
        invalid: Vec::new(),
    }
}

/// The bad rows in the order the inventory lists them.
fn in_inventory_order(
    mut rows: Vec<((u64, u64), InvalidItem)>,
    order: InventoryOrder,
) -> Vec<InvalidItem> {
    if order == InventoryOrder::Shuffled {
        rows.sort_unstable_by_key(|r| r.0);
    }
    rows.into_iter().map(|r| r.1).collect()
}

fn millis_string(ms: i64) -> String {
    let mut s = String::new();
    super::time::write_millis(&mut s, ms);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stac::item::{ItemError, parse_item};
    use geo::{BoundingRect, Validation};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use serde_json::Value;
    use std::collections::BTreeSet;

    fn opts(dir: &Path, items: u64) -> DemoOptions {
        DemoOptions {
            invalid: 6,
            parts: 3,
            ..DemoOptions::new(items, dir)
        }
    }

    /// Every file under `root` (relative path → bytes).
    fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let rel = path.strip_prefix(root).unwrap().to_path_buf();
                    out.insert(rel, std::fs::read(&path).unwrap());
                }
            }
        }
        out
    }

    /// (key, size, last_modified) rows of inventory.csv.
    fn csv_rows(dir: &Path) -> Vec<(String, u64, String)> {
        std::fs::read_to_string(dir.join("inventory/inventory.csv"))
            .unwrap()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(',').map(|f| f.trim_matches('"')).collect();
                assert_eq!(f.len(), 4, "{l}");
                assert_eq!(f[0], DEFAULT_BUCKET);
                (f[1].to_string(), f[2].parse().unwrap(), f[3].to_string())
            })
            .collect()
    }

    #[test]
    fn same_seed_same_bytes_whatever_the_threads() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            tmp.path().join("a"),
            tmp.path().join("b"),
            tmp.path().join("c"),
        );
        generate(&DemoOptions {
            threads: 1,
            ..opts(&a, 1500)
        })
        .unwrap();
        generate(&DemoOptions {
            threads: 3,
            ..opts(&b, 1500)
        })
        .unwrap();
        let (sa, sb) = (snapshot(&a), snapshot(&b));
        assert_eq!(
            sa.len(),
            1500 + 5 + 6 + 2 * 3 + 2,
            "items, invalid files, inventory, parts, meta+marker"
        );
        assert!(sa == sb, "two runs with seed 42 differ");
        generate(&DemoOptions {
            seed: 43,
            ..opts(&c, 1500)
        })
        .unwrap();
        let sc = snapshot(&c);
        let inv = PathBuf::from("inventory/inventory.csv");
        assert_ne!(sa[&inv], sc[&inv], "another seed gives other data");
    }

    #[test]
    fn every_item_parses_and_meta_matches_the_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("demo");
        let summary = generate(&opts(&dir, 3000)).unwrap();
        let meta: Value =
            serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
        let rows = csv_rows(&dir);
        assert_eq!(rows.len() as u64, meta["inventory_rows"].as_u64().unwrap());
        assert_eq!(rows.len(), 3006);

        let invalid: BTreeMap<String, String> = meta["invalid"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["key"].as_str().unwrap().to_string(),
                    v["class"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(invalid.len(), 6);
        let classes: BTreeSet<&str> = invalid.values().map(String::as_str).collect();
        assert_eq!(classes.len(), 6, "one of each class: {classes:?}");

        let (mut polar, mut pole, mut split, mut jump, mut none) = (0, 0, 0, 0, 0);
        let mut years: BTreeMap<String, u64> = BTreeMap::new();
        let mut ids = BTreeSet::new();
        let mut bytes = 0;
        for (key, size, _) in &rows {
            let path = dir.join("items").join(key);
            if let Some(class) = invalid.get(key) {
                let body = std::fs::read(&path);
                let result = body.as_ref().map(|b| parse_item(b));
                match class.as_str() {
                    "missing_file" => assert!(body.is_err(), "{key} exists"),
                    "not_json" => assert!(matches!(result, Ok(Err(ItemError::NotJson(_))))),
                    "missing_id" => assert!(matches!(result, Ok(Err(ItemError::BadId)))),
                    "bad_datetime" => {
                        assert!(matches!(result, Ok(Err(ItemError::BadDatetime { .. }))))
                    }
                    "bbox_mismatch" => {
                        assert!(matches!(result, Ok(Err(ItemError::BboxMismatch { .. }))))
                    }
                    // Rejected as invalid geometry (or, by a parser without a
                    // validity check, parsed as an invalid polygon).
                    "self_intersecting" => match result {
                        Ok(Err(ItemError::Geometry(_))) => {}
                        Ok(Ok(item)) => assert!(!item.geometry.unwrap().is_valid(), "{key}"),
                        other => panic!("{key}: {other:?}"),
                    },
                    other => panic!("unknown class {other}"),
                }
                if class != "missing_file" {
                    bytes += size;
                }
                continue;
            }
            let body = std::fs::read(&path).unwrap();
            assert_eq!(body.len() as u64, *size, "{key}: size");
            bytes += size;
            let item = parse_item(&body).unwrap_or_else(|e| panic!("{key}: {e}"));
            assert!(key.ends_with(&format!("/{}.stac.json", item.id)));
            assert!(ids.insert(item.id.clone()), "duplicate id {}", item.id);
            *years
                .entry(item.partition_year().unwrap().to_string())
                .or_default() += 1;
            let raw: Value = serde_json::from_slice(&body).unwrap();
            let Some(geometry) = &item.geometry else {
                assert!(raw["geometry"].is_null());
                none += 1;
                continue;
            };
            assert!(geometry.is_valid(), "{key}: invalid geometry");
            let bbox: Vec<f64> = raw["bbox"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let rect = geometry.bounding_rect().unwrap();
            assert_eq!(
                (rect.min().y, rect.max().y),
                (bbox[1], bbox[3]),
                "{key}: lat bounds"
            );
            if bbox[0] > bbox[2] {
                match raw["geometry"]["type"].as_str().unwrap() {
                    "MultiPolygon" => split += 1,
                    "Polygon" => jump += 1,
                    t => panic!("{t}"),
                }
            } else {
                assert_eq!(
                    (rect.min().x, rect.max().x),
                    (bbox[0], bbox[2]),
                    "{key}: tight bbox"
                );
                if bbox[0] == -180.0 && bbox[2] == 180.0 && (bbox[1] == -90.0 || bbox[3] == 90.0) {
                    pole += 1;
                }
            }
            if bbox[1] < -75.0 || bbox[3] > 75.0 {
                polar += 1;
            }
            // The scene is 100–200 km: its centre lies inside the bbox's latitude range.
            let lat = raw["properties"]["latitude"].as_f64().unwrap();
            assert!(lat >= bbox[1] - 0.01 && lat <= bbox[3] + 0.01, "{key}");
            assert!(
                raw["assets"]["data"]["href"]
                    .as_str()
                    .unwrap()
                    .starts_with("s3://")
            );
            assert!(
                raw["assets"]["thumbnail"]["href"]
                    .as_str()
                    .unwrap()
                    .starts_with("https://")
            );
        }
        assert_eq!(ids.len(), 3000);
        let m = &summary.meta;
        assert_eq!(meta["items"], 3000);
        assert_eq!(
            (
                m.polar,
                m.pole_covering,
                m.antimeridian_split,
                m.antimeridian_jump,
                m.no_geometry
            ),
            (polar, pole, split, jump, none)
        );
        assert_eq!(m.years, years);
        assert_eq!(m.bytes_items, bytes);
        assert_eq!(none, 3, "1 in 1000 without geometry");
        assert!(
            polar >= 30 && pole >= 3 && split >= 10 && jump >= 3,
            "{m:?}"
        );
        assert!(years.len() >= 10, "years 2015–2025: {years:?}");
        assert!(years.keys().all(|y| ("2015".."2026").contains(&y.as_str())));
        assert_eq!(m.platforms.len(), 6);
    }

    #[test]
    fn inventory_is_key_ordered_spatially_grouped_and_dated() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("demo");
        let summary = generate(&opts(&dir, 2000)).unwrap();
        let rows = csv_rows(&dir);
        assert!(
            rows.windows(2).all(|w| w[0].0 < w[1].0),
            "keys sorted, unique"
        );
        // Each (platform, tile) prefix is one contiguous run of a few dozen rows.
        let prefixes: Vec<&str> = rows
            .iter()
            .map(|r| &r.0[..r.0.rfind('/').unwrap()])
            .collect();
        let runs = 1 + prefixes.windows(2).filter(|w| w[0] != w[1]).count();
        let distinct: BTreeSet<&&str> = prefixes.iter().collect();
        assert_eq!(runs, distinct.len());
        assert_eq!(runs as u64, summary.meta.tiles);
        assert!((20..=120).contains(&runs), "{runs} tiles for 2000 items");
        // last_modified_date: increasing; since_cutoff keeps about the last 10%.
        assert!(rows.windows(2).all(|w| w[0].2 <= w[1].2));
        let cutoff = format!("{}T00:00:00.000Z", summary.meta.since_cutoff);
        let after: Vec<bool> = rows.iter().map(|r| r.2 >= cutoff).collect();
        let n_after = after.iter().filter(|a| **a).count() as u64;
        assert_eq!(n_after, summary.meta.rows_at_or_after_since);
        assert!((190..=260).contains(&n_after), "{n_after}");
        assert!(after.windows(2).all(|w| w[0] <= w[1]), "a suffix");

        // Parquet (whole and parts) holds exactly the CSV rows.
        let read = |path: PathBuf| {
            let file = std::fs::File::open(&path).unwrap();
            let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
            let mut out = Vec::new();
            for batch in reader.build().unwrap() {
                let b = batch.unwrap();
                let keys = arrow_array::cast::AsArray::as_string::<i32>(b.column(1));
                let sizes = arrow_array::cast::AsArray::as_primitive::<arrow_array::types::Int64Type>(
                    b.column(2),
                );
                let ts = arrow_array::cast::AsArray::as_primitive::<
                    arrow_array::types::TimestampMillisecondType,
                >(b.column(3));
                for i in 0..b.num_rows() {
                    let mut s = String::new();
                    super::super::time::write_millis(&mut s, ts.value(i));
                    out.push((keys.value(i).to_string(), sizes.value(i) as u64, s));
                }
            }
            out
        };
        assert_eq!(read(dir.join("inventory/inventory.parquet")), rows);
        let manifest: Value = serde_json::from_slice(
            &std::fs::read(dir.join("inventory/manifest-parquet.json")).unwrap(),
        )
        .unwrap();
        let parts: Vec<_> = manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| read(dir.join("inventory").join(f["key"].as_str().unwrap())))
            .collect();
        assert_eq!(parts, rows);
    }

    #[test]
    fn a_shuffled_inventory_lists_the_same_rows_in_a_seeded_order() {
        let tmp = tempfile::tempdir().unwrap();
        let (time_dir, a, b) = (
            tmp.path().join("time"),
            tmp.path().join("a"),
            tmp.path().join("b"),
        );
        let shuffled = |dir: &Path| DemoOptions {
            order: InventoryOrder::Shuffled,
            ..opts(dir, 2000)
        };
        let time = generate(&opts(&time_dir, 2000)).unwrap().meta;
        let meta = generate(&shuffled(&a)).unwrap().meta;
        generate(&shuffled(&b)).unwrap();
        let (time_rows, rows) = (csv_rows(&time_dir), csv_rows(&a));
        assert_eq!(rows, csv_rows(&b), "the same seed, the same order");
        assert_ne!(rows, time_rows);
        // Not merely rotated or reversed: prefixes no longer form runs.
        let prefix_changes = rows
            .windows(2)
            .filter(|w| {
                w[0].0[..w[0].0.rfind('/').unwrap()] != w[1].0[..w[1].0.rfind('/').unwrap()]
            })
            .count();
        assert!(
            prefix_changes > 1500,
            "{prefix_changes} prefix changes in 2006 rows"
        );
        // The same rows, each with its own size and date.
        let sorted = |mut r: Vec<(String, u64, String)>| {
            r.sort();
            r
        };
        assert_eq!(sorted(rows.clone()), sorted(time_rows));
        assert_eq!(meta.order, InventoryOrder::Shuffled);
        assert_eq!(meta.rows_at_or_after_since, time.rows_at_or_after_since);
        // Bad rows are listed in the order the inventory has them.
        let position = |key: &str| rows.iter().position(|r| r.0 == key).unwrap();
        let positions: Vec<usize> = meta.invalid.iter().map(|i| position(&i.key)).collect();
        assert_eq!(positions.len(), 6);
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
        let mut classes: Vec<_> = meta.invalid.iter().map(|i| i.class as u8).collect();
        classes.sort_unstable();
        assert_eq!(classes, vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn refuses_a_foreign_folder_and_replaces_its_own() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("precious.txt"), "keep").unwrap();
        let err = generate(&DemoOptions::new(10, tmp.path())).unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
        assert!(tmp.path().join("precious.txt").is_file());

        let dir = tmp.path().join("demo");
        generate(&DemoOptions::new(300, &dir)).unwrap();
        let again = generate(&DemoOptions::new(40, &dir)).unwrap();
        let files = snapshot(&dir.join("items")).len() as u64;
        assert_eq!(files, again.meta.items, "no stale items left");
        assert!(generate(&DemoOptions::new(0, tmp.path().join("x"))).is_err());
        let bad_bucket = DemoOptions {
            bucket: "Bad_Bucket".into(),
            ..DemoOptions::new(1, tmp.path().join("y"))
        };
        assert!(generate(&bad_bucket).is_err());
    }

    #[test]
    fn plan_spreads_items_exactly_and_scales_to_all_tiles() {
        for (n, k) in [(1u64, 0u64), (7, 6), (1000, 6), (1_000_000, 12)] {
            let groups = plan(42, n, k);
            assert_eq!(groups.iter().map(|g| g.count).sum::<u64>(), n);
            assert_eq!(
                groups.iter().map(|g| g.invalid.len() as u64).sum::<u64>(),
                k
            );
            let keys: Vec<(usize, &String)> =
                groups.iter().map(|g| (g.platform, &g.label)).collect();
            assert!(keys.windows(2).all(|w| w[0] < w[1]), "key order");
            let mut seq = 0;
            for g in &groups {
                assert_eq!(g.first_seq, seq);
                seq += g.count;
            }
            if n >= 1000 {
                let has = |dir: &str, label: &str| {
                    groups
                        .iter()
                        .any(|g| PLATFORMS[g.platform].dir == dir && g.label == label)
                };
                assert!(FORCED_GROUPS.iter().all(|(d, l)| has(d, l)));
            }
        }
        let big = plan(42, 1_000_000, 0);
        assert_eq!(big.len(), 6 * 648);
        let (lo, hi) = big.iter().fold((u64::MAX, 0), |(lo, hi), g| {
            (lo.min(g.count), hi.max(g.count))
        });
        assert!(lo >= 100 && hi <= 500, "{lo}..{hi} items per tile");
    }
}
