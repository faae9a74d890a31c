//! Equivalent commands: for each request the console hands to its jobs,
//! the headless `ecops …` command with the same effect (and, for queries,
//! PyIceberg and DuckDB one-liners), logged in the History view and
//! copyable with `Y`. Built from the request itself, so they say what the
//! console actually ran (its concurrency, mode and chunk size included).

use chrono::{DateTime, Utc};

use crate::ingest::Mode;
use crate::jobs::{
    BackfillRequest, CompactRequest, IngestSpec, LockCommand, MaintenanceRequest, QueryRequest,
    Request,
};

/// One console action and its equivalents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Equivalent {
    pub at: DateTime<Utc>,
    /// The job the action started, when it started one.
    pub job: Option<crate::jobs::JobId>,
    /// What the console did, in words.
    pub what: String,
    /// (tool, command line), the `ecops` one first.
    pub commands: Vec<(&'static str, String)>,
}

/// What the equivalents need besides the request.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The catalog base.
    pub base: &'a str,
    /// The lock generation the console holds (for a release).
    pub held_generation: Option<u64>,
}

/// The equivalents of `request`; None for requests that only read what
/// the console shows (dead letters, stats, a pause) or have none.
pub fn of(request: &Request, cx: &Context) -> Option<Equivalent> {
    let ecops = format!("ecops --base {}", quote(cx.base));
    let (what, commands) = match request {
        Request::Ingest(spec) => ingest(spec, &ecops)?,
        Request::Compact(req) => compact(req, &ecops),
        Request::Query(q) => query(q, &ecops, cx.base),
        Request::RunControl { run, request } => (
            format!("asked run {run} to {}", request.label()),
            vec![(
                "ecops",
                format!("{ecops} runs {} {}", request.label(), quote(run)),
            )],
        ),
        Request::Lock(cmd) => lock(cmd, &ecops, cx)?,
        Request::Maintenance(m) => maintenance(m, &ecops),
        Request::Backfill(b) => backfill(b, &ecops),
        Request::Cancel { .. }
        | Request::DeadLetters { .. }
        | Request::RunDeadLetters { .. }
        | Request::RefreshStats => {
            return None;
        }
    };
    Some(Equivalent {
        at: Utc::now(),
        job: None,
        what,
        commands,
    })
}

type Lines = (String, Vec<(&'static str, String)>);

fn ingest(spec: &IngestSpec, ecops: &str) -> Option<Lines> {
    // The console and the CLI build options with the same builder from the
    // same parameters: the flags given are the parameters set.
    let p = &spec.params;
    let mut cmd = format!("{ecops} ingest");
    let mut flag = |name: &str, value: Option<String>| {
        if let Some(v) = value {
            cmd.push_str(&format!(" --{name} {}", quote(&v)));
        }
    };
    flag("inventory", p.inventory.clone());
    flag("urls", p.urls.clone());
    flag("url-column", p.url_column.clone());
    flag("items-root", p.items_root.clone());
    flag("since", p.since.clone());
    flag("suffix", p.suffix.clone());
    flag("limit", p.limit.map(|n| n.to_string()));
    flag("chunk-size", p.chunk_size.map(|n| n.to_string()));
    flag("concurrency", p.concurrency.map(|n| n.to_string()));
    flag("timeout", p.timeout_seconds.map(|n| n.to_string()));
    flag("attempts", p.attempts.map(|n| n.to_string()));
    flag(
        "mode",
        p.mode.map(|m| {
            match m {
                Mode::Full => "full",
                Mode::Delta => "delta",
                Mode::Auto => "auto",
            }
            .to_string()
        }),
    );
    flag("job", p.job.clone());
    if p.retry_dead_letters {
        cmd.push_str(" --retry-dead-letters");
    }
    let what = match spec.resume_id {
        Some(id) => format!("resumed ingest job {id} ({})", spec.label),
        None => format!("ingest of {}", spec.label),
    };
    Some((what, vec![("ecops", cmd)]))
}

fn backfill(req: &BackfillRequest, ecops: &str) -> Lines {
    match req {
        BackfillRequest::Start(spec) => {
            let (plan, p) = (&spec.plan, &spec.plan.params);
            let mut cmd = format!("{ecops} backfill submit");
            if let Some(inv) = &p.inventory {
                cmd.push_str(&format!(" --inventory {}", quote(inv)));
            }
            if let Some(root) = &p.items_root {
                cmd.push_str(&format!(" --items-root {}", quote(root)));
            }
            if let Some(since) = &p.since {
                cmd.push_str(&format!(" --since {}", quote(since)));
            }
            if let Some(n) = p.chunk_size {
                cmd.push_str(&format!(" --chunk-size {n}"));
            }
            if let Some(n) = p.concurrency {
                cmd.push_str(&format!(" --concurrency {n}"));
            }
            let mode = if p.mode == Some(Mode::Full) {
                "full"
            } else {
                "delta"
            };
            cmd.push_str(&format!(
                " --mode {mode} --tasks {} --partitions {} --target-file-size-mb {} --engine {} --max-parallel {}",
                plan.tasks,
                plan.partitions,
                plan.target_file_size / (1024 * 1024),
                spec.engine.label(),
                spec.max_parallel
            ));
            if let Some(dir) = &spec.workdir {
                cmd.push_str(&format!(" --workdir {}", quote(&dir.to_string_lossy())));
            }
            ("backfill".into(), vec![("ecops", cmd)])
        }
        BackfillRequest::Retry { run } => (
            format!("retry of backfill {run}"),
            vec![(
                "ecops",
                format!("{ecops} backfill retry --run {}", quote(run)),
            )],
        ),
        BackfillRequest::Commit { run } => (
            format!("commit of backfill {run}"),
            vec![(
                "ecops",
                format!("{ecops} backfill commit --run {}", quote(run)),
            )],
        ),
    }
}

fn compact(req: &CompactRequest, ecops: &str) -> Lines {
    let mut cmd = format!("{ecops} compact");
    if let Some(t) = req.threshold {
        cmd.push_str(&format!(" --threshold {t}"));
    }
    if req.dry_run {
        cmd.push_str(" --dry-run");
    }
    let what = if req.dry_run {
        "compaction plan (dry run)"
    } else {
        "compaction"
    };
    (what.into(), vec![("ecops", cmd)])
}

fn maintenance(m: &MaintenanceRequest, ecops: &str) -> Lines {
    let age = |d: &std::time::Duration| format!("{}s", d.as_secs());
    let mut cmd = match m {
        MaintenanceRequest::Expire {
            older_than,
            retain_last,
            ..
        } => format!(
            "{ecops} expire-snapshots --older-than {} --retain-last {retain_last}",
            age(older_than)
        ),
        MaintenanceRequest::Orphans { older_than, .. } => {
            format!("{ecops} remove-orphans --older-than {}", age(older_than))
        }
    };
    if m.dry_run() {
        cmd.push_str(" --dry-run");
    }
    (m.label(), vec![("ecops", cmd)])
}

fn lock(cmd: &LockCommand, ecops: &str, cx: &Context) -> Option<Lines> {
    let owner = crate::jobs::lock::console_owner(&crate::ingest::LockSettings::default());
    Some(match cmd {
        LockCommand::Acquire { ttl } => (
            format!(
                "acquired the lock for {}",
                crate::fmt::format_age(ttl.as_secs_f64())
            ),
            vec![(
                "ecops",
                format!(
                    "{ecops} lock acquire --owner {} --ttl {}s",
                    quote(&owner),
                    ttl.as_secs()
                ),
            )],
        ),
        LockCommand::Release => (
            "released the console's lock".into(),
            vec![(
                "ecops",
                format!(
                    "{ecops} lock release --generation {}",
                    cx.held_generation
                        .map_or("GENERATION".into(), |g| g.to_string())
                ),
            )],
        ),
        LockCommand::Steal { .. } => (
            "stole the stale lock".into(),
            vec![(
                "ecops",
                format!(
                    "{ecops} lock steal --yes --owner {} --ttl {}s",
                    quote(&owner),
                    crate::ingest::LockSettings::default().ttl.as_secs()
                ),
            )],
        ),
        LockCommand::Poll | LockCommand::Shutdown(_) => return None,
    })
}

fn query(q: &QueryRequest, ecops: &str, base: &str) -> Lines {
    let mut cmd = format!("{ecops} query");
    if let Some((flag, value)) = crate::jobs::query::geometry_flag(&q.geometry) {
        cmd.push_str(&format!(" --{flag} {}", quote(&value)));
    }
    if !q.datetime.trim().is_empty() {
        cmd.push_str(&format!(" --datetime {}", quote(q.datetime.trim())));
    }
    if !q.filter.trim().is_empty() {
        cmd.push_str(&format!(" --filter {}", quote(q.filter.trim())));
    }
    cmd.push_str(&format!(" --limit {}", q.limit));
    let mut commands = vec![("ecops", cmd)];
    if let Some(hit) = python_hit(&q.geometry) {
        commands.push(("PyIceberg", pyiceberg(q, base, &hit)));
        commands.push(("DuckDB", duckdb(q, base, &hit)));
    }
    (format!("query {}", q.summary()), commands)
}

/// Python that defines `hit(wkb) -> bool`, the engine's exact geometry test
/// ([`crate::grid::planar`]) in shapely: footprints (and drawn query shapes)
/// are unwrapped so an edge spanning more than 180° of longitude goes the
/// short way across ±180, a bbox with `west > east` is one box to east + 360,
/// and shapes intersect when a copy shifted by −360, 0 or 360° does. Rings
/// winding round a pole are where the two can differ. `hit` is true for
/// every row when the query has no geometry; None for a geometry the
/// one-liner cannot restate (`@file`).
fn python_hit(geometry: &str) -> Option<String> {
    // Ring by ring, as the engine does (one ring's end must not shift the next).
    const UNWRAP: &str = "r = lambda c: np.column_stack([np.unwrap(c[:, 0], period=360), c[:, 1]]); \
        p = lambda g: shapely.Polygon(r(np.asarray(g.exterior.coords)), [r(np.asarray(h.coords)) for h in g.interiors]); \
        u = lambda g: p(g) if g.geom_type == 'Polygon' else shapely.MultiPolygon([p(x) for x in g.geoms]) if g.geom_type == 'MultiPolygon' \
        else shapely.transform(g, r) if 'LineString' in g.geom_type else g";
    let shape = match crate::jobs::query::geometry_flag(geometry) {
        None => return Some("hit = lambda w: True".into()),
        Some(("point", t)) => format!("shapely.Point({t})"),
        Some(("bbox", t)) => {
            let v: Vec<f64> = t
                .split(',')
                .map(|x| x.trim().parse().ok())
                .collect::<Option<_>>()?;
            let [w, s, e, n] = v[..] else { return None };
            format!(
                "shapely.box({w}, {s}, {}, {n})",
                if w > e { e + 360.0 } else { e }
            )
        }
        Some((_, t)) if t.starts_with('{') => format!("u(shapely.from_geojson({t:?}))"),
        Some((_, t)) if !t.starts_with('@') => format!("u(shapely.from_wkt({t:?}))"),
        Some(_) => return None,
    };
    Some(format!(
        "import shapely, numpy as np; from shapely import affinity; {UNWRAP}; \
         Q = [affinity.translate({shape}, k) for k in (-360, 0, 360)]; \
         hit = lambda w: w is not None and any(x.intersects(g) for g in [u(shapely.from_wkb(w))] for x in Q)"
    ))
}

/// SQL-ish conditions of the datetime and filter (shared by both one-liners).
fn conditions(q: &QueryRequest) -> Vec<String> {
    let mut out = vec![];
    let dt = q.datetime.trim();
    if !dt.is_empty() {
        let (a, b) = dt.split_once('/').unwrap_or((dt, dt));
        if !a.is_empty() && a != ".." {
            out.push(format!("datetime >= '{a}'"));
        }
        if !b.is_empty() && b != ".." {
            out.push(format!("datetime <= '{b}'"));
        }
    }
    if !q.filter.trim().is_empty() {
        out.push(q.filter.trim().to_string());
    }
    out
}

/// PyIceberg scans the current snapshot with the datetime and property
/// filter; `hit` tests the geometry.
fn pyiceberg(q: &QueryRequest, base: &str, hit: &str) -> String {
    let base = base.trim_end_matches('/');
    let filter = conditions(q).join(" and ");
    let row_filter = if filter.is_empty() {
        String::new()
    } else {
        format!("row_filter={filter:?}, ")
    };
    let script = format!(
        "from pyiceberg.catalog.sql import SqlCatalog; {hit}; \
         t = SqlCatalog('earthcatalog', uri='sqlite:///{base}/earthcatalog.db', warehouse='file://{base}/warehouse').load_table('earthcatalog.stac_items'); \
         a = t.scan({row_filter}selected_fields=('id', 'geometry')).to_arrow(); \
         ids = sorted({{i for i, w in zip(a.column('id').to_pylist(), a.column('geometry').to_pylist()) if hit(w)}}); \
         print(chr(10).join(ids[:{limit}]))",
        limit = q.limit
    );
    format!("python3 -c {}", quote(&script))
}

/// DuckDB (its Python package) reads the warehouse's Parquet files with the
/// same conditions in SQL and `hit` as a function.
fn duckdb(q: &QueryRequest, base: &str, hit: &str) -> String {
    let base = base.trim_end_matches('/');
    let mut cond = conditions(q);
    if !q.geometry.trim().is_empty() {
        cond.insert(0, "hit(geometry)".into());
    }
    let where_ = if cond.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", cond.join(" AND "))
    };
    let sql = format!(
        "SELECT DISTINCT id FROM read_parquet('{base}/warehouse/grid_partition=*/**/*.parquet', union_by_name=true){where_} ORDER BY id LIMIT {}",
        q.limit
    );
    // 'special' null handling: `hit` sees a missing geometry (and says no).
    let script = format!(
        "import duckdb; {hit}; c = duckdb.connect(); \
         c.create_function('hit', hit, ['BLOB'], 'BOOLEAN', null_handling='special'); \
         print(chr(10).join(r[0] for r in c.sql({sql:?}).fetchall()))"
    );
    format!("python3 -c {}", quote(&script))
}

/// `s` as one POSIX shell word.
pub fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_plain_words_and_wraps_the_rest() {
        assert_eq!(quote("/a/b.csv"), "/a/b.csv");
        assert_eq!(quote("platform = 'S2A'"), "'platform = '\\''S2A'\\'''");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn backfills_are_backfill_submit_retry_and_commit() {
        let cx = Context {
            base: "/c",
            held_generation: None,
        };
        let crate::tui::command::BackfillCommand::Start(spec) =
            crate::tui::command::parse_backfill(
                "/inv.csv --items-root /it --tasks 2 --engine slurm",
            )
            .unwrap()
        else {
            panic!("a start")
        };
        let e = of(&Request::Backfill(BackfillRequest::Start(spec)), &cx).unwrap();
        assert_eq!(
            e.commands[0].1,
            "ecops --base /c backfill submit --inventory /inv.csv --items-root /it \
             --chunk-size 20000 --concurrency 64 --mode delta --tasks 2 --partitions 2 \
             --target-file-size-mb 128 --engine slurm --max-parallel 4"
        );
        let retry = BackfillRequest::Retry { run: "r1".into() };
        let e = of(&Request::Backfill(retry), &cx).unwrap();
        assert_eq!(e.commands[0].1, "ecops --base /c backfill retry --run r1");
        let commit = BackfillRequest::Commit { run: "r1".into() };
        let e = of(&Request::Backfill(commit), &cx).unwrap();
        assert_eq!(e.commands[0].1, "ecops --base /c backfill commit --run r1");
    }

    #[test]
    fn a_compaction_plan_is_compact_dry_run() {
        let req = Request::Compact(CompactRequest {
            dry_run: true,
            threshold: Some(3),
        });
        let cx = Context {
            base: "/c",
            held_generation: None,
        };
        let e = of(&req, &cx).unwrap();
        assert_eq!(
            e.commands,
            vec![(
                "ecops",
                "ecops --base /c compact --threshold 3 --dry-run".to_string()
            )]
        );
    }
}
