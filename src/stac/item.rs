//! STAC items: parsed from JSON, validated, and normalised into the table's
//! columns. Properties without a column are kept in `extra_properties`.

use chrono::{DateTime, NaiveDateTime, Utc};
use geo::BoundingRect;
use geo_types::Geometry;
use serde_json::{Map, Value};

use super::geojson::{self, GeometryError};

/// Why an item was rejected (the dead-letter reason).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ItemError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not a STAC item: {0}")]
    NotStac(String),
    #[error("missing or invalid id")]
    BadId,
    #[error("invalid geometry: {0}")]
    Geometry(#[from] GeometryError),
    #[error("invalid {field}: '{value}' is not an RFC 3339 datetime")]
    BadDatetime { field: &'static str, value: String },
    #[error("bbox {bbox} does not contain the geometry (bounds {bounds})")]
    BboxMismatch { bbox: String, bounds: String },
}

/// An item normalised to the table's columns (everything but `grid_partition`).
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: String,
    /// None when the item has no geometry (it goes to the `__none__` partition).
    pub geometry: Option<Geometry<f64>>,
    pub datetime: Option<DateTime<Utc>>,
    pub start_datetime: Option<DateTime<Utc>>,
    pub end_datetime: Option<DateTime<Utc>>,
    pub created: Option<DateTime<Utc>>,
    pub updated: Option<DateTime<Utc>>,
    pub platform: Option<String>,
    pub percent_valid_pixels: Option<i64>,
    pub date_dt: Option<i64>,
    pub proj_code: Option<String>,
    pub assets: Option<String>,
    pub links: Option<String>,
    pub stac_version: Option<String>,
    pub item_type: Option<String>,
    pub version: Option<String>,
    pub orbit_state: Option<String>,
    pub scene_1_id: Option<String>,
    pub scene_2_id: Option<String>,
    pub scene_1_frame: Option<String>,
    pub scene_2_frame: Option<String>,
    pub mid_datetime: Option<String>,
    pub stac_extensions: Option<String>,
    pub collection: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub bbox: Option<String>,
    pub extra_properties: Option<String>,
}

impl Item {
    /// The year bucket of the item: year(`datetime`), as the partition spec
    /// computes it (None goes to the year-less bucket).
    pub fn partition_year(&self) -> Option<i32> {
        self.datetime.map(|d| chrono::Datelike::year(&d))
    }
}

/// Largest item body we parse; bigger is treated as hostile.
pub const MAX_ITEM_BYTES: usize = 16 * 1024 * 1024;

/// Parses and validates one item from its JSON bytes.
pub fn parse_item(bytes: &[u8]) -> Result<Item, ItemError> {
    if bytes.len() > MAX_ITEM_BYTES {
        return Err(ItemError::NotJson(format!(
            "body of {} bytes exceeds {MAX_ITEM_BYTES}",
            bytes.len()
        )));
    }
    // serde_json limits recursion depth (128), so nesting bombs fail cleanly.
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ItemError::NotJson(e.to_string()))?;
    item_from_value(value)
}

/// Validates and normalises an item already parsed as JSON.
pub fn item_from_value(value: Value) -> Result<Item, ItemError> {
    let Value::Object(mut obj) = value else {
        return Err(ItemError::NotStac("top level is not an object".into()));
    };
    if let Some(t) = obj.get("type")
        && t.as_str() != Some("Feature")
    {
        return Err(ItemError::NotStac(format!("type is {t}, not \"Feature\"")));
    }
    let id = match obj.get("id") {
        Some(Value::String(s))
            if !s.trim().is_empty() && s.len() <= 1024 && !s.chars().any(char::is_control) =>
        {
            s.clone()
        }
        _ => return Err(ItemError::BadId),
    };
    let mut props = match obj.remove("properties") {
        Some(Value::Object(p)) => p,
        Some(Value::Null) | None => Map::new(),
        Some(_) => return Err(ItemError::NotStac("properties is not an object".into())),
    };
    let geometry = match obj.get("geometry") {
        None | Some(Value::Null) => None,
        Some(g) => Some(geojson::geometry_from_json(g)?),
    };
    let bbox = obj.get("bbox").filter(|b| !b.is_null()).cloned();
    if let (Some(b), Some(g)) = (&bbox, &geometry) {
        check_bbox(b, g)?;
    }

    let datetime = take_datetime(&mut props, "datetime")?;
    let start_datetime = take_datetime(&mut props, "start_datetime")?;
    let end_datetime = take_datetime(&mut props, "end_datetime")?;
    let created = take_datetime(&mut props, "created")?;
    let updated = take_datetime(&mut props, "updated")?;
    let item = Item {
        id,
        datetime,
        start_datetime,
        end_datetime,
        created,
        updated,
        platform: take_string(&mut props, "platform"),
        percent_valid_pixels: take_i64(&mut props, "percent_valid_pixels"),
        date_dt: take_i64(&mut props, "date_dt"),
        proj_code: take_string(&mut props, "proj:code"),
        version: take_string(&mut props, "version"),
        orbit_state: take_string(&mut props, "sat:orbit_state"),
        scene_1_id: take_string(&mut props, "scene_1_id"),
        scene_2_id: take_string(&mut props, "scene_2_id"),
        scene_1_frame: take_string(&mut props, "scene_1_frame"),
        scene_2_frame: take_string(&mut props, "scene_2_frame"),
        mid_datetime: take_string(&mut props, "mid_datetime"),
        latitude: take_f64(&mut props, "latitude"),
        longitude: take_f64(&mut props, "longitude"),
        assets: obj
            .get("assets")
            .filter(|v| !v.is_null())
            .map(Value::to_string),
        links: obj
            .get("links")
            .filter(|v| !v.is_null())
            .map(Value::to_string),
        stac_version: obj
            .get("stac_version")
            .and_then(Value::as_str)
            .map(str::to_string),
        item_type: Some("Feature".to_string()),
        stac_extensions: obj
            .get("stac_extensions")
            .filter(|v| !v.is_null())
            .map(Value::to_string),
        collection: obj
            .get("collection")
            .and_then(Value::as_str)
            .map(str::to_string),
        bbox: bbox.map(|b| b.to_string()),
        extra_properties: None,
        geometry,
    };
    // Whatever is left (including column properties of an unexpected type) is kept verbatim.
    let extra_properties = (!props.is_empty()).then(|| Value::Object(props).to_string());
    Ok(Item {
        extra_properties,
        ..item
    })
}

fn take_string(props: &mut Map<String, Value>, key: &str) -> Option<String> {
    match props.get(key) {
        Some(Value::String(_)) => props
            .remove(key)
            .and_then(|v| v.as_str().map(str::to_string)),
        Some(Value::Null) => {
            props.remove(key);
            None
        }
        _ => None,
    }
}

fn take_i64(props: &mut Map<String, Value>, key: &str) -> Option<i64> {
    let v = props.get(key)?;
    let n = v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
            .map(|f| f as i64)
    })?;
    props.remove(key);
    Some(n)
}

fn take_f64(props: &mut Map<String, Value>, key: &str) -> Option<f64> {
    let n = props.get(key)?.as_f64().filter(|f| f.is_finite())?;
    props.remove(key);
    Some(n)
}

fn take_datetime(
    props: &mut Map<String, Value>,
    key: &'static str,
) -> Result<Option<DateTime<Utc>>, ItemError> {
    match props.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_datetime(&s).map(Some).ok_or(ItemError::BadDatetime {
            field: key,
            value: truncate(&s, 64),
        }),
        Some(other) => Err(ItemError::BadDatetime {
            field: key,
            value: truncate(&other.to_string(), 64),
        }),
    }
}

/// Parses RFC 3339 (and the common forms without offset, read as UTC).
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.fZ",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(n.and_utc());
        }
    }
    None
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// The bbox must be 4 (or 6) finite numbers containing the geometry's bounds.
/// A bbox whose west exceeds its east crosses the antimeridian.
fn check_bbox(bbox: &Value, geometry: &Geometry<f64>) -> Result<(), ItemError> {
    let nums: Option<Vec<f64>> = bbox
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect());
    let mismatch = |bounds: String| ItemError::BboxMismatch {
        bbox: truncate(&bbox.to_string(), 80),
        bounds,
    };
    let Some(nums) =
        nums.filter(|n| (n.len() == 4 || n.len() == 6) && n.iter().all(|v| v.is_finite()))
    else {
        return Err(mismatch("bbox must be 4 or 6 numbers".into()));
    };
    let (w, s, e, n) = if nums.len() == 4 {
        (nums[0], nums[1], nums[2], nums[3])
    } else {
        (nums[0], nums[1], nums[3], nums[4])
    };
    let Some(rect) = geometry.bounding_rect() else {
        return Ok(());
    };
    const TOL: f64 = 1e-6;
    let lat_ok = rect.min().y >= s - TOL && rect.max().y <= n + TOL;
    let lon_ok = if w <= e {
        rect.min().x >= w - TOL && rect.max().x <= e + TOL
    } else {
        // Antimeridian bbox: every coordinate is east of w or west of e.
        geo::CoordsIter::coords_iter(geometry).all(|c| c.x >= w - TOL || c.x <= e + TOL)
    };
    if lat_ok && lon_ok {
        Ok(())
    } else {
        Err(mismatch(format!(
            "[{:.6},{:.6},{:.6},{:.6}]",
            rect.min().x,
            rect.min().y,
            rect.max().x,
            rect.max().y
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(geometry: Value, props: Value) -> Value {
        json!({"type": "Feature", "stac_version": "1.0.0", "id": "a", "geometry": geometry,
               "bbox": [0, 0, 1, 1], "properties": props, "assets": {"data": {"href": "s3://b/a.nc"}}, "links": []})
    }

    fn square() -> Value {
        json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]})
    }

    #[test]
    fn normalises_columns_and_keeps_extras() {
        let v = item(
            square(),
            json!({"datetime": "2020-01-02T03:04:05Z", "platform": "LC08",
            "percent_valid_pixels": 87, "eo:cloud_cover": 12.5, "proj:code": "EPSG:32633"}),
        );
        let it = item_from_value(v).unwrap();
        assert_eq!(it.platform.as_deref(), Some("LC08"));
        assert_eq!(it.percent_valid_pixels, Some(87));
        assert_eq!(
            it.datetime.unwrap().to_rfc3339(),
            "2020-01-02T03:04:05+00:00"
        );
        let extra: Value = serde_json::from_str(it.extra_properties.as_deref().unwrap()).unwrap();
        assert_eq!(extra, json!({"eo:cloud_cover": 12.5}));
        assert!(it.assets.unwrap().contains("s3://b/a.nc"));
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            parse_item(b"{not json"),
            Err(ItemError::NotJson(_))
        ));
        assert!(matches!(parse_item(b"[1,2]"), Err(ItemError::NotStac(_))));
        let bad_dt = item(square(), json!({"datetime": "yesterday"}));
        assert!(matches!(
            item_from_value(bad_dt),
            Err(ItemError::BadDatetime { .. })
        ));
        let mut no_id = item(square(), json!({}));
        no_id["id"] = json!(7);
        assert_eq!(item_from_value(no_id), Err(ItemError::BadId));
        let mut outside = item(square(), json!({}));
        outside["bbox"] = json!([5, 5, 6, 6]);
        assert!(matches!(
            item_from_value(outside),
            Err(ItemError::BboxMismatch { .. })
        ));
        let deep = "[".repeat(10_000);
        assert!(parse_item(deep.as_bytes()).is_err());
    }

    #[test]
    fn null_geometry_and_datetime_are_allowed() {
        let it = item_from_value(item(Value::Null, json!({"datetime": null}))).unwrap();
        assert!(it.geometry.is_none() && it.partition_year().is_none());
    }
}
