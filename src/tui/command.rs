//! The `:` command line: text to a [`Command`]. Parsing only; the app
//! carries commands out ([`super::app::App::run_command`]).

use std::time::Duration;

use crate::jobs::IngestSpec;

/// A parsed command-line command.
#[derive(Debug, Clone)]
pub enum Command {
    Quit,
    Help,
    Refresh,
    Ingest(Box<IngestSpec>),
    /// A compaction plan (dry run) with this threshold.
    Compact {
        threshold: Option<usize>,
    },
    /// Fill the query form (geometry, datetime, filter, limit) and run it.
    Query([Option<String>; 4]),
    Steal,
    Acquire(Duration),
    Release,
    /// Show the History view.
    History,
    /// Plan expire-snapshots (older than, retain last).
    Expire(Duration, usize),
    /// Plan remove-orphans (older than).
    Orphans(Duration),
    /// Write the current view's table to a file.
    Export {
        format: crate::tui::export::ExportFormat,
        path: Option<String>,
    },
    Backfill(BackfillCommand),
}

/// `:backfill …`: start one, or retry / commit a run (None: the one
/// selected in the Backfill view).
#[derive(Debug, Clone, PartialEq)]
pub enum BackfillCommand {
    Start(Box<crate::jobs::BackfillSpec>),
    Retry(Option<String>),
    Commit(Option<String>),
}

/// The commands, for the error on an unknown one.
const KNOWN: &str =
    "ingest, backfill, compact, query, steal, acquire, release, history, export, refresh, q";

impl Command {
    /// Parses a command line (without the `:`); None for an empty line.
    pub fn parse(text: &str) -> Result<Option<Command>, String> {
        let text = text.trim();
        let (word, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let rest = rest.trim();
        Ok(Some(match word {
            "" => return Ok(None),
            "q" | "quit" | "exit" => Command::Quit,
            "help" => Command::Help,
            "refresh" => Command::Refresh,
            "ingest" => Command::Ingest(Box::new(parse_ingest(rest)?)),
            "compact" => Command::Compact {
                threshold: parse_threshold(rest)?,
            },
            "query" => Command::Query(parse_query_args(rest)?),
            "steal" => Command::Steal,
            "acquire" => Command::Acquire(match rest {
                "" => super::views::lock::ACQUIRE_TTL,
                t => crate::fmt::parse_duration(t).map_err(|e| format!("acquire: {e}"))?,
            }),
            "release" => Command::Release,
            "history" => Command::History,
            "expire" => parse_expire(rest)?,
            "orphans" | "remove-orphans" => Command::Orphans(match rest {
                "" => crate::compact::maintenance::orphans::DEFAULT_ORPHAN_AGE,
                t => crate::fmt::parse_duration(t.trim_start_matches("--older-than").trim())
                    .map_err(|e| format!("orphans: {e}"))?,
            }),
            "export" => parse_export(rest)?,
            "backfill" => Command::Backfill(parse_backfill(rest)?),
            other => return Err(format!("unknown command '{other}' (try {KNOWN})")),
        }))
    }

    /// What the command is called in a read-only refusal, if it writes.
    pub fn writes(&self) -> Option<&'static str> {
        match self {
            Command::Ingest(_) => Some("ingest"),
            Command::Compact { .. } => Some("compaction"),
            Command::Steal => Some("steal"),
            Command::Acquire(_) => Some("acquire"),
            Command::Release => Some("release"),
            Command::Expire(..) => Some("expire-snapshots"),
            Command::Orphans(_) => Some("remove-orphans"),
            Command::Backfill(_) => Some("backfill"),
            _ => None,
        }
    }
}

/// Default age of `:expire`.
pub const DEFAULT_EXPIRE_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// `[--older-than] AGE [--retain-last N]`.
fn parse_expire(args: &str) -> Result<Command, String> {
    let (mut age, mut retain) = (DEFAULT_EXPIRE_AGE, 1usize);
    let mut words = args.split_whitespace();
    while let Some(w) = words.next() {
        match w {
            "--older-than" => {}
            "--retain-last" => {
                retain = words
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("expire: --retain-last takes a number")?
            }
            t => age = crate::fmt::parse_duration(t).map_err(|e| format!("expire: {e}"))?,
        }
    }
    Ok(Command::Expire(age, retain))
}

/// `md|csv [PATH]`.
fn parse_export(args: &str) -> Result<Command, String> {
    let (format, path) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
    let format =
        crate::tui::export::ExportFormat::parse(format).ok_or("usage: export md|csv [PATH]")?;
    let path = Some(path.trim().to_string()).filter(|p| !p.is_empty());
    Ok(Command::Export { format, path })
}

/// `[--threshold] N` or nothing.
fn parse_threshold(args: &str) -> Result<Option<usize>, String> {
    match args {
        "" => Ok(None),
        t => t
            .trim_start_matches("--threshold")
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("compact: '{t}' is not --threshold N")),
    }
}

/// `PATH [ITEMS_ROOT] [--items-root URL] [--job NAME] [--chunk-size N] [--concurrency N]`,
/// or `--urls LISTS [--url-column NAME]` instead of PATH:
/// the same request `ecops ingest` makes (unset options take the same defaults).
pub fn parse_ingest(args: &str) -> Result<IngestSpec, String> {
    let mut words = args.split_whitespace();
    let mut params = crate::ingest::IngestParams::default();
    let number = |name: &str, v: String| {
        v.parse::<usize>()
            .map_err(|_| format!("ingest: {name} takes a number"))
    };
    while let Some(w) = words.next() {
        let mut value = |name: &str| {
            words
                .next()
                .map(str::to_string)
                .ok_or_else(|| format!("ingest: {name} needs a value"))
        };
        match w {
            "--items-root" => params.items_root = Some(value(w)?),
            "--urls" => params.urls = Some(value(w)?),
            "--url-column" => params.url_column = Some(value(w)?),
            "--job" => params.job = Some(value(w)?),
            "--chunk-size" => params.chunk_size = Some(number(w, value(w)?)?),
            "--concurrency" => params.concurrency = Some(number(w, value(w)?)?),
            flag if flag.starts_with("--") => return Err(format!("ingest: unknown option {flag}")),
            path if params.inventory.is_none() && params.urls.is_none() => {
                params.inventory = Some(path.to_string())
            }
            path if params.items_root.is_none() => params.items_root = Some(path.to_string()),
            extra => return Err(format!("ingest: unexpected '{extra}'")),
        }
    }
    if params.inventory.is_none() && params.urls.is_none() {
        return Err(
            "usage: ingest INVENTORY|--urls LISTS [--items-root URL] [--job NAME] [--chunk-size N]"
                .into(),
        );
    }
    // The engine's builder checks the rest (job name, numbers) as the CLI's does.
    params
        .build(&Default::default())
        .map_err(|e| format!("ingest: {e}"))?;
    Ok(IngestSpec::new(params))
}

/// How to write `:backfill`.
const BACKFILL_USAGE: &str = "usage: backfill INVENTORY [--items-root URL] [--tasks N] [--engine local|slurm|k8s|batch] [--chunk-size N] [--mode full|delta] · backfill retry [RUN] · backfill commit [RUN]";

/// `retry [RUN]`, `commit [RUN]`, or `INVENTORY [ITEMS_ROOT] [--items-root URL]
/// [--since D] [--chunk-size N] [--concurrency N] [--tasks N] [--partitions N]
/// [--mode full|delta] [--engine E] [--max-parallel M] [--target-file-size-mb N]
/// [--workdir DIR]`:
/// the options and defaults of `ecops backfill submit`.
pub fn parse_backfill(args: &str) -> Result<BackfillCommand, String> {
    // `--run RUN` as the CLI writes it, or just RUN.
    let words: Vec<&str> = args.split_whitespace().filter(|w| *w != "--run").collect();
    let run = |rest: &[&str]| match rest {
        [] => Ok(None),
        [run] => Ok(Some(run.to_string())),
        [_, extra, ..] => Err(format!("backfill: unexpected '{extra}'")),
    };
    match words.as_slice() {
        ["retry", rest @ ..] => run(rest).map(BackfillCommand::Retry),
        ["commit", rest @ ..] => run(rest).map(BackfillCommand::Commit),
        _ => parse_backfill_start(args).map(|spec| BackfillCommand::Start(Box::new(spec))),
    }
}

fn parse_backfill_start(args: &str) -> Result<crate::jobs::BackfillSpec, String> {
    use crate::backfill::plan::{DEFAULT_TARGET_FILE_SIZE_MB, DEFAULT_TASKS};
    use crate::ingest::{DEFAULT_CHUNK_SIZE, DEFAULT_CONCURRENCY, Mode};
    let mut params = crate::ingest::IngestParams {
        suffix: Some(crate::ingest::params::DEFAULT_SUFFIX.to_string()),
        chunk_size: Some(DEFAULT_CHUNK_SIZE),
        concurrency: Some(DEFAULT_CONCURRENCY),
        mode: Some(Mode::Delta),
        ..Default::default()
    };
    let (mut tasks, mut partitions, mut target_mb) =
        (DEFAULT_TASKS, None, DEFAULT_TARGET_FILE_SIZE_MB);
    let (mut engine, mut max_parallel) = (crate::backfill::schedulers::Engine::Local, 4u32);
    let mut workdir = None;
    let mut words = args.split_whitespace();
    while let Some(w) = words.next() {
        let mut value = |name: &str| {
            words
                .next()
                .map(str::to_string)
                .ok_or_else(|| format!("backfill: {name} needs a value"))
        };
        let number = |name: &str, v: String| {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("backfill: {name} takes a positive number"))
        };
        match w {
            "--items-root" => params.items_root = Some(value(w)?),
            "--since" => params.since = Some(value(w)?),
            "--chunk-size" => params.chunk_size = Some(number(w, value(w)?)?),
            "--concurrency" => params.concurrency = Some(number(w, value(w)?)?),
            "--tasks" => tasks = number(w, value(w)?)? as u32,
            "--partitions" => partitions = Some(number(w, value(w)?)? as u32),
            "--max-parallel" => max_parallel = number(w, value(w)?)? as u32,
            "--target-file-size-mb" => target_mb = number(w, value(w)?)?,
            "--workdir" => workdir = Some(std::path::PathBuf::from(value(w)?)),
            "--mode" => {
                params.mode = Some(match value(w)?.as_str() {
                    "full" => Mode::Full,
                    "delta" => Mode::Delta,
                    other => return Err(format!("backfill: --mode full or delta, not '{other}'")),
                })
            }
            "--engine" => {
                let name = value(w)?;
                engine = crate::backfill::schedulers::Engine::parse(&name).ok_or_else(|| {
                    format!("backfill: unknown engine '{name}' (local, slurm, k8s, batch)")
                })?
            }
            flag if flag.starts_with("--") => {
                return Err(format!("backfill: unknown option {flag}"));
            }
            path if params.inventory.is_none() => params.inventory = Some(path.to_string()),
            path if params.items_root.is_none() => params.items_root = Some(path.to_string()),
            extra => return Err(format!("backfill: unexpected '{extra}'")),
        }
    }
    if params.inventory.is_none() {
        return Err(BACKFILL_USAGE.into());
    }
    // The engine's builder checks the rest as the CLI's plan does.
    params
        .build(&Default::default())
        .map_err(|e| format!("backfill: {e}"))?;
    Ok(crate::jobs::BackfillSpec {
        plan: crate::backfill::PlanOptions {
            params,
            tasks,
            partitions: partitions.unwrap_or(tasks),
            target_file_size: target_mb * 1024 * 1024,
        },
        engine,
        max_parallel,
        workdir,
    })
}

/// `key=value …` for `:query`: geometry (also bbox, point, g), datetime (dt,
/// d), filter (f), limit (n). A value runs up to the next `key=`.
pub fn parse_query_args(args: &str) -> Result<[Option<String>; 4], String> {
    let mut fields: [Option<String>; 4] = Default::default();
    let mut current: Option<usize> = None;
    for word in args.split_whitespace() {
        let field = word.split_once('=').and_then(|(k, v)| {
            let i = match k {
                "geometry" | "geom" | "g" | "bbox" | "point" | "wkt" => 0,
                "datetime" | "dt" | "d" => 1,
                "filter" | "f" | "where" => 2,
                "limit" | "n" => 3,
                _ => return None,
            };
            Some((i, v))
        });
        match (field, current) {
            (Some((i, v)), _) => {
                fields[i] = Some(v.to_string());
                current = Some(i);
            }
            (None, Some(i)) => {
                let f = fields[i].get_or_insert_with(String::new);
                if !f.is_empty() {
                    f.push(' ');
                }
                f.push_str(word);
            }
            (None, None) => {
                return Err(format!(
                    "query: '{word}' is not key=value (geometry=, datetime=, filter=, limit=)"
                ));
            }
        }
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_args_run_to_the_next_key() {
        let f = parse_query_args("bbox=-10,40,10,60 filter=platform = 'S2A' limit=5").unwrap();
        assert_eq!(f[0].as_deref(), Some("-10,40,10,60"));
        assert_eq!(f[2].as_deref(), Some("platform = 'S2A'"));
        assert_eq!(f[3].as_deref(), Some("5"));
        assert!(f[1].is_none());
        assert!(parse_query_args("oops").is_err());
    }

    #[test]
    fn backfill_args_take_the_submit_options_or_retry_and_commit() {
        let BackfillCommand::Start(spec) = parse_backfill(
            "/inv.csv --items-root http://h --tasks 3 --engine slurm --chunk-size 50",
        )
        .unwrap() else {
            panic!("a start")
        };
        assert_eq!(spec.plan.params.inventory.as_deref(), Some("/inv.csv"));
        assert_eq!(spec.plan.params.items_root.as_deref(), Some("http://h"));
        assert_eq!((spec.plan.tasks, spec.plan.partitions), (3, 3));
        assert_eq!(spec.plan.params.chunk_size, Some(50));
        assert_eq!(spec.engine, crate::backfill::schedulers::Engine::Slurm);
        assert_eq!(
            parse_backfill("retry").unwrap(),
            BackfillCommand::Retry(None)
        );
        assert_eq!(
            parse_backfill("commit --run r1").unwrap(),
            BackfillCommand::Commit(Some("r1".into()))
        );
        assert!(parse_backfill("").is_err());
        assert!(parse_backfill("retry a b").is_err());
        assert!(parse_backfill("/inv.csv --engine moon").is_err());
        assert!(parse_backfill("/inv.csv --tasks 0").is_err());
    }

    #[test]
    fn ingest_args_take_path_root_and_flags() {
        let s =
            parse_ingest("/inv.csv --items-root http://h --job nightly --chunk-size 50").unwrap();
        assert_eq!(s.params.items_root.as_deref(), Some("http://h"));
        assert_eq!(s.params.job.as_deref(), Some("nightly"));
        assert_eq!(s.params.chunk_size, Some(50));
        assert!(parse_ingest("").is_err());
        assert!(parse_ingest("/inv.csv --job a/b").is_err());
        assert!(parse_ingest("/inv.csv --bogus 1").is_err());
    }
}
