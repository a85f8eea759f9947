//! Damage to the files on disk (not through sled's API): a byte flipped in
//! sled's `db` file is named by position by `verify` and refused by open,
//! never served nor written on top of; a damaged `conf` is named as such.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::path::Path;

use common::append_one;
use eventlog::{
    verify_dir, Durability, EventLog, ExpectedVersion, LogConfig, LogError, Problem, VerifyError,
    ACKED_HEAD_FILE,
};

const EVENTS: u64 = 300;
const TARGET: u64 = 117;

fn marker(i: u64) -> String {
    format!("marker-{i:05}-end")
}

async fn write_events(dir: &Path, from: u64, to: u64) {
    write_sized(dir, from, to, 150, Durability::Durable).await;
}

/// Appends events `from..to` with `padding` bytes of payload each.
async fn write_sized(dir: &Path, from: u64, to: u64, padding: usize, durability: Durability) {
    let log = EventLog::open(LogConfig::new(dir).durability(durability)).unwrap();
    for i in from..to {
        let payload = format!("{} {}", marker(i), "p".repeat(padding));
        log.append(append_one(
            &format!("s{}", i % 7),
            ExpectedVersion::Any,
            &payload,
        ))
        .await
        .unwrap();
    }
    log.close().await;
    drop(log);
    settle();
}

/// Lets a closed log's sled threads release the directory.
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(150));
}

/// Flips one byte inside every stored copy of event `i`'s payload in the
/// `db` file; returns how many copies there were.
fn flip_payload_bytes(dir: &Path, i: u64) -> usize {
    let path = dir.join("db");
    let mut bytes = std::fs::read(&path).unwrap();
    let needle = marker(i).into_bytes();
    let hits: Vec<usize> = bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle.as_slice())
        .map(|(at, _)| at)
        .collect();
    for at in &hits {
        bytes[at + 9] ^= 0x04;
    }
    std::fs::write(&path, bytes).unwrap();
    hits.len()
}

fn damage_of(dir: &Path) -> (u64, Problem) {
    match verify_dir(dir, &mut |_| {}) {
        Err(VerifyError::Damaged { position, problem }) => (position, problem),
        other => panic!("expected damage named by position, got {other:?}"),
    }
}

fn acked_head_bytes(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join(ACKED_HEAD_FILE)).unwrap()
}

/// Opening refuses the damaged log, names the position, and appends nothing.
fn assert_open_refused(dir: &Path, at_most: u64) {
    let before = acked_head_bytes(dir);
    for _ in 0..2 {
        let err = EventLog::open(LogConfig::new(dir)).unwrap_err();
        assert!(err.is_damage(), "{err}");
        match &err {
            LogError::Damaged { position, .. } => assert!(*position <= at_most, "{err}"),
            other => panic!("expected a position: {other}"),
        }
        settle();
    }
    assert_eq!(acked_head_bytes(dir), before, "nothing was acknowledged");
}

#[tokio::test]
async fn a_byte_flipped_in_the_data_file_since_the_last_start_is_repaired_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    write_events(dir.path(), 0, EVENTS).await;
    assert!(flip_payload_bytes(dir.path(), TARGET) >= 1);
    // sled drops the damaged message and everything after it; the journal
    // still holds every group commit since the log was opened, and puts
    // them back.
    let report = verify_dir(dir.path(), &mut |_| {}).unwrap();
    assert_eq!(report.events, EVENTS);
    settle();
    let log = EventLog::open(LogConfig::new(dir.path())).unwrap();
    assert_eq!(log.next_position(), EVENTS);
    let record = log.read_at(TARGET).unwrap().unwrap();
    assert!(String::from_utf8_lossy(&record.payload).contains(&marker(TARGET)));
    log.close().await;
}

#[tokio::test]
async fn a_byte_flipped_in_the_data_file_since_the_last_start_is_named_and_refused_without_the_journal(
) {
    let dir = tempfile::tempdir().unwrap();
    write_events(dir.path(), 0, EVENTS).await;
    assert!(flip_payload_bytes(dir.path(), TARGET) >= 1);
    std::fs::remove_dir_all(dir.path().join(eventlog::journal::JOURNAL_DIR)).unwrap();
    // sled takes a failed checksum in the part of its log written since it
    // last started for a torn write and drops everything after it; the
    // acknowledged head kept outside sled shows the events are gone.
    let (position, problem) = damage_of(dir.path());
    assert!(position <= TARGET, "{position}: {problem}");
    assert!(
        matches!(
            problem,
            Problem::MissingAcknowledged {
                acknowledged: EVENTS
            } | Problem::Unreadable { .. }
        ),
        "{problem}"
    );
    assert_open_refused(dir.path(), TARGET);
    // verify keeps naming it (sled's recovery cannot make it look sound).
    assert!(damage_of(dir.path()).0 <= TARGET);
}

#[tokio::test]
async fn a_byte_flipped_in_a_page_written_before_a_restart_is_named_as_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    // More than one 16 MiB segment of sled's log, then a restart: sled
    // replays only the segment it last wrote when it starts, so a page in
    // an older segment is read later, lazily, through its checksum.
    write_sized(dir.path(), 0, 2_500, 8 * 1024, Durability::Buffered).await;
    write_events(dir.path(), 2_500, 2_505).await;
    assert!(std::fs::metadata(dir.path().join("db")).unwrap().len() > 2 * (16 << 20));
    assert!(flip_payload_bytes(dir.path(), TARGET) >= 1);
    match verify_dir(dir.path(), &mut |_| {}) {
        Err(VerifyError::Damaged { position, problem }) => {
            match &problem {
                Problem::Unreadable { through, detail } => {
                    assert!(position <= TARGET, "{position}: {problem}");
                    assert!(through.is_some_and(|t| t >= TARGET), "{problem}");
                    assert!(detail.contains("checksum failed"), "{detail}");
                }
                other => panic!("expected an unreadable page, got {position}: {other}"),
            }
            assert_open_refused(dir.path(), TARGET);
        }
        // sled's segment cleaner may have moved the page into the part of
        // its log it replays at start (it relocates live pages out of old
        // segments in the background); sled then refuses to recover at
        // all, and the log is refused as damaged storage: nothing is read,
        // served or acknowledged, though no position can be named.
        Err(VerifyError::Log(err @ LogError::DamagedStorage { .. })) => {
            assert!(err.is_damage(), "{err}");
            let before = acked_head_bytes(dir.path());
            let refused = EventLog::open(LogConfig::new(dir.path())).unwrap_err();
            assert!(refused.is_damage(), "{refused}");
            assert_eq!(
                acked_head_bytes(dir.path()),
                before,
                "nothing was acknowledged"
            );
        }
        other => panic!("expected damage named by position or by storage, got {other:?}"),
    }
}

#[tokio::test]
async fn a_damaged_sled_conf_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    write_events(dir.path(), 0, 10).await;
    let conf = dir.path().join("conf");
    let original = std::fs::read(&conf).unwrap();
    let expect_conf_error = |what: &str| {
        let err = EventLog::open(LogConfig::new(dir.path())).unwrap_err();
        match &err {
            LogError::DamagedConfig { path, .. } => assert_eq!(path, &conf, "{what}"),
            other => panic!("{what}: expected a damaged conf, got {other}"),
        }
        let message = err.to_string();
        assert!(
            message.contains("sled configuration file") && message.contains("conf"),
            "{what}: {message}"
        );
        assert!(err.is_damage());
        match verify_dir(dir.path(), &mut |_| {}) {
            Err(VerifyError::Log(LogError::DamagedConfig { .. })) => {}
            other => panic!("{what}: verify gave {other:?}"),
        }
    };
    // One flipped byte in each part: the segment size, a name, the checksum.
    for index in [15, 2, original.len() - 2] {
        let mut bytes = original.clone();
        bytes[index] ^= 0x01;
        std::fs::write(&conf, &bytes).unwrap();
        expect_conf_error(&format!("byte {index} flipped"));
    }
    std::fs::write(&conf, b"").unwrap();
    expect_conf_error("emptied");
    std::fs::remove_file(&conf).unwrap();
    expect_conf_error("removed");
    // Restored, the log opens as before.
    std::fs::write(&conf, &original).unwrap();
    let log = EventLog::open(LogConfig::new(dir.path())).unwrap();
    assert_eq!(log.next_position(), 10);
    log.close().await;
}

/// sled's data file removed or emptied beside an `acked-head` that names
/// acknowledged events: refused, naming the file and the fix, and nothing
/// is created (sled would start an empty database there).
#[tokio::test]
async fn a_missing_or_empty_data_file_is_named_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    write_events(dir.path(), 0, 10).await;
    let data = dir.path().join("db");
    let original = std::fs::read(&data).unwrap();
    for (what, missing) in [("removed", true), ("emptied", false)] {
        if missing {
            std::fs::remove_file(&data).unwrap();
        } else {
            std::fs::write(&data, b"").unwrap();
        }
        let err = EventLog::open(LogConfig::new(dir.path())).unwrap_err();
        assert!(err.is_damage(), "{what}: {err}");
        let message = err.to_string();
        let state = if missing { "missing" } else { "empty" };
        assert!(
            message.contains(&format!("`db` is {state}")) && message.contains("10 events"),
            "{what}: {message}"
        );
        assert!(!message.contains("backtrace"), "{what}: {message}");
        assert_eq!(data.exists(), !missing, "{what}: nothing created");
    }
    std::fs::write(&data, &original).unwrap();
    let log = EventLog::open(LogConfig::new(dir.path())).unwrap();
    assert_eq!(log.next_position(), 10);
    log.close().await;
}

/// The log's files removed but its redo journal (which a start turns to
/// the head) or the read models made from it left: the directory held
/// events, so the open is refused, naming what shows it, and creates
/// nothing. A probe had the journal's case refused only after sled's
/// files were created (and `verify` call the directory "no event log"),
/// and the read models' case start an empty log and refill them from 0.
#[tokio::test]
async fn a_log_whose_files_are_gone_but_its_journal_or_read_models_remain_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_events(dir.path(), 0, 10).await;
    write_events(dir.path(), 10, 12).await;
    {
        let log = EventLog::open(LogConfig::new(dir.path())).unwrap();
        let models = log.projection_db().unwrap();
        models.insert("checkpoint", &12u64.to_be_bytes()).unwrap();
        models.flush().unwrap();
        log.close().await;
    }
    settle();
    let remove_log_files = |dir: &Path| {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if ["db", "conf", ACKED_HEAD_FILE, "snapshot-kept"].contains(&name.as_str())
                || name.starts_with("snap.")
            {
                std::fs::remove_file(&path).unwrap();
            }
        }
    };
    let refused = |dir: &Path, shown: &str| {
        let err = EventLog::open(LogConfig::new(dir)).unwrap_err();
        assert!(err.is_damage(), "{err}");
        assert!(err.to_string().contains(shown), "{err}");
        assert!(!dir.join("db").exists(), "nothing created: {err}");
        let verdict = verify_dir(dir, &mut |_| {}).unwrap_err();
        assert!(verdict.to_string().contains(shown), "{verdict}");
    };
    let journal_left = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), journal_left.path());
    remove_log_files(journal_left.path());
    std::fs::remove_dir_all(journal_left.path().join("projections")).unwrap();
    refused(
        journal_left.path(),
        "the redo journal starts at position 12",
    );

    // Only sled's snapshot left: a probe had sled create its files, then
    // fail on "a checksum", naming the wrong cause.
    let snapshot_left = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), snapshot_left.path());
    let snapshot = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|name| name.starts_with("snap.") && !name.ends_with(".generating"))
        .expect("sled kept a snapshot");
    remove_log_files(snapshot_left.path());
    std::fs::copy(
        dir.path().join(&snapshot),
        snapshot_left.path().join(&snapshot),
    )
    .unwrap();
    std::fs::remove_dir_all(snapshot_left.path().join("journal")).unwrap();
    std::fs::remove_dir_all(snapshot_left.path().join("projections")).unwrap();
    refused(snapshot_left.path(), "sled's snapshot");

    let models_left = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), models_left.path());
    remove_log_files(models_left.path());
    std::fs::remove_dir_all(models_left.path().join("journal")).unwrap();
    refused(models_left.path(), "the read models in `projections/`");

    // A new directory: the log's data file holds data as soon as the log
    // is open, before the read models can be made, so a start killed
    // before its first event is never taken for a lost log.
    let fresh = tempfile::tempdir().unwrap();
    let log = EventLog::open(LogConfig::new(fresh.path())).unwrap();
    let len = std::fs::metadata(fresh.path().join("db")).unwrap().len();
    assert!(len > 0, "a new log's data file is empty after its open");
    log.close().await;
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A damaged sled snapshot file: refused with a message that names the
/// snapshot and says to keep the directory as it is, never to move the
/// snapshot out. Moving it out anyway is refused before sled opens the
/// data file, which stays byte for byte as it was: sled 0.34 without its
/// snapshot rebuilds from the data file's start and zeroes what it cannot
/// chain (a probe lost a 32 MiB log that way, following the old advice).
/// A copy whose marker is removed still opens, for whoever tries that.
#[tokio::test]
async fn a_damaged_or_missing_snapshot_is_refused_without_touching_the_data_file() {
    let dir = tempfile::tempdir().unwrap();
    // sled writes its snapshot when it recovers: at the second open.
    write_events(dir.path(), 0, 40).await;
    write_events(dir.path(), 40, 50).await;
    assert!(dir
        .path()
        .join(eventlog::storage::SNAPSHOT_KEPT_FILE)
        .exists());
    let snapshot = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("snap."))
        })
        .expect("sled wrote a snapshot at the second open");
    let original = std::fs::read(&snapshot).unwrap();
    let mut bytes = original.clone();
    let middle = bytes.len() / 2;
    let end = (middle + 4).min(bytes.len());
    for b in &mut bytes[middle..end] {
        *b ^= 0xff;
    }
    std::fs::write(&snapshot, &bytes).unwrap();
    let err = EventLog::open(LogConfig::new(dir.path())).unwrap_err();
    assert!(err.is_damage(), "{err}");
    let message = err.to_string();
    let name = snapshot.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        message.contains(&name) && message.contains("do not move or delete"),
        "{message}"
    );
    assert!(!message.contains("backtrace"), "{message}");

    // Moved out: refused, and the data file is untouched.
    std::fs::rename(&snapshot, dir.path().join("moved-snapshot")).unwrap();
    let data = std::fs::read(dir.path().join("db")).unwrap();
    settle();
    let err = EventLog::open(LogConfig::new(dir.path())).unwrap_err();
    assert!(err.is_damage(), "{err}");
    assert!(
        err.to_string()
            .contains("snapshot (`snap.<lsn>`) is missing"),
        "{err}"
    );
    assert_eq!(std::fs::read(dir.path().join("db")).unwrap(), data);
    let verified = eventlog::verify_dir(dir.path(), &mut |_| {});
    assert!(verified.is_err(), "verify refuses it too");
    assert_eq!(std::fs::read(dir.path().join("db")).unwrap(), data);

    // The intact snapshot put back: every event is there.
    std::fs::write(&snapshot, &original).unwrap();
    settle();
    let log = EventLog::open(LogConfig::new(dir.path())).unwrap();
    assert_eq!(log.next_position(), 50);
    log.close().await;

    // On a copy without its snapshot and its marker, sled's rebuild runs
    // (a log this small has reused no segment).
    let copy = tempfile::tempdir().unwrap();
    common::copy_dir(dir.path(), copy.path());
    for entry in std::fs::read_dir(copy.path()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.starts_with("snap.")
            || name == eventlog::storage::SNAPSHOT_KEPT_FILE
            || name == "moved-snapshot"
        {
            std::fs::remove_file(copy.path().join(name)).unwrap();
        }
    }
    settle();
    let log = EventLog::open(LogConfig::new(copy.path())).unwrap();
    assert_eq!(log.next_position(), 50);
    log.close().await;
}

/// A snapshot sled was still writing when the process was killed
/// (`snap.<lsn>.generating`, torn) is not the log's damage: sled 0.34
/// takes it for its newest snapshot and refuses to open ("a checksum
/// failed"), which a SIGKILL during the projections' crash test hit. The
/// open sets it aside (sled rebuilds its snapshot from the data file) and
/// every event is there.
#[tokio::test]
async fn a_snapshot_torn_by_a_kill_while_sled_wrote_it_is_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    write_events(dir.path(), 0, 40).await;
    write_events(dir.path(), 40, 50).await;
    settle();
    // What a kill between sled's create and rename of a snapshot leaves:
    // a partial file under a name that sorts after every finished one.
    let torn = dir.path().join("snap.FFFFFFFFFFFFFFF0.generating");
    std::fs::write(&torn, b"partial snapshot bytes, no length, no crc").unwrap();
    let log = EventLog::open(LogConfig::new(dir.path())).unwrap();
    assert_eq!(log.next_position(), 50);
    log.close().await;
    assert!(!torn.exists(), "the torn snapshot was set aside");
}

/// A symbolic link where the log keeps a file of its own (`acked-head`, a
/// journal file) is refused at open, and what it points at is left as it
/// was: the log wrote its head through such a link, over any file.
#[tokio::test]
async fn a_link_in_place_of_a_file_of_the_log_is_refused_and_never_written_through() {
    for own in [
        std::path::PathBuf::from(ACKED_HEAD_FILE),
        Path::new("journal").join("journal-0"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("log");
        write_events(&dir, 0, 10).await;
        settle();
        let victim = tmp.path().join("victim.txt");
        std::fs::write(&victim, b"not the log's").unwrap();
        std::fs::remove_file(dir.join(&own)).unwrap();
        std::os::unix::fs::symlink(&victim, dir.join(&own)).unwrap();
        let refused = EventLog::open(LogConfig::new(&dir)).map(drop).unwrap_err();
        assert!(
            refused.to_string().contains("symbolic link"),
            "{own:?}: {refused}"
        );
        assert_eq!(std::fs::read(&victim).unwrap(), b"not the log's");
    }
}

/// A `journal` that is a file, or a journal file that is a link, is
/// refused by every opener, `verify_dir` included: the tool said "ok"
/// where the server refused to start.
#[tokio::test]
async fn a_journal_that_is_not_the_logs_own_directory_is_refused_by_every_reader() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    write_events(&dir, 0, 10).await;
    settle();
    let journal = dir.join("journal");
    let kept = tmp.path().join("journal-kept");
    std::fs::rename(&journal, &kept).unwrap();
    std::fs::write(&journal, b"not a directory").unwrap();
    let refused = verify_dir(&dir, &mut |_| {}).map(drop).unwrap_err();
    assert!(
        refused.to_string().contains("`journal` is a file"),
        "{refused}"
    );
    std::fs::remove_file(&journal).unwrap();
    std::fs::rename(&kept, &journal).unwrap();
    let target = tmp.path().join("elsewhere");
    std::fs::rename(journal.join("journal-1"), &target).unwrap();
    std::os::unix::fs::symlink(&target, journal.join("journal-1")).unwrap();
    let refused = verify_dir(&dir, &mut |_| {}).map(drop).unwrap_err();
    assert!(refused.to_string().contains("symbolic link"), "{refused}");
}
