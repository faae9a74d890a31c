//! Outputs that cannot hurt: crafted items whose ids are spreadsheet
//! formulas and whose `platform` carries an OSC sequence (ESC ] 0;pwned BEL:
//! it retitles the terminal). Plain CLI text shows them escaped, CSV
//! neutralises the formulas, JSON stays exact.

use crate::common;

use std::path::Path;

use common::{ecops, ecops_json};
use serde_json::{Value, json};

/// The OSC sequence every crafted item carries as its platform.
pub(crate) const PWNED: &str = "\u{1b}]0;pwned\u{7}";
/// How it shows once escaped.
pub(crate) const PWNED_SHOWN: &str = "\\x1b]0;pwned\\x07";
/// Ids a spreadsheet would run as formulas (ingest refuses ids with control
/// characters; properties carry them).
pub(crate) const CRAFTED_IDS: [&str; 4] = [
    "=HYPERLINK(\"http://evil.example/\",\"click\")",
    "+1+1",
    "@SUM(A1)",
    "-2+3",
];

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A catalog at `dir/catalog` holding the crafted items, ingested by the
/// real CLI; returns its base.
pub(crate) fn crafted_catalog(dir: &Path) -> String {
    let items = dir.join("items/crafted");
    std::fs::create_dir_all(&items).unwrap();
    let mut inventory = String::new();
    for (i, id) in CRAFTED_IDS.iter().enumerate() {
        let x = 10.0 + i as f64;
        let body = json!({
            "type": "Feature", "stac_version": "1.0.0", "id": id,
            "geometry": {"type": "Polygon", "coordinates": [[
                [x, 10.0], [x + 0.5, 10.0], [x + 0.5, 10.5], [x, 10.5], [x, 10.0]
            ]]},
            "properties": {"datetime": "2022-03-01T00:00:00Z", "platform": PWNED},
            "assets": {"data": {"href": format!("s3://crafted/{i}.tif")}},
            "links": []
        })
        .to_string();
        std::fs::write(items.join(format!("item{i}.stac.json")), &body).unwrap();
        inventory.push_str(&format!(
            "\"crafted\",\"crafted/item{i}.stac.json\",\"{}\",\"2024-01-01T00:00:00Z\"\n",
            body.len()
        ));
    }
    let inv = dir.join("crafted.csv");
    std::fs::write(&inv, inventory).unwrap();
    let base = dir.join("catalog").to_string_lossy().into_owned();
    let v = ecops_json(&[
        "ingest",
        "--json",
        "--base",
        &base,
        "--inventory",
        s(&inv),
        "--items-root",
        s(&dir.join("items")),
        "--job",
        "crafted",
    ]);
    assert_eq!(v["failed"], 0, "{v}");
    assert_eq!(v["items"], CRAFTED_IDS.len(), "{v}");
    base
}

/// `ecops query --format FORMAT` over the whole world: stdout.
fn query(base: &str, format: &str) -> String {
    let out = ecops(&[
        "query",
        "--base",
        base,
        "--bbox",
        "-180,-90,180,90",
        "--format",
        format,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// No byte a terminal acts on, except the line ends.
fn assert_inert(format: &str, text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect();
    assert!(
        bad.is_empty(),
        "{format}: control characters {bad:?} in\n{text}"
    );
}

#[test]
fn crafted_items_print_escaped_csv_neutralised_and_json_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let base = crafted_catalog(tmp.path());

    for format in ["table", "markdown"] {
        let text = query(&base, format);
        assert_inert(format, &text);
        assert_eq!(
            text.matches(PWNED_SHOWN).count(),
            CRAFTED_IDS.len(),
            "{text}"
        );
        assert!(text.contains("+1+1") && text.contains("@SUM(A1)"), "{text}");
    }

    let csv_text = query(&base, "csv");
    assert_inert("csv", &csv_text);
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (id_at, platform_at) = (column("id"), column("platform"));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), CRAFTED_IDS.len());
    let mut ids: Vec<&str> = rows.iter().map(|r| &r[id_at]).collect();
    ids.sort();
    let mut expected = vec![
        "'=HYPERLINK(\"http://evil.example/\",\"click\")",
        "'+1+1",
        "'@SUM(A1)",
        "'-2+3",
    ];
    expected.sort();
    assert_eq!(ids, expected);
    for row in &rows {
        assert!(
            !row.iter()
                .any(|c| c.starts_with(['=', '+', '-', '@', '\t', '\r'])),
            "a live formula: {row:?}"
        );
        assert_eq!(&row[platform_at], PWNED_SHOWN);
    }

    // JSON and NDJSON: the exact values (JSON escapes them itself).
    let json_text = query(&base, "json");
    let items: Value = serde_json::from_str(json_text.trim()).unwrap();
    let ndjson: Vec<Value> = query(&base, "ndjson")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for list in [items.as_array().unwrap(), &ndjson] {
        let mut ids: Vec<&str> = list.iter().map(|i| i["id"].as_str().unwrap()).collect();
        ids.sort();
        let mut crafted = CRAFTED_IDS.to_vec();
        crafted.sort();
        assert_eq!(ids, crafted);
        assert!(list.iter().all(|i| i["platform"] == PWNED));
    }
}

#[test]
fn error_text_with_control_characters_prints_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    // A base whose name carries an escape: the error quotes it.
    let base = tmp.path().join("no-such-\u{1b}]0;pwned\u{7}");
    let out = ecops(&["info", "--base", s(&base), "--read-only"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains(PWNED_SHOWN), "{stderr}");
    assert_inert("stderr", &stderr);
}
