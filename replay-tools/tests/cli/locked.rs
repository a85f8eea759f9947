//! A data directory held by a running server gets the clear message.

use eventlog::{Durability, EventLog, LogConfig};

use crate::common::{generated, oms};

#[test]
fn a_locked_data_directory_names_the_server_and_the_admin_mutations() {
    let (_tmp, dir) = generated();
    let log = EventLog::open(LogConfig::new(&dir).durability(Durability::Buffered)).unwrap();
    for args in [
        vec!["verify"],
        vec!["dump"],
        vec!["consumers"],
        vec!["reset-consumer", "x", "--to", "0"],
        vec!["stats"],
        // An import needs an empty directory; a held one is still named
        // as held (it said "not empty ... remove that directory").
        vec!["import", "-"],
    ] {
        let run = oms(&dir, &args);
        assert_eq!(run.code, 3, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains("is held by a running server or by another oms-replay command (an import still writing it, a rebuild); wait for that command, or stop the server or use its admin mutations `verifyLog` / `rebuildProjection` / `resetConsumer` over GraphQL"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains(dir.to_str().unwrap()));
    }
    let json = oms(&dir, &["verify", "--json"]).json();
    assert_eq!(json["error"]["kind"], "locked");
    assert_eq!(json["error"]["exit_code"], 3);
    drop(log);
}

/// A directory an import is still writing (its restore marker present,
/// its data file locked) is held, not damaged: `verify` said "log damaged
/// at position 0: a restore into this directory did not finish" (exit 1)
/// while the import ran on.
#[test]
fn a_directory_an_import_is_still_writing_is_held_not_damaged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("importing");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join(eventlog::restore::UNFINISHED_FILE), "").unwrap();
    let db = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join("db"))
        .unwrap();
    fs2::FileExt::try_lock_exclusive(&db).unwrap();
    for args in [
        vec!["verify"],
        vec!["dump"],
        vec!["stats"],
        vec!["export", "--output", "-"],
    ] {
        let run = oms(&dir, &args);
        assert_eq!(run.code, 3, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains("held by a running server"),
            "{args:?}: {run:?}"
        );
    }
    fs2::FileExt::unlock(&db).unwrap();
    let run = oms(&dir, &["verify"]);
    assert_eq!(
        run.code, 1,
        "once no one holds it, it is an unfinished restore: {run:?}"
    );
    assert!(run.stdout.contains("did not finish"), "{run:?}");
}
