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
    ] {
        let run = oms(&dir, &args);
        assert_eq!(run.code, 3, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains("is held by a running server; stop it, or use the admin mutation `verifyLog` / `rebuildProjection` / `resetConsumer` over GraphQL"),
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
