//! Getting things out of the console: the current view's selection (for
//! `Y`, copied through OSC 52) and its table (for `:export md|csv`).

use super::app::App;
use super::views::View;
use crate::fmt::TextTable;
use crate::lock::{LockState, holder_identity};

/// What `Y` copies in the current view: (what it is, the text).
pub fn selection(app: &App) -> Option<(&'static str, String)> {
    let (data, views) = (&app.data, &app.views);
    match app.view {
        View::Overview | View::Jobs => {
            if let Some(crate::tui::model::JobRow::External(r)) = views.jobs.selected_row(data) {
                return Some(("the run id", r.id.clone()));
            }
            let job = views.jobs.selected_job(data)?;
            let command = data
                .history
                .iter()
                .rev()
                .find(|e| e.job == Some(job.id))
                .and_then(|e| e.commands.first());
            Some(match command {
                Some((_, c)) => ("the job's equivalent command", c.clone()),
                None => ("the job's label", job.label.clone()),
            })
        }
        View::Partitions => {
            let rows = views.partitions.visible_rows(data);
            let p = rows.get(views.partitions.selected)?;
            let year = p.year.map_or("null".into(), |y| y.to_string());
            Some(("the partition", format!("{} {year}", p.cell)))
        }
        View::Cells => {
            let stats = data.stats.as_ref()?;
            let c = stats.stats.top_cells.get(views.cells.selected)?;
            Some(("the cell", c.cell.clone()))
        }
        View::Lock => match &data.lock.watched.as_deref()?.state {
            LockState::Held { record, .. } => Some(("the lock holder", holder_identity(record))),
            other => Some(("the lock state", other.describe())),
        },
        View::Query => {
            let o = views.query.result.as_ref()?.as_ref().ok()?;
            let row = o.rows.get(views.query.selected)?;
            Some(("the result id", row.id.clone()))
        }
        View::History => {
            let lines = data.history_lines();
            let (_, tool, command) = lines.get(views.history.selected)?;
            Some((
                if *tool == "ecops" {
                    "the ecops command"
                } else {
                    "the one-liner"
                },
                command.to_string(),
            ))
        }
        View::Backfill => {
            let s = views.backfill.selected_run(data)?;
            Some(("the backfill run id", s.run.clone()))
        }
        View::Logs => None,
    }
}

/// The selected query result's asset URI (`U`).
pub fn selected_uri(app: &App) -> Option<String> {
    let q = &app.views.query;
    let o = q.result.as_ref()?.as_ref().ok()?;
    o.rows.get(q.selected).map(|r| r.href.clone())
}

/// The current view's table and a name for its file.
pub fn table(app: &App) -> Option<(&'static str, TextTable)> {
    let data = &app.data;
    match app.view {
        View::Partitions => Some((
            "partitions",
            crate::fmt::partitions_table(app.views.partitions.visible_rows(data)),
        )),
        View::Cells => Some((
            "top-cells",
            crate::fmt::top_cells_table(&data.stats.as_ref()?.stats.top_cells),
        )),
        View::Query => {
            let o = app.views.query.result.as_ref()?.as_ref().ok()?;
            let mut t = TextTable::new(&["id", "datetime", "platform", "cell", "href"]);
            for r in &o.rows {
                t.push(vec![
                    r.id.clone(),
                    r.datetime.clone(),
                    r.platform.clone(),
                    r.cell.clone(),
                    r.href.clone(),
                ]);
            }
            Some(("query", t))
        }
        View::Overview | View::Jobs => {
            let snapshot = data.runs.snapshot.as_ref()?;
            let mut t = TextTable::new(&[
                "run", "kind", "state", "started", "host", "pid", "items", "rows", "failed",
                "items/s",
            ]);
            for r in &snapshot.runs {
                t.push(vec![
                    r.id.clone(),
                    r.kind.label().into(),
                    r.state.label().into(),
                    r.started.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    r.host.clone(),
                    r.pid.to_string(),
                    r.items.to_string(),
                    r.rows.to_string(),
                    r.failed.to_string(),
                    format!("{:.1}", r.items_per_second),
                ]);
            }
            Some(("runs", t))
        }
        View::History => {
            let mut t = TextTable::new(&["at", "what", "tool", "command"]);
            for (e, tool, c) in data.history_lines() {
                t.push(vec![
                    e.at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    e.what.clone(),
                    tool.to_string(),
                    c.to_string(),
                ]);
            }
            Some(("history", t))
        }
        View::Backfill => Some(("backfills", crate::fmt::backfills_table(&data.backfills))),
        _ => None,
    }
}

/// Markdown or CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Markdown,
    Csv,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "md" | "markdown" => Some(ExportFormat::Markdown),
            "csv" => Some(ExportFormat::Csv),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Markdown => "md",
            ExportFormat::Csv => "csv",
        }
    }

    pub fn render(self, t: &TextTable) -> String {
        match self {
            ExportFormat::Markdown => t.markdown(),
            ExportFormat::Csv => t.csv(),
        }
    }
}
