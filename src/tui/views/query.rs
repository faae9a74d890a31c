//! Query: the form (geometry, datetime, filter, limit), edited in
//! [`Modal::QueryEdit`]; Enter runs it in the background; the results.

use super::{Effects, move_selection};
use crate::jobs::{JobId, QueryOutcome, QueryRequest, Request};
use crate::runs::JobError;
use crate::tui::keymap::Action;
use crate::tui::modal::Modal;

pub const COMMANDS: &[Action] = &[
    Action::Up,
    Action::Down,
    Action::PageUp,
    Action::PageDown,
    Action::First,
    Action::Last,
    Action::EditField,
    Action::RunQuery,
    Action::PlainResults,
    Action::CopyUri,
];

/// Where the form's query is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryRun {
    Idle,
    /// Requested; the jobs have not answered with its job id yet.
    Queued,
    Running(JobId),
}

/// The query form and its results.
#[derive(Debug, Clone)]
pub struct QueryView {
    /// Geometry, datetime, filter, limit — as typed.
    pub fields: [String; 4],
    pub focus: usize,
    pub run: QueryRun,
    pub submitted: Option<QueryRequest>,
    pub result: Option<Result<QueryOutcome, JobError>>,
    pub selected: usize,
    /// Results full-screen without borders, for copying.
    pub plain: bool,
}

impl Default for QueryView {
    fn default() -> Self {
        Self {
            fields: [String::new(), String::new(), String::new(), "20".into()],
            focus: 0,
            run: QueryRun::Idle,
            submitted: None,
            result: None,
            selected: 0,
            plain: false,
        }
    }
}

impl QueryView {
    pub const LABELS: [&'static str; 4] = ["Geometry", "Datetime", "Filter", "Limit"];
    pub const PLACEHOLDERS: [&'static str; 4] = [
        "point lon,lat · bbox w,s,e,n · GeoJSON · WKT (empty: everywhere)",
        "start/end, either side may be .. (empty: any time)",
        "e.g. platform = 'S2A' and percent_valid_pixels >= 80",
        "max items",
    ];

    /// The request the form describes, or why it cannot run.
    pub fn request(&self) -> Result<QueryRequest, String> {
        let limit = match self.fields[3].trim() {
            "" => 100,
            t => t
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("limit '{t}' is not a positive number"))?,
        };
        Ok(QueryRequest {
            geometry: self.fields[0].trim().to_string(),
            datetime: self.fields[1].trim().to_string(),
            filter: self.fields[2].trim().to_string(),
            limit,
        })
    }

    /// Rows of the current result.
    pub fn result_rows(&self) -> usize {
        self.result
            .as_ref()
            .and_then(|r| r.as_ref().ok())
            .map_or(0, |o| o.rows.len())
    }

    pub fn act(&mut self, action: Action, fx: &mut Effects) {
        let rows = self.result_rows();
        if move_selection(&mut self.selected, rows, action) {
            return;
        }
        match action {
            Action::EditField => fx.open(Modal::QueryEdit),
            Action::RunQuery => self.submit(fx),
            Action::PlainResults => self.plain = !self.plain,
            _ => {}
        }
    }

    /// Sends the form's query to the background.
    pub fn submit(&mut self, fx: &mut Effects) {
        match self.request() {
            Ok(request) => {
                self.submitted = Some(request.clone());
                self.run = QueryRun::Queued;
                self.result = None;
                fx.request(Request::Query(request));
                fx.say("query running…");
            }
            Err(e) => fx.error(e),
        }
    }

    /// The background took the queued query as job `id`.
    pub fn started(&mut self, id: Option<JobId>) {
        if self.run == QueryRun::Queued {
            self.run = id.map_or(QueryRun::Idle, QueryRun::Running);
        }
    }

    /// The query job `id` ended; true if it was the form's.
    pub fn finished(&mut self, id: JobId, result: Result<QueryOutcome, JobError>) -> bool {
        if self.run != QueryRun::Running(id) {
            return false;
        }
        self.run = QueryRun::Idle;
        self.result = Some(result);
        self.selected = 0;
        true
    }

    /// Applies an input key to the focused field (while editing).
    pub fn edit(&mut self, action: Option<Action>, key: &crossterm::event::KeyEvent) {
        match action {
            Some(Action::FieldUp) => self.focus = (self.focus + 3) % 4,
            Some(Action::FieldDown) => self.focus = (self.focus + 1) % 4,
            _ => crate::tui::modal::edit_text(&mut self.fields[self.focus], action, key),
        }
    }
}
