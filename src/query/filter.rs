//! `--filter`: comparisons on table columns joined by `and`, parsed into
//! typed conditions (never pasted into SQL) and evaluated row by row on
//! Arrow batches.
//!
//! ```text
//! filter    := condition ("and" condition)*
//! condition := column op literal
//!            | column ["not"] "in" "(" literal ("," literal)* ")"
//!            | column "is" ["not"] "null"
//! op        := = | != | <> | < | <= | > | >=
//! column    := a table column (letters, digits, _ and :), or "quoted"
//! literal   := 'text' ('' for a quote) | number | 'RFC 3339 datetime' (datetime columns)
//! ```
//! Keywords are case-insensitive. Comparing with a null value is false (SQL).

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use iceberg::spec::PrimitiveType;

use super::model::ParseError;
use crate::catalog::schema::COLUMNS;

const FIELD: &str = "--filter";

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A typed literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    /// Microseconds since the epoch (datetime columns).
    Time(i64),
}

/// What a condition tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    Cmp(Op, Value),
    In(Vec<Value>),
    NotIn(Vec<Value>),
    IsNull,
    IsNotNull,
}

/// The type of a filterable column (canonical Arrow type in brackets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Utf8.
    Text,
    /// Int64.
    Long,
    /// Float64.
    Double,
    /// Timestamp(µs, UTC).
    Time,
}

/// One condition on one column.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub column: &'static str,
    pub kind: ColumnKind,
    pub test: Test,
}

/// Conditions joined by `and`; empty = everything matches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub conditions: Vec<Condition>,
}

/// The filterable kind of a table column (None for the geometry).
pub fn column_kind(name: &str) -> Option<(&'static str, ColumnKind)> {
    COLUMNS
        .iter()
        .find(|(_, n, _)| *n == name)
        .and_then(|(_, n, ty)| {
            let kind = match ty {
                PrimitiveType::String => ColumnKind::Text,
                PrimitiveType::Long | PrimitiveType::Int => ColumnKind::Long,
                PrimitiveType::Double | PrimitiveType::Float => ColumnKind::Double,
                PrimitiveType::Timestamptz | PrimitiveType::Timestamp => ColumnKind::Time,
                _ => return None,
            };
            Some((*n, kind))
        })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Str(String),
    Num(String),
    Op(Op),
    LParen,
    RParen,
    Comma,
    End,
}

fn lex(text: &str) -> Result<Vec<(usize, Tok)>, ParseError> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let err = |at: usize, m: &str| ParseError::new(FIELD, text, at, m);
    while i < b.len() {
        let c = b[i];
        let start = i;
        let tok = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => {
                i += 1;
                Tok::LParen
            }
            b')' => {
                i += 1;
                Tok::RParen
            }
            b',' => {
                i += 1;
                Tok::Comma
            }
            b'=' => {
                i += 1;
                Tok::Op(Op::Eq)
            }
            b'!' if b.get(i + 1) == Some(&b'=') => {
                i += 2;
                Tok::Op(Op::Ne)
            }
            b'<' | b'>' => {
                let next = b.get(i + 1).copied();
                let (op, n) = match (c, next) {
                    (b'<', Some(b'=')) => (Op::Le, 2),
                    (b'<', Some(b'>')) => (Op::Ne, 2),
                    (b'<', _) => (Op::Lt, 1),
                    (_, Some(b'=')) => (Op::Ge, 2),
                    _ => (Op::Gt, 1),
                };
                i += n;
                if matches!(b.get(i), Some(b'<' | b'>' | b'=' | b'!')) {
                    return Err(err(i, "unexpected operator character"));
                }
                Tok::Op(op)
            }
            b'\'' | b'"' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(rest) = text.get(i..) else {
                        return Err(err(start, "unterminated quote"));
                    };
                    let Some(k) = rest.find(quote as char) else {
                        return Err(err(start, "unterminated quote"));
                    };
                    s.push_str(&rest[..k]);
                    i += k + 1;
                    if b.get(i) == Some(&quote) {
                        s.push(quote as char);
                        i += 1;
                    } else {
                        break;
                    }
                }
                if quote == b'"' {
                    Tok::Quoted(s)
                } else {
                    Tok::Str(s)
                }
            }
            b'0'..=b'9' | b'-' | b'+' | b'.' => {
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'.' | b'-' | b'+'))
                {
                    // A sign is part of the number only at its start or after an exponent.
                    if matches!(b[i], b'-' | b'+') && i > start && !matches!(b[i - 1], b'e' | b'E')
                    {
                        break;
                    }
                    i += 1;
                }
                Tok::Num(text[start..i].to_string())
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b':')) {
                    i += 1;
                }
                Tok::Word(text[start..i].to_string())
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or('?');
                return Err(err(i, &format!("unexpected character '{ch}'")));
            }
        };
        out.push((start, tok));
    }
    out.push((text.len(), Tok::End));
    Ok(out)
}

struct Parser<'a> {
    text: &'a str,
    toks: Vec<(usize, Tok)>,
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &(usize, Tok) {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> (usize, Tok) {
        let t = self.peek().clone();
        self.i += 1;
        t
    }

    fn error(&self, at: usize, m: impl Into<String>) -> ParseError {
        ParseError::new(FIELD, self.text, at, m)
    }

    fn keyword(&mut self, kw: &str) -> bool {
        if matches!(&self.peek().1, Tok::Word(w) if w.eq_ignore_ascii_case(kw)) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn condition(&mut self) -> Result<Condition, ParseError> {
        let (at, tok) = self.next();
        let name = match tok {
            Tok::Word(w) | Tok::Quoted(w) => w,
            Tok::End => return Err(self.error(at, "expected a column name")),
            _ => return Err(self.error(at, "expected a column name")),
        };
        let Some((column, kind)) = column_kind(&name) else {
            let known: Vec<&str> = COLUMNS
                .iter()
                .filter(|(_, n, _)| column_kind(n).is_some())
                .map(|(_, n, _)| *n)
                .collect();
            let why = if name == "geometry" {
                "the geometry cannot be compared: use --point, --bbox or --intersects".to_string()
            } else {
                format!("unknown column '{name}' (columns: {})", known.join(", "))
            };
            return Err(self.error(at, why));
        };
        let (op_at, _) = self.peek().clone();
        let test = if self.keyword("is") {
            let not = self.keyword("not");
            let (n_at, _) = self.peek().clone();
            if !self.keyword("null") {
                return Err(self.error(n_at, "expected NULL after IS"));
            }
            if not { Test::IsNotNull } else { Test::IsNull }
        } else if self.keyword("not") {
            let (in_at, _) = self.peek().clone();
            if !self.keyword("in") {
                return Err(self.error(in_at, "expected IN after NOT"));
            }
            Test::NotIn(self.values(kind)?)
        } else if self.keyword("in") {
            Test::In(self.values(kind)?)
        } else {
            match self.next() {
                (_, Tok::Op(op)) => Test::Cmp(op, self.literal(kind)?),
                _ => {
                    return Err(self.error(
                        op_at,
                        "expected a comparison (=, !=, <, <=, >, >=, in, is null)",
                    ));
                }
            }
        };
        Ok(Condition { column, kind, test })
    }

    fn values(&mut self, kind: ColumnKind) -> Result<Vec<Value>, ParseError> {
        let (at, tok) = self.next();
        if tok != Tok::LParen {
            return Err(self.error(at, "expected '(' after IN"));
        }
        let mut out = vec![self.literal(kind)?];
        loop {
            match self.next() {
                (_, Tok::Comma) => out.push(self.literal(kind)?),
                (_, Tok::RParen) => return Ok(out),
                (at, _) => return Err(self.error(at, "expected ',' or ')'")),
            }
        }
    }

    fn literal(&mut self, kind: ColumnKind) -> Result<Value, ParseError> {
        let (at, tok) = self.next();
        match (kind, tok) {
            (ColumnKind::Text, Tok::Str(s)) => Ok(Value::Str(s)),
            (ColumnKind::Long | ColumnKind::Double, Tok::Num(n)) => {
                if let Ok(v) = n.parse::<i64>() {
                    Ok(Value::Int(v))
                } else {
                    n.parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite())
                        .map(Value::Float)
                        .ok_or_else(|| self.error(at, format!("'{n}' is not a number")))
                }
            }
            (ColumnKind::Time, Tok::Str(s)) => {
                // The datetime's own offsets are relative to the literal's text after the quote.
                super::parse::instant_in(FIELD, self.text, &s, at + 1)
                    .map(|t| Value::Time(t.timestamp_micros()))
            }
            (_, Tok::End) => Err(self.error(at, "expected a value")),
            (ColumnKind::Text, _) => {
                Err(self.error(at, "expected a quoted text value like 'LC08'"))
            }
            (ColumnKind::Long | ColumnKind::Double, _) => Err(self.error(at, "expected a number")),
            (ColumnKind::Time, _) => Err(self.error(
                at,
                "expected a quoted RFC 3339 datetime like '2020-01-01T00:00:00Z'",
            )),
        }
    }
}

impl Filter {
    /// Parses `text` (see the module doc for the grammar).
    pub fn parse(text: &str) -> Result<Filter, ParseError> {
        let mut p = Parser {
            text,
            toks: lex(text)?,
            i: 0,
        };
        let mut conditions = vec![p.condition()?];
        loop {
            let (at, tok) = p.peek().clone();
            match tok {
                Tok::End => break,
                Tok::Word(w) if w.eq_ignore_ascii_case("and") => {
                    p.i += 1;
                    conditions.push(p.condition()?);
                }
                Tok::Word(w) if w.eq_ignore_ascii_case("or") => {
                    return Err(p.error(at, "only 'and' can join conditions"));
                }
                _ => return Err(p.error(at, "expected 'and' or the end of the filter")),
            }
        }
        Ok(Filter { conditions })
    }

    /// True when there is nothing to test.
    pub fn is_empty(&self) -> bool {
        self.conditions.is_empty()
    }

    /// Columns the filter reads.
    pub fn columns(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.conditions.iter().map(|c| c.column)
    }

    /// Binds the filter to a batch whose columns have the canonical types of
    /// [`ColumnKind`] (a missing column reads as null).
    pub fn bind<'b>(&'b self, batch: &'b RecordBatch) -> BoundFilter<'b> {
        let columns = self
            .conditions
            .iter()
            .map(|c| {
                let col = batch.column_by_name(c.column);
                let data = match (c.kind, col) {
                    (ColumnKind::Text, Some(a)) => a.as_string_opt::<i32>().map(Col::Text),
                    (ColumnKind::Long, Some(a)) => a.as_primitive_opt::<Int64Type>().map(Col::Long),
                    (ColumnKind::Double, Some(a)) => {
                        a.as_primitive_opt::<Float64Type>().map(Col::Double)
                    }
                    (ColumnKind::Time, Some(a)) => a
                        .as_primitive_opt::<TimestampMicrosecondType>()
                        .map(Col::Time),
                    _ => None,
                };
                (data.unwrap_or(Col::Missing), &c.test)
            })
            .collect();
        BoundFilter { columns }
    }
}

enum Col<'b> {
    Text(&'b arrow_array::StringArray),
    Long(&'b arrow_array::Int64Array),
    Double(&'b arrow_array::Float64Array),
    Time(&'b arrow_array::TimestampMicrosecondArray),
    Missing,
}

/// A filter bound to one batch.
pub struct BoundFilter<'b> {
    columns: Vec<(Col<'b>, &'b Test)>,
}

/// A cell value for comparison.
enum Cell<'b> {
    Text(&'b str),
    Num(f64, Option<i64>),
}

fn cell<'b>(col: &Col<'b>, row: usize) -> Option<Cell<'b>> {
    match col {
        Col::Text(a) => a.is_valid(row).then(|| Cell::Text(a.value(row))),
        Col::Long(a) => a
            .is_valid(row)
            .then(|| Cell::Num(a.value(row) as f64, Some(a.value(row)))),
        Col::Double(a) => a.is_valid(row).then(|| Cell::Num(a.value(row), None)),
        Col::Time(a) => a
            .is_valid(row)
            .then(|| Cell::Num(a.value(row) as f64, Some(a.value(row)))),
        Col::Missing => None,
    }
}

fn compare(c: &Cell<'_>, v: &Value) -> Option<std::cmp::Ordering> {
    match (c, v) {
        (Cell::Text(s), Value::Str(t)) => Some((*s).cmp(t.as_str())),
        (Cell::Num(_, Some(i)), Value::Int(j) | Value::Time(j)) => Some(i.cmp(j)),
        (Cell::Num(x, _), Value::Int(j) | Value::Time(j)) => x.partial_cmp(&(*j as f64)),
        (Cell::Num(x, _), Value::Float(y)) => x.partial_cmp(y),
        _ => None,
    }
}

impl BoundFilter<'_> {
    /// True if every condition holds for `row`.
    pub fn matches(&self, row: usize) -> bool {
        use std::cmp::Ordering::*;
        self.columns.iter().all(|(col, test)| {
            let value = cell(col, row);
            match (test, value) {
                (Test::IsNull, v) => v.is_none(),
                (Test::IsNotNull, v) => v.is_some(),
                (_, None) => false,
                (Test::Cmp(op, lit), Some(v)) => compare(&v, lit).is_some_and(|o| match op {
                    Op::Eq => o == Equal,
                    Op::Ne => o != Equal,
                    Op::Lt => o == Less,
                    Op::Le => o != Greater,
                    Op::Gt => o == Greater,
                    Op::Ge => o != Less,
                }),
                (Test::In(list), Some(v)) => list.iter().any(|l| compare(&v, l) == Some(Equal)),
                (Test::NotIn(list), Some(v)) => list
                    .iter()
                    .all(|l| compare(&v, l).is_some_and(|o| o != Equal)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn parses_the_issue_example() {
        let f = Filter::parse("percent_valid_pixels >= 80 and platform = 'LC08'").unwrap();
        assert_eq!(f.conditions.len(), 2);
        assert_eq!(f.conditions[0].test, Test::Cmp(Op::Ge, Value::Int(80)));
        assert_eq!(
            f.conditions[1].test,
            Test::Cmp(Op::Eq, Value::Str("LC08".into()))
        );
        let f = Filter::parse(
            "platform IN ('L8', 'S2A') AND \"proj:code\" is not null and updated < '2020-01-01'",
        )
        .unwrap();
        assert_eq!(f.conditions.len(), 3);
        assert!(matches!(
            f.conditions[2].test,
            Test::Cmp(Op::Lt, Value::Time(_))
        ));
    }

    #[test]
    fn errors_point_at_the_offending_token() {
        let cases = [
            ("percent_valid_pixels >> 80", 22),
            ("platfrom = 'x'", 0),
            ("platform = 42", 11),
            ("platform = 'a' or id = 'b'", 15),
            ("percent_valid_pixels >= 8x0 and", 24),
            ("platform = 'unterminated", 11),
            ("created > '2020-02-30'", 16),
            ("id in ('a' 'b')", 11),
            ("platform is nul", 12),
            ("platform = 'a' and", 18),
            ("platform ; 'a'", 9),
        ];
        for (text, at) in cases {
            let e = Filter::parse(text).expect_err(text);
            assert_eq!(e.offset, at, "{text}: {e}");
        }
    }

    #[test]
    fn evaluates_with_sql_null_semantics() {
        use arrow_array::{Int64Array, StringArray};
        use arrow_schema::{DataType, Field, Schema};
        let schema = Arc::new(Schema::new(vec![
            Field::new("platform", DataType::Utf8, true),
            Field::new("percent_valid_pixels", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![Some("LC08"), Some("S2A"), None])),
                Arc::new(Int64Array::from(vec![Some(90), Some(95), Some(99)])),
            ],
        )
        .unwrap();
        let run = |t: &str| -> Vec<bool> {
            let f = Filter::parse(t).unwrap();
            let b = f.bind(&batch);
            (0..3).map(|r| b.matches(r)).collect()
        };
        assert_eq!(run("percent_valid_pixels >= 91"), [false, true, true]);
        assert_eq!(run("platform != 'LC08'"), [false, true, false]);
        assert_eq!(run("platform is null"), [false, false, true]);
        assert_eq!(
            run("platform not in ('S2A') and percent_valid_pixels > 1.5"),
            [true, false, false]
        );
        // A column the batch lacks reads as null.
        assert_eq!(run("collection is null"), [true, true, true]);
    }
}
