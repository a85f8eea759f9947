//! `verify` on damaged files on disk (not through sled's API): a byte
//! flipped in sled's `db` file or in its `conf` is a finding (exit 1) that
//! names the position, or the file.

use std::path::Path;

use crate::common::{generated, generated_events, oms, with_raw_tree};

/// The stored bytes of the record at `position`, read from another copy of
/// the generated log (opening `dir` itself would make sled snapshot it).
fn stored_record(position: u64) -> Vec<u8> {
    let (_tmp, other) = generated();
    with_raw_tree(&other, |tree| {
        eventlog::pages::record_at(tree, position)
            .unwrap()
            .unwrap()
            .to_vec()
    })
}

/// Flips one byte inside every stored copy of the record at `position` in
/// the `db` file; returns how many copies there were.
fn flip_record_on_disk(dir: &Path, position: u64) -> usize {
    // 30 bytes that only this record holds: the end of its payload and the
    // start of its previous hash (the hash alone is also the end of the
    // record before it).
    let stored = stored_record(position);
    let needle = &stored[stored.len() - 70..stored.len() - 40];
    let path = dir.join("db");
    let mut bytes = std::fs::read(&path).unwrap();
    let hits: Vec<usize> = bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(at, _)| at)
        .collect();
    for at in &hits {
        bytes[at + 20] ^= 0x08;
    }
    std::fs::write(&path, bytes).unwrap();
    hits.len()
}

#[test]
fn a_byte_flipped_in_the_data_file_is_a_finding_that_names_a_position() {
    let (_tmp, dir) = generated();
    let target = generated_events() / 2;
    assert!(flip_record_on_disk(&dir, target) >= 1);
    let run = oms(&dir, &["verify", "--json"]);
    assert_eq!(run.code, 1, "{run:?}");
    let json = run.json();
    assert_eq!(json["ok"], false);
    let position = json["position"]
        .as_u64()
        .unwrap_or_else(|| panic!("{json}"));
    assert!(position <= target, "{json}");
    // The same error object as every other failure of the tool.
    assert_eq!(json["error"]["kind"], "damaged", "{json}");
    assert_eq!(json["error"]["exit_code"], 1, "{json}");
    assert_eq!(json["error"]["position"], position, "{json}");
    let run = oms(&dir, &["verify"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains(&format!("FAILED: log damaged at position {position}:")),
        "{}",
        run.stdout
    );
    // `verify --digest > digest.txt` must not store the failure as the
    // digest: nothing on stdout, the finding on stderr.
    let run = oms(&dir, &["verify", "--digest"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stdout, "", "{run:?}");
    assert!(run.stderr.contains("FAILED: log damaged"), "{run:?}");
}

#[test]
fn a_byte_flipped_after_a_restart_is_a_finding_too() {
    let (_tmp, dir) = generated();
    // A restart: sled snapshots the log. A failed checksum before the
    // snapshot in the segment sled replays makes it refuse to recover the
    // directory at all; anywhere else the record walk names the position.
    with_raw_tree(&dir, |_| ());
    let target = generated_events() / 2;
    assert!(flip_record_on_disk(&dir, target) >= 1);
    let run = oms(&dir, &["verify"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.starts_with("FAILED: ")
            && (run.stdout.contains("log damaged at position")
                || run.stdout.contains("sled refuses to recover it")),
        "{}",
        run.stdout
    );
}

#[test]
fn a_damaged_sled_conf_is_a_finding_that_names_the_file() {
    let (_tmp, dir) = generated();
    let conf = dir.join("conf");
    let mut bytes = std::fs::read(&conf).unwrap();
    bytes[15] ^= 0x01;
    std::fs::write(&conf, &bytes).unwrap();
    let run = oms(&dir, &["verify"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("sled configuration file")
            && run.stdout.contains(&conf.display().to_string())
            && run.stdout.contains("damaged"),
        "{}",
        run.stdout
    );
    let json = oms(&dir, &["verify", "--json"]).json();
    assert_eq!(json["ok"], false);
    // Other commands refuse it the same way.
    let run = oms(&dir, &["stats", "--json"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.json()["error"]["kind"], "damaged");
}

/// sled's recovery cuts the log at a damaged message it wrote since its
/// last snapshot; what is left is consistent with itself, so only the
/// acknowledged head shows the loss, and an export must not carry the
/// shorter log on as a sound one.
#[test]
fn an_export_that_fails_leaves_the_file_it_would_replace_as_it_was() {
    let (tmp, dir) = generated();
    let (_other_tmp, other) = generated();
    let backup = tmp.path().join("backup.oms-export");
    let run = oms(&other, &["export", "-o", backup.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run:?}");
    let before = std::fs::read(&backup).unwrap();
    assert!(flip_record_on_disk(&dir, generated_events() / 2) >= 1);
    let run = oms(&dir, &["export", "-o", backup.to_str().unwrap()]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("acknowledged events are missing"),
        "{run:?}"
    );
    assert!(
        std::fs::read(&backup).unwrap() == before,
        "the failed export replaced the earlier one"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().starts_with("backup"))
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
}

#[test]
fn reading_a_log_cut_short_of_its_acknowledged_head_warns_every_time() {
    let (_tmp, dir) = generated();
    assert!(flip_record_on_disk(&dir, generated_events() / 2) >= 1);
    for args in [
        &["dump", "--quiet"][..],
        &["stats"][..],
        &["as-of", "quote-none", "--position", "0"][..],
    ] {
        let run = oms(&dir, args);
        assert!(
            run.stderr.contains("warning: log damaged at position")
                && run.stderr.contains("the log ends here but positions up to")
                && run.stderr.contains("oms-replay verify"),
            "{args:?}: {}",
            run.stderr
        );
    }
}

/// sled's data file gone, or a directory in its place, while `acked-head`
/// says events were acknowledged: a finding (exit 1) naming the file, as
/// the server's refusal to start is. It was "no event log here" (exit 2),
/// which contradicted the server that sent the operator to `verify`.
#[test]
fn a_data_file_that_is_gone_or_not_a_file_is_a_finding() {
    for directory_instead in [false, true] {
        let (_tmp, dir) = generated();
        assert!(dir.join(eventlog::ACKED_HEAD_FILE).exists());
        std::fs::remove_file(dir.join("db")).unwrap();
        if directory_instead {
            std::fs::create_dir(dir.join("db")).unwrap();
        }
        for command in [&["verify", "--json"][..], &["stats", "--json"]] {
            let run = oms(&dir, command);
            assert_eq!(run.code, 1, "{directory_instead} {command:?}: {run:?}");
            let error = &run.json()["error"];
            assert_eq!(error["kind"], "damaged", "{run:?}");
            assert!(
                error["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("`db`")),
                "{run:?}"
            );
        }
    }
}

/// A sled database that holds other data and no log (the read models'
/// `projections/`, named by mistake) is refused as not an event log
/// (exit 2) and left as it was; it was taken for an empty, clean log.
#[test]
fn a_database_that_holds_no_log_is_not_taken_for_an_empty_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("not-a-log");
    {
        let db = sled::open(&dir).unwrap();
        db.open_tree("quotes").unwrap().insert("k", "v").unwrap();
        db.flush().unwrap();
    }
    for command in [&["verify"][..], &["stats"], &["dump"]] {
        let run = oms(&dir, command);
        assert_eq!(run.code, 2, "{command:?}: {run:?}");
        assert!(run.stderr.contains("not an event log"), "{run:?}");
    }
    let db = sled::open(&dir).unwrap();
    assert!(!db
        .tree_names()
        .iter()
        .any(|name| name.as_ref() == eventlog::keyspace::LOG_TREE.as_bytes()));
}

/// `consumers` on a directory whose read models' database is damaged
/// names that damage (exit 1) and changes nothing. It used to set the
/// database aside as the server's repair does, without a word, and report
/// empty read models with no error.
#[test]
fn consumers_names_a_damaged_projections_database_and_moves_nothing() {
    // A probe removed the data file and kept the rest: `consumers` said
    // "no projections" (exit 0) where the server finds damage.
    let (_tmp, dir) = generated();
    assert_eq!(oms(&dir, &["rebuild", "--all"]).code, 0);
    // sled keeps its snapshot when the database is opened again.
    assert_eq!(oms(&dir, &["consumers"]).code, 0);
    std::fs::remove_file(dir.join(eventlog::storage::PROJECTION_DIR).join("db")).unwrap();
    let run = oms(&dir, &["consumers", "--json"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.json()["error"]["kind"], "damaged", "{run:?}");
    // The read models' remedy only, not the log's (a re-probe).
    let message = run.json()["error"]["message"].to_string();
    assert!(message.contains("rebuild --all"), "{message}");
    assert!(
        !message.contains("from a backup") && !message.contains("oms-replay import"),
        "{message}"
    );

    let (_tmp, dir) = generated();
    let rebuilt = oms(&dir, &["rebuild", "--all"]);
    assert_eq!(rebuilt.code, 0, "{rebuilt:?}");
    let conf = dir.join(eventlog::storage::PROJECTION_DIR).join("conf");
    let mut bytes = std::fs::read(&conf).unwrap();
    bytes[0] ^= 0x20;
    std::fs::write(&conf, &bytes).unwrap();
    let run = oms(&dir, &["consumers", "--json"]);
    assert_eq!(run.code, 1, "{run:?}");
    let error = &run.json()["error"];
    assert_eq!(error["kind"], "damaged", "{run:?}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("read models' database")),
        "{run:?}"
    );
    assert_eq!(std::fs::read(&conf).unwrap(), bytes, "nothing was changed");
    let aside = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .any(|entry| entry.file_name().to_string_lossy().contains(".damaged-"));
    assert!(!aside, "nothing was set aside");
}

/// `rebuild` over a damaged read-models database sets it aside (as the
/// server's start does) and says so on stderr: a probe had the database
/// moved with no word, the library's warning lost for want of a
/// subscriber.
#[test]
fn rebuild_over_a_damaged_projections_database_says_it_set_it_aside() {
    let (_tmp, dir) = generated();
    assert_eq!(oms(&dir, &["rebuild", "--all"]).code, 0);
    let conf = dir.join(eventlog::storage::PROJECTION_DIR).join("conf");
    let mut bytes = std::fs::read(&conf).unwrap();
    bytes[0] ^= 0x20;
    std::fs::write(&conf, &bytes).unwrap();
    let run = oms(&dir, &["rebuild", "quotes"]);
    assert_eq!(run.code, 0, "{run:?}");
    let aside = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .find(|entry| entry.file_name().to_string_lossy().contains(".damaged-"))
        .map(|entry| entry.file_name().to_string_lossy().into_owned());
    let aside = aside.expect("the damaged database was set aside");
    assert!(
        run.stderr.contains("WARN")
            && run.stderr.contains("set aside")
            && run.stderr.contains(&aside),
        "{run:?}"
    );
}

/// A file of the log's own replaced by a symbolic link, a directory or
/// (for the journal's directory) a file: `verify` and the server's open
/// give one verdict, damage naming the file (exit 1). `verify` passed a
/// linked `acked-head` and called a directory in its place "missing",
/// while the server refused both; a directory in place of `conf` or a
/// journal file was an I/O error (exit 4).
#[test]
fn a_file_of_the_logs_own_replaced_by_a_link_or_a_directory_is_a_finding() {
    type Damage = fn(&Path);
    let link = |path: &Path| {
        let aside = path.with_extension("aside");
        std::fs::rename(path, &aside).unwrap();
        std::os::unix::fs::symlink(&aside, path).unwrap();
    };
    let directory = |path: &Path| {
        std::fs::remove_file(path).unwrap();
        std::fs::create_dir(path).unwrap();
    };
    let file = |path: &Path| {
        if path.exists() {
            std::fs::remove_dir_all(path).unwrap();
        }
        std::fs::write(path, b"").unwrap();
    };
    let cases: [(&str, Damage, &str); 8] = [
        ("acked-head", link, "`acked-head` is a symbolic link"),
        ("acked-head", directory, "`acked-head` is a directory"),
        ("conf", directory, "`conf` is a directory"),
        (
            "journal/journal-0",
            directory,
            "`journal/journal-0` is a directory",
        ),
        ("journal", file, "`journal` is a file"),
        ("projections", file, "`projections` is a file"),
        ("db", link, "`db` is a symbolic link"),
        ("blobs", file, "`blobs` is a file"),
    ];
    for (name, damage, said) in cases {
        let (_tmp, dir) = generated();
        let path = dir.join(name);
        // The read models' directory comes with the server's first start,
        // sled's blob directory with its first blob.
        assert!(
            path.exists() || ["projections", "blobs"].contains(&name),
            "{name} is there before"
        );
        damage(&path);
        let run = oms(&dir, &["verify", "--json"]);
        assert_eq!(run.code, 1, "{name}: {run:?}");
        let error = &run.json()["error"];
        assert_eq!(error["kind"], "damaged", "{name}: {run:?}");
        assert!(
            error["message"].as_str().is_some_and(|m| m.contains(said)),
            "{name}: {run:?}"
        );
        let opened = eventlog::EventLog::open(eventlog::LogConfig::new(&dir));
        match opened {
            Err(eventlog::LogError::DamagedStorage { detail, .. }) => {
                assert!(detail.contains(said), "{name}: {detail}");
                // The read models are made again; the log's files are not.
                let remedy = if name == "projections" {
                    "rebuild --all"
                } else {
                    "from a backup"
                };
                assert!(detail.contains(remedy), "{name}: {detail}");
            }
            Err(other) => panic!("{name}: the server's open failed otherwise: {other}"),
            Ok(_) => panic!("{name}: the server's open took the directory"),
        }
    }
}

/// Runs the binary on `dir` with stdout a pipe whose reader has already
/// gone and stderr `stderr`; returns its exit code.
fn exit_code_with_output_gone(dir: &Path, args: &[&str], stderr: std::process::Stdio) -> i32 {
    let mut child = crate::common::oms_command(dir, args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait().unwrap().code().unwrap_or(-1)
}

/// A verdict reaches the exit code even when its report cannot be
/// written. A probe's `oms-replay verify | true` on a damaged log exited
/// 0 (the closed pipe was taken for a reader that had seen enough), and a
/// refusal with stderr full exited 101 (a panic printing it).
#[test]
fn a_finding_or_a_refusal_keeps_its_exit_code_when_the_output_cannot_be_written() {
    let (_tmp, dir) = generated();
    assert!(flip_record_on_disk(&dir, generated_events() / 2) >= 1);
    let dev_full = || std::process::Stdio::from(std::fs::File::create("/dev/full").unwrap());
    for args in [&["verify"][..], &["verify", "--json"][..]] {
        let code = exit_code_with_output_gone(&dir, args, std::process::Stdio::null());
        assert_eq!(code, 1, "{args:?} with its reader gone");
        let code = exit_code_with_output_gone(&dir, args, dev_full());
        assert_eq!(code, 1, "{args:?} with stderr full");
    }
    // Standard output full (a re-probe): the finding still exits 1 and is
    // said on stderr.
    for args in [&["verify"][..], &["verify", "--json"][..]] {
        let run = crate::common::oms_command(&dir, args)
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(
            run.status.code(),
            Some(1),
            "{args:?} with stdout full: {stderr}"
        );
        assert!(
            stderr.contains("FAILED: log damaged at position"),
            "{args:?}: {stderr}"
        );
    }
    let missing = dir.join("missing");
    assert_eq!(
        exit_code_with_output_gone(&missing, &["stats"], dev_full()),
        2
    );
    assert_eq!(
        exit_code_with_output_gone(&dir, &["verify", "--no-such-flag", "--json"], dev_full()),
        2
    );
}

/// sled's snapshot (`snap.<lsn>`) replaced by a directory is damage that
/// names it, for `verify` and for the server's open alike; a probe got an
/// I/O error naming no file (exit 4) from the tool and an unnamed storage
/// error from the server.
#[test]
fn a_directory_in_place_of_sleds_snapshot_is_a_finding_that_names_it() {
    let (_tmp, dir) = generated();
    // sled writes its snapshot when a database is opened.
    crate::common::with_log(&dir, |_| ());
    let snapshot = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|name| name.starts_with("snap."))
        .expect("sled kept a snapshot");
    std::fs::remove_file(dir.join(&snapshot)).unwrap();
    std::fs::create_dir(dir.join(&snapshot)).unwrap();
    let said = format!("`{snapshot}` is a directory");
    let run = oms(&dir, &["verify", "--json"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&said)),
        "{run:?}"
    );
    match eventlog::EventLog::open(eventlog::LogConfig::new(&dir)) {
        Err(eventlog::LogError::DamagedStorage { detail, .. }) => {
            assert!(detail.contains(&said), "{detail}");
        }
        other => panic!("{:?}", other.map(|_| "opened")),
    }
}

/// A command that changes the directory and then cannot write its report
/// (standard output full) says the change was made and exits 0: a
/// re-probe's import answered exit 4 "writing output", and an operator
/// who took that for a failed import and ran it again was refused.
#[test]
fn a_change_made_whose_report_cannot_be_written_says_it_was_made() {
    let (_tmp, dir) = generated();
    let run = crate::common::oms_command(&dir, &["rebuild", "--all"])
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("the change was made"), "{stderr}");
    let consumers = oms(&dir, &["consumers", "--json"]);
    assert_eq!(consumers.code, 0, "{consumers:?}");
    assert_eq!(consumers.json()["projectors"][0]["lag"], 0, "{consumers:?}");
}
