//! The rooms of the crate, enforced: the engine (catalog, store, grid, stac,
//! ingest, compact, lock, query, runs, backfill) knows nothing of the front
//! ends — no `crate::tui`, `crate::cli` or `crate::jobs`, no clap, ratatui,
//! crossterm, indicatif or tui-logger — and never prints: it reports through
//! return values, progress channels and `tracing`.

use std::path::{Path, PathBuf};

/// The engine's folders under `src/`.
const ENGINE: &[&str] = &[
    "catalog", "store", "grid", "stac", "ingest", "compact", "lock", "query", "runs", "backfill",
];

/// What an engine file must not say (outside comments).
const FORBIDDEN: &[&str] = &[
    "crate::tui",
    "crate::cli",
    "crate::jobs",
    "clap::",
    "use clap",
    "ratatui",
    "crossterm",
    "indicatif",
    "tui_logger",
    "println!",
    "print!",
    "eprintln!",
    "eprint!",
    "dbg!",
    "io::stdout",
    "io::stderr",
];

/// Every `(line number, pattern)` of `text` that breaks the rule; comment
/// lines (`//`, `///`, `//!`) are passed over.
fn violations(text: &str) -> Vec<(usize, &'static str)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        for pattern in FORBIDDEN {
            if line.contains(pattern) {
                found.push((n + 1, *pattern));
            }
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_checker_sees_what_it_forbids() {
    let bad = "use crate::tui::app::App;\n// println! in a comment is fine\n    eprintln!(\"x\");\n#[derive(clap::ValueEnum)]\n";
    let mut lines: Vec<usize> = violations(bad).into_iter().map(|(n, _)| n).collect();
    lines.dedup();
    assert_eq!(
        lines,
        vec![1, 3, 4],
        "the checker must flag front-end names and prints, and only outside comments"
    );
    assert!(violations("let x = 1; // plain code\n").is_empty());
}

#[test]
fn the_engine_knows_no_front_end_and_never_prints() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for room in ENGINE {
        rust_files(&src.join(room), &mut files);
    }
    assert!(
        files.len() >= 40,
        "expected the engine's files under src/, found {}",
        files.len()
    );
    let mut report = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read source file");
        for (line, pattern) in violations(&text) {
            let rel = file.strip_prefix(&src).unwrap_or(file);
            report.push(format!("src/{}:{line}: {pattern}", rel.display()));
        }
    }
    assert!(
        report.is_empty(),
        "the engine must not name a front end or print:\n{}",
        report.join("\n")
    );
}
