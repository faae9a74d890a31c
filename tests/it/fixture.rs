//! The catalog earthcatalog 0.5.1 wrote (tests/fixtures) opens in ecops and
//! shows the figures PyIceberg reports for it (tests/fixtures/README.md).

use crate::common;

use std::collections::BTreeMap;

use common::{earthcatalog_fixture, ecops_json};

fn file_digest(dir: &std::path::Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for name in ["earthcatalog.db", ".lock"] {
        out.insert(
            name.to_string(),
            std::fs::read(dir.join(name)).unwrap_or_default(),
        );
    }
    out
}

#[test]
fn stats_agree_with_the_reference_figures() {
    let catalog = earthcatalog_fixture();
    let before = file_digest(&catalog);
    let stats = ecops_json(&[
        "stats",
        "--base",
        catalog.to_str().unwrap(),
        "--json",
        "--top",
        "3",
    ]);
    assert_eq!(stats["rows"], 490);
    assert_eq!(stats["files"], 446);
    assert_eq!(stats["bytes"], 6_527_772);
    assert_eq!(stats["partitions"], 382);
    assert_eq!(stats["cells"], 201);
    assert_eq!(stats["snapshots"], 4);
    let top: Vec<(String, u64)> = stats["top_cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["cell"].as_str().unwrap().to_string(),
                c["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        top,
        vec![
            ("81017ffffffffff".to_string(), 28),
            ("81003ffffffffff".to_string(), 22),
            ("81077ffffffffff".to_string(), 21)
        ]
    );
    assert!(
        stats["history"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["operation"] == "append")
    );
    // earthcatalog records no grid properties: the resolution is inferred and says so.
    assert_eq!(stats["grid"]["resolution"], 1);
    assert_eq!(stats["grid"]["recorded"], false);
    assert_eq!(
        file_digest(&catalog),
        before,
        "reading must not modify the catalog"
    );
}

#[test]
fn info_points_at_the_fixture_metadata() {
    let catalog = earthcatalog_fixture();
    let info = ecops_json(&["info", "--base", catalog.to_str().unwrap(), "--json"]);
    let metadata = info["metadata_location"].as_str().unwrap();
    assert!(metadata.starts_with(&format!(
        "{}/warehouse/earthcatalog/stac_items/metadata/00004-",
        catalog.display()
    )));
    assert_eq!(info["snapshots"], 4);
    assert_eq!(info["format_version"], 2);
}
