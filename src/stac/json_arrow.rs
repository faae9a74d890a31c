//! JSON values → Arrow arrays, with the type found from the values: what
//! stac-geoparquet needs for item properties, assets and links, whose shape
//! varies from item to item.
//!
//! [`Shape::observe`] merges every value seen into one shape (integers and
//! floats into float; objects field by field, in first-seen order; lists by
//! their elements); values that disagree (a string here, an object there)
//! make the shape [`Shape::Json`], kept as JSON text so nothing is lost.
//! Nulls and missing fields fit any shape.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, ListArray, StructArray};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{ArrowError, DataType, Field, Fields, TimeUnit};
use serde_json::Value;

/// The Arrow type a set of JSON values takes.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Only nulls seen so far (written as text).
    Unknown,
    Bool,
    Int,
    Float,
    Text,
    /// RFC 3339 text read as a UTC timestamp (µs); only where asked for.
    Time,
    List(Box<Shape>),
    /// Fields in first-seen order.
    Object(Vec<(String, Shape)>),
    /// Values that disagree: JSON text.
    Json,
}

impl Shape {
    /// Merges `value` into this shape.
    pub fn observe(&mut self, value: &Value) {
        let seen = match value {
            Value::Null => return,
            Value::Bool(_) => Shape::Bool,
            Value::Number(n) if n.is_i64() => Shape::Int,
            Value::Number(_) => Shape::Float,
            Value::String(_) => Shape::Text,
            Value::Array(items) => {
                let mut inner = match self {
                    Shape::List(inner) => std::mem::replace(inner.as_mut(), Shape::Unknown),
                    _ => Shape::Unknown,
                };
                items.iter().for_each(|v| inner.observe(v));
                Shape::List(Box::new(inner))
            }
            Value::Object(map) => {
                let mut fields = match self {
                    Shape::Object(f) => std::mem::take(f),
                    _ => Vec::new(),
                };
                for (k, v) in map {
                    match fields.iter_mut().find(|(name, _)| name == k) {
                        Some((_, shape)) => shape.observe(v),
                        None => {
                            let mut shape = Shape::Unknown;
                            shape.observe(v);
                            fields.push((k.clone(), shape));
                        }
                    }
                }
                Shape::Object(fields)
            }
        };
        *self = merge(std::mem::replace(self, Shape::Unknown), seen);
    }

    /// Merges a timestamp value: [`Shape::Time`] while every value parses, else text.
    pub fn observe_time(&mut self, value: &Value) {
        let seen = match value {
            Value::Null => return,
            Value::String(s) if parse_time(s).is_some() => Shape::Time,
            other => {
                let mut s = Shape::Unknown;
                s.observe(other);
                s
            }
        };
        *self = match (std::mem::replace(self, Shape::Unknown), seen) {
            (Shape::Unknown | Shape::Time, Shape::Time) => Shape::Time,
            (Shape::Time | Shape::Text, Shape::Text) | (Shape::Text, Shape::Time) => Shape::Text,
            (a, b) => merge(a, b),
        };
    }

    /// The Arrow type of this shape.
    pub fn data_type(&self) -> DataType {
        match self {
            Shape::Unknown | Shape::Text | Shape::Json => DataType::Utf8,
            Shape::Bool => DataType::Boolean,
            Shape::Int => DataType::Int64,
            Shape::Float => DataType::Float64,
            Shape::Time => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Shape::List(inner) => {
                DataType::List(Arc::new(Field::new("item", inner.data_type(), true)))
            }
            Shape::Object(fields) => DataType::Struct(struct_fields(fields)),
        }
    }

    /// The array of `values` (None: missing) in this shape.
    pub fn build(&self, values: &[Option<&Value>]) -> Result<ArrayRef, ArrowError> {
        fn present<'a>(v: &Option<&'a Value>) -> Option<&'a Value> {
            v.filter(|v| !v.is_null())
        }
        Ok(match self {
            Shape::Bool => {
                let mut b = BooleanBuilder::with_capacity(values.len());
                values
                    .iter()
                    .for_each(|v| b.append_option(present(v).and_then(Value::as_bool)));
                Arc::new(b.finish())
            }
            Shape::Int => {
                let mut b = Int64Builder::with_capacity(values.len());
                values
                    .iter()
                    .for_each(|v| b.append_option(present(v).and_then(Value::as_i64)));
                Arc::new(b.finish())
            }
            Shape::Float => {
                let mut b = Float64Builder::with_capacity(values.len());
                values
                    .iter()
                    .for_each(|v| b.append_option(present(v).and_then(Value::as_f64)));
                Arc::new(b.finish())
            }
            Shape::Time => {
                let mut b =
                    TimestampMicrosecondBuilder::with_capacity(values.len()).with_timezone("UTC");
                values.iter().for_each(|v| {
                    b.append_option(present(v).and_then(Value::as_str).and_then(parse_time))
                });
                Arc::new(b.finish())
            }
            Shape::Unknown | Shape::Text | Shape::Json => {
                let mut b = StringBuilder::with_capacity(values.len(), values.len() * 16);
                for v in values {
                    match present(v) {
                        None => b.append_null(),
                        Some(Value::String(s)) if *self != Shape::Json => b.append_value(s),
                        Some(other) => b.append_value(other.to_string()),
                    }
                }
                Arc::new(b.finish())
            }
            Shape::List(inner) => self.build_list(inner, values)?,
            Shape::Object(fields) => build_struct(fields, values)?,
        })
    }

    fn build_list(&self, inner: &Shape, values: &[Option<&Value>]) -> Result<ArrayRef, ArrowError> {
        let mut offsets = Vec::with_capacity(values.len() + 1);
        let mut children: Vec<Option<&Value>> = Vec::new();
        let mut valid = Vec::with_capacity(values.len());
        offsets.push(0i32);
        for v in values {
            let items = v.and_then(Value::as_array);
            valid.push(items.is_some());
            children.extend(items.into_iter().flatten().map(Some));
            let end = i32::try_from(children.len())
                .map_err(|_| ArrowError::ComputeError("list too long".into()))?;
            offsets.push(end);
        }
        let field = Arc::new(Field::new("item", inner.data_type(), true));
        Ok(Arc::new(ListArray::try_new(
            field,
            OffsetBuffer::new(offsets.into()),
            inner.build(&children)?,
            Some(NullBuffer::from(valid)),
        )?))
    }
}

fn merge(a: Shape, b: Shape) -> Shape {
    match (a, b) {
        (Shape::Unknown, x) | (x, Shape::Unknown) => x,
        (Shape::Int, Shape::Float) | (Shape::Float, Shape::Int) => Shape::Float,
        (a, b) if a == b => a,
        // Observing a list or object already merged its inner shape.
        (Shape::List(_), b @ Shape::List(_)) | (Shape::Object(_), b @ Shape::Object(_)) => b,
        _ => Shape::Json,
    }
}

fn struct_fields(fields: &[(String, Shape)]) -> Fields {
    fields
        .iter()
        .map(|(name, shape)| Field::new(name, shape.data_type(), true))
        .collect()
}

/// A struct array: each field built from the rows' member of that name.
fn build_struct(
    fields: &[(String, Shape)],
    values: &[Option<&Value>],
) -> Result<ArrayRef, ArrowError> {
    let children = fields
        .iter()
        .map(|(name, shape)| {
            let column: Vec<Option<&Value>> =
                values.iter().map(|v| v.and_then(|o| o.get(name))).collect();
            shape.build(&column)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let valid: Vec<bool> = values
        .iter()
        .map(|v| v.is_some_and(Value::is_object))
        .collect();
    Ok(Arc::new(StructArray::try_new(
        struct_fields(fields),
        children,
        Some(NullBuffer::from(valid)),
    )?))
}

/// Microseconds since the epoch of an RFC 3339 timestamp.
pub fn parse_time(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_micros())
}

/// Replaces every object without fields (not writable as a Parquet struct) with JSON text.
pub fn writable(shape: Shape) -> Shape {
    match shape {
        Shape::Object(fields) if fields.is_empty() => Shape::Json,
        Shape::Object(fields) => {
            Shape::Object(fields.into_iter().map(|(k, s)| (k, writable(s))).collect())
        }
        Shape::List(inner) => Shape::List(Box::new(writable(*inner))),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use serde_json::json;

    fn shape_of(values: &[Value]) -> Shape {
        let mut s = Shape::Unknown;
        values.iter().for_each(|v| s.observe(v));
        s
    }

    #[test]
    fn shapes_merge_across_values() {
        assert_eq!(shape_of(&[json!(1), json!(2.5), Value::Null]), Shape::Float);
        assert_eq!(shape_of(&[json!("a"), json!({"x": 1})]), Shape::Json);
        let s = shape_of(&[
            json!({"href": "a", "roles": ["data"]}),
            json!({"href": "b", "title": "t"}),
        ]);
        assert_eq!(
            s,
            Shape::Object(vec![
                ("href".into(), Shape::Text),
                ("roles".into(), Shape::List(Box::new(Shape::Text))),
                ("title".into(), Shape::Text),
            ])
        );
        let mut t = Shape::Unknown;
        t.observe_time(&json!("2020-01-01T00:00:00Z"));
        assert_eq!(t, Shape::Time);
        t.observe_time(&json!("not a time"));
        assert_eq!(t, Shape::Text);
    }

    #[test]
    fn arrays_hold_the_values_and_nulls_for_missing_ones() {
        let rows = [
            json!({"href": "a", "roles": ["data", "x"]}),
            json!({"href": "b"}),
        ];
        let shape = shape_of(&rows);
        let refs: Vec<Option<&Value>> = rows.iter().map(Some).chain([None]).collect();
        let array = shape.build(&refs).unwrap();
        let s = array.as_struct();
        assert_eq!(s.len(), 3);
        assert!(s.is_null(2));
        assert_eq!(s.column(0).as_string::<i32>().value(1), "b");
        let roles = s.column(1).as_list::<i32>();
        assert_eq!(roles.value(0).len(), 2);
        assert!(roles.is_null(1));
        let mixed = shape_of(&[json!("a"), json!([1])]);
        let built = mixed.build(&[Some(&json!([1]))]).unwrap();
        assert_eq!(built.as_string::<i32>().value(0), "[1]");
    }
}
