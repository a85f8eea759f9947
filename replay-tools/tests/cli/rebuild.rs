//! `rebuild` and the projections seen by `consumers`; an imported log
//! rebuilds to the same read models as the original.

use crate::common::{generated, generated_events, oms};

fn digests(run: &crate::common::Run) -> Vec<(String, u64, String)> {
    run.json()["projectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["rows"].as_u64().unwrap(),
                p["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn rebuild_all_folds_every_projection_and_consumers_lists_them() {
    let (_tmp, dir) = generated();
    let run = oms(&dir, &["rebuild", "--all", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let json = run.json();
    let rebuilt = json["rebuilt"].as_array().unwrap();
    assert_eq!(rebuilt.len(), projections::PROJECTOR_NAMES.len());
    assert!(rebuilt.iter().all(|r| r["events"] == generated_events()));
    let consumers = oms(&dir, &["consumers", "--json"]).json();
    let projectors = consumers["projectors"].as_array().unwrap();
    assert_eq!(projectors.len(), projections::PROJECTOR_NAMES.len());
    assert!(
        projectors
            .iter()
            .all(|p| p["lag"] == 0 && p["rows"].as_u64().unwrap() > 0),
        "{projectors:?}"
    );
    let again = oms(&dir, &["rebuild", "orders"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.stdout.contains("rebuilt orders into generation 2"),
        "{}",
        again.stdout
    );
}

#[test]
fn imported_projections_equal_the_originals() {
    let (tmp, dir) = generated();
    let original = oms(&dir, &["rebuild", "--all", "--json"]);
    assert_eq!(original.code, 0, "{original:?}");
    let file = tmp.path().join("log.oms-export");
    assert_eq!(oms(&dir, &["export", "-o", file.to_str().unwrap()]).code, 0);
    let restored = tmp.path().join("restored");
    assert_eq!(oms(&restored, &["import", file.to_str().unwrap()]).code, 0);
    let imported = oms(&restored, &["rebuild", "--all", "--json"]);
    assert_eq!(imported.code, 0, "{imported:?}");
    assert_eq!(digests(&imported), digests(&original));
}

#[test]
fn unknown_projectors_and_projector_resets_are_usage_errors() {
    let (_tmp, dir) = generated();
    let run = oms(&dir, &["rebuild", "widgets"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("quotes"), "{}", run.stderr);
    let run = oms(&dir, &["reset-consumer", "orders", "--to", "0"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("oms-replay rebuild orders"),
        "{}",
        run.stderr
    );
    assert_eq!(oms(&dir, &["rebuild"]).code, 2);
}
