//! The projections' own sled database (ADR 0034): nothing of theirs in the
//! log's database, an old data directory with projection trees in the
//! log's database upgraded by a refill, a read model ahead of its log
//! refilled rather than trusted, a damaged projections' database set
//! aside and refilled, and generation trees a crash left behind dropped
//! when the projections next start.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::generator;
use eventlog::{EventLog, LogConfig};
use projections::{ProjectionConfig, Projections, ReadModels};

fn open(dir: &Path) -> EventLog {
    EventLog::open(LogConfig::new(dir)).unwrap()
}

fn generate(log: &EventLog, seed: u64, events: u64) {
    let mut g = generator(seed);
    for append in g.take_events(events) {
        log.append_blocking(append.request()).unwrap();
    }
}

fn project(log: &EventLog) -> ReadModels {
    Projections::catch_up_offline(log, &ProjectionConfig::default(), &mut |_, _| {}).unwrap()
}

fn proj_trees(db: &sled::Db) -> Vec<String> {
    db.tree_names()
        .iter()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .filter(|n| n.starts_with("proj/"))
        .collect()
}

/// (sha256, checkpoint) of every read model.
fn digests(read: &ReadModels) -> Vec<(String, String, u64)> {
    read.digests()
        .unwrap()
        .into_iter()
        .map(|d| (d.name, d.sha256, d.checkpoint))
        .collect()
}

#[test]
fn read_models_live_in_their_own_database_and_an_old_directory_refills_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    generate(&log, 3, 1_500);
    let head = log.next_position();
    let read = project(&log);
    let before = digests(&read);
    assert!(before.iter().all(|(_, _, checkpoint)| *checkpoint == head));
    assert!(
        proj_trees(log.db()).is_empty(),
        "{:?}",
        proj_trees(log.db())
    );
    let own = log.projection_db().unwrap();
    assert!(proj_trees(&own).len() > 1, "{:?}", proj_trees(&own));

    // Lay the directory out as before ADR 0034: the projection trees in
    // the log's database, no projections directory.
    for name in proj_trees(&own) {
        let (from, to) = (
            own.open_tree(&name).unwrap(),
            log.db().open_tree(&name).unwrap(),
        );
        for entry in from.iter() {
            let (k, v) = entry.unwrap();
            to.insert(k, v).unwrap();
        }
    }
    log.db().flush().unwrap();
    drop((read, own, log));
    std::fs::remove_dir_all(dir.path().join(eventlog::storage::PROJECTION_DIR)).unwrap();

    let log = open(dir.path());
    assert!(!proj_trees(log.db()).is_empty());
    let after = digests(&project(&log));
    assert!(
        proj_trees(log.db()).is_empty(),
        "{:?}",
        proj_trees(log.db())
    );
    let names = |d: &[(String, String, u64)]| d.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&after), names(&before));
    for (a, b) in after.iter().zip(&before) {
        assert_eq!(a, b, "{} differs after the upgrade's refill", a.0);
    }
}

#[test]
fn a_read_model_ahead_of_its_log_refills_from_position_zero() {
    let ahead = tempfile::tempdir().unwrap();
    let log = open(ahead.path());
    generate(&log, 5, 1_000);
    let long_head = log.next_position();
    drop(project(&log));
    drop(log);

    // A shorter log (as after restoring it from an older export) beside
    // the read models of the longer one.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    generate(&log, 9, 300);
    let head = log.next_position();
    assert!(head < long_head, "{head} {long_head}");
    drop(log);
    std::fs::rename(
        ahead.path().join(eventlog::storage::PROJECTION_DIR),
        dir.path().join(eventlog::storage::PROJECTION_DIR),
    )
    .unwrap();

    let log = open(dir.path());
    let caught_up = digests(&project(&log));
    assert!(
        caught_up
            .iter()
            .all(|(_, _, checkpoint)| *checkpoint == head),
        "{caught_up:?}"
    );
    Projections::rebuild_offline(&log, &ProjectionConfig::default(), &[], &mut |_, _| {}).unwrap();
    let rebuilt = digests(&project(&log));
    assert_eq!(caught_up, rebuilt);
}

#[test]
fn a_damaged_projection_database_is_set_aside_and_the_read_models_refill() {
    type Damage = fn(&std::path::Path);
    let garbled_conf = |projections: &std::path::Path| {
        let conf = projections.join("conf");
        let mut bytes = std::fs::read(&conf).unwrap();
        bytes[0] ^= 0x55;
        std::fs::write(&conf, bytes).unwrap();
    };
    // A probe's directory in place of sled's snapshot stopped the server
    // with an I/O error naming no file.
    let snapshot_a_directory = |projections: &std::path::Path| {
        let snapshot = std::fs::read_dir(projections)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("snap.")
            })
            .expect("sled kept a snapshot");
        std::fs::remove_file(&snapshot).unwrap();
        std::fs::create_dir(&snapshot).unwrap();
    };
    for damage in [garbled_conf as Damage, snapshot_a_directory] {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        generate(&log, 13, 600);
        let before = digests(&project(&log));
        drop(log);
        // sled writes its snapshot when a database is opened.
        drop(project(&open(dir.path())));
        damage(&dir.path().join(eventlog::storage::PROJECTION_DIR));

        let log = open(dir.path());
        let after = digests(&project(&log));
        assert_eq!(after, before);
        let aside: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("projections.damaged-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
    }
}

#[test]
fn generation_trees_a_crash_left_behind_are_dropped_when_the_projections_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    generate(&log, 21, 800);
    project(&log);
    Projections::rebuild_offline(&log, &ProjectionConfig::default(), &[], &mut |_, _| {}).unwrap();
    let read = project(&log);
    let before = digests(&read);
    let generation = read.digests().unwrap()[0].generation;
    assert!(generation >= 1, "a rebuild moves to a new generation");
    drop(read);
    let db = log.projection_db().unwrap();
    let serving = proj_trees(&db);

    // What a SIGKILL leaves: a rebuild flushes the switch to its new
    // generation before it empties and drops the old tree, so a kill in
    // between leaves the old tree (partly emptied); a kill before the
    // switch leaves the new generation unswapped. A tree that is no
    // projector's is not the projections' to drop.
    let leave_behind = |db: &sled::Db| {
        for tree in [
            format!("proj/quotes/{:020}", generation - 1),
            format!("proj/handoffs/{:020}", generation - 1),
            format!("proj/audit/{:020}", generation + 1),
            format!("proj/not-a-projector/{:020}", generation - 1),
        ] {
            db.open_tree(tree)
                .unwrap()
                .insert(b"row", b"stale")
                .unwrap();
        }
        db.flush().unwrap();
    };
    let mut expected = serving.clone();
    expected.push(format!("proj/not-a-projector/{:020}", generation - 1));
    expected.sort();
    let sorted = |mut trees: Vec<String>| {
        trees.sort();
        trees
    };

    // An offline catch-up (as `oms-replay` runs one) drops them.
    leave_behind(&db);
    assert_eq!(proj_trees(&db).len(), serving.len() + 4);
    assert_eq!(digests(&project(&log)), before);
    assert_eq!(sorted(proj_trees(&db)), expected);

    // So does the server's start.
    leave_behind(&db);
    let running = Projections::start(log.clone()).unwrap();
    running
        .wait_for(log.next_position(), std::time::Duration::from_secs(60))
        .unwrap();
    running.shutdown();
    assert_eq!(sorted(proj_trees(&db)), expected);
    assert_eq!(digests(&project(&log)), before);
}
