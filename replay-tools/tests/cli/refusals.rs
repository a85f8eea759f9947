//! What an auditor might do by mistake, or find in a damaged directory,
//! and the answer they get: a directory an import did not finish is never
//! exported as a sound log, an export never lands on the log's own files,
//! an export file with anything after its last record is refused, a
//! damaged acknowledged-head file is reported, and a time no RFC 3339
//! instant can name, or a time range that holds none, is a usage error,
//! not a panic or an empty answer; an import of a file that is missing or
//! a directory is a usage error.

use crate::common::{copy_dir, generated, generated_events, oms, with_raw_tree};

#[test]
fn a_directory_an_import_did_not_finish_is_not_exported_and_readers_say_so() {
    let (tmp, dir) = generated();
    let unfinished = tmp.path().join("unfinished");
    copy_dir(&dir, &unfinished);
    // What an import killed part-way leaves: its marker, removed last.
    with_raw_tree(&unfinished, |tree| {
        tree.insert(eventlog::keyspace::RESTORE_MARKER, b"".as_slice())
            .unwrap()
    });
    let file = tmp.path().join("short.oms-export");
    std::fs::write(&file, "an earlier export\n").unwrap();
    let run = oms(&unfinished, &["export", "-o", file.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("did not finish") || run.stderr.contains("did not finish"),
        "{run:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "an earlier export\n",
        "the earlier export was replaced"
    );
    for read in [&["dump"][..], &["stats"][..]] {
        let run = oms(&unfinished, read);
        assert!(
            run.stderr.contains("warning") && run.stderr.contains("did not finish"),
            "{read:?}: {run:?}"
        );
    }
}

/// An import killed at any point before it finished, even while sled was
/// creating its files (before any record or marker key could be written),
/// leaves its marker file: every command refuses the directory, as the
/// server does. Killed in its first milliseconds, an import used to leave
/// an empty log that verified "ok" and that a server would have started
/// afresh on.
#[test]
fn a_directory_holding_the_restore_marker_file_is_refused_by_every_opener() {
    let (tmp, dir) = generated();
    let empty = tmp.path().join("killed-early");
    std::fs::create_dir(&empty).unwrap();
    let with_log = tmp.path().join("killed-late");
    copy_dir(&dir, &with_log);
    for killed in [&empty, &with_log] {
        std::fs::write(killed.join(eventlog::restore::UNFINISHED_FILE), b"").unwrap();
        for command in [
            &["verify"][..],
            &["dump"],
            &["stats"],
            &["export", "-o", "-"],
        ] {
            let run = oms(killed, command);
            assert_eq!(run.code, 1, "{command:?}: {run:?}");
            assert!(
                (run.stdout.clone() + &run.stderr)
                    .contains("a restore into this directory did not finish"),
                "{command:?}: {run:?}"
            );
        }
        let opened = eventlog::EventLog::open(eventlog::LogConfig::new(killed));
        assert!(
            matches!(
                opened,
                Err(eventlog::LogError::Inconsistent { position: 0, .. })
            ),
            "{}",
            killed.display()
        );
    }
}

#[test]
fn an_export_into_the_data_directory_is_refused_before_anything_is_written() {
    let (_tmp, dir) = generated();
    let db = dir.join("db");
    let before = std::fs::read(&db).unwrap();
    for target in [
        db.clone(),
        dir.join("..")
            .join(dir.file_name().unwrap())
            .join("x.export"),
    ] {
        let run = oms(&dir, &["export", "-o", target.to_str().unwrap()]);
        assert_eq!(run.code, 2, "{target:?}: {run:?}");
        assert!(run.stderr.contains("inside the data directory"), "{run:?}");
    }
    assert!(
        std::fs::read(&db).unwrap() == before,
        "the log's db file changed"
    );
    assert!(!dir.join("x.export").exists());
    assert_eq!(oms(&dir, &["verify"]).code, 0);
}

#[test]
fn an_export_with_anything_after_its_last_record_or_bytes_that_are_not_text_is_refused() {
    let (tmp, dir) = generated();
    let file = tmp.path().join("log.oms-export");
    assert_eq!(oms(&dir, &["export", "-o", file.to_str().unwrap()]).code, 0);
    let text = std::fs::read(&file).unwrap();
    let mut n = 0;
    for tail in [&b"\n\ngarbage\n"[..], b"\n\n\n", b"\xff\xfe\n"] {
        n += 1;
        let changed = tmp.path().join(format!("changed-{n}.oms-export"));
        let mut bytes = text.clone();
        bytes.extend_from_slice(tail);
        std::fs::write(&changed, bytes).unwrap();
        let target = tmp.path().join(format!("restored-{n}"));
        let run = oms(&target, &["import", changed.to_str().unwrap()]);
        if tail == b"\n\n\n" {
            assert_eq!(run.code, 0, "blank lines at the end: {run:?}");
        } else {
            assert_eq!(run.code, 2, "{tail:?}: {run:?}");
            assert!(
                !target.join("db").exists(),
                "{tail:?}: the refused import left a log"
            );
        }
    }
}

#[test]
fn verify_reports_an_acknowledged_head_file_it_cannot_read() {
    let (_tmp, dir) = generated();
    let acked = dir.join(eventlog::ACKED_HEAD_FILE);
    assert!(acked.exists());
    let clean = oms(&dir, &["verify", "--json"]);
    assert_eq!(clean.code, 0, "{clean:?}");
    assert!(clean.json().get("warning").is_none(), "{clean:?}");
    let mut bytes = std::fs::read(&acked).unwrap();
    bytes[20] ^= 0xFF;
    std::fs::write(&acked, bytes).unwrap();
    let run = oms(&dir, &["verify", "--json"]);
    assert_eq!(run.code, 0, "the log itself checks out: {run:?}");
    assert!(run.stderr.contains("acked-head"), "{run:?}");
    assert!(
        run.json()["warning"]
            .as_str()
            .unwrap()
            .contains("unreadable"),
        "{run:?}"
    );
    std::fs::remove_file(&acked).unwrap();
    let run = oms(&dir, &["verify"]);
    assert!(run.stderr.contains("missing"), "{run:?}");
    // Something else in its place is not "missing": it is damage, as the
    // server says (see `damage::a_file_of_the_logs_own_replaced_by_...`).
    std::fs::create_dir(&acked).unwrap();
    let run = oms(&dir, &["verify"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(!run.stderr.contains("missing"), "{run:?}");
    assert!(
        run.stdout.contains("`acked-head` is a directory"),
        "{run:?}"
    );
}

/// Every command warns when the acknowledged-head check cannot be made,
/// not only `verify`: `export` wrote the log out as sound, and the
/// commands that open the log (`consumers`, `rebuild`, `reset-consumer`)
/// rewrote the damaged file without a word, so a `verify` after them
/// found nothing to warn about.
#[test]
fn every_command_warns_of_an_acknowledged_head_file_it_cannot_read() {
    let (tmp, dir) = generated();
    let acked = dir.join(eventlog::ACKED_HEAD_FILE);
    let mut bytes = std::fs::read(&acked).unwrap();
    bytes[20] ^= 0xFF;
    std::fs::write(&acked, bytes).unwrap();
    let export = tmp.path().join("out.oms-export");
    let export = export.to_str().unwrap();
    for args in [
        &["export", "-o", export][..],
        &["trace", "corr-0"],
        &["consumers"],
    ] {
        let run = oms(&dir, args);
        assert!(
            run.stderr.contains("acked-head") && run.stderr.contains("unreadable"),
            "{args:?}: {run:?}"
        );
    }
}

#[test]
fn a_time_past_year_9999_is_a_usage_error_and_an_offset_is_understood() {
    let (_tmp, dir) = generated();
    let stream = oms(&dir, &["dump", "--json", "--limit", "1"]).json_lines()[0]["stream_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for late in ["253402300800000", "9223372036854775807"] {
        let run = oms(&dir, &["as-of", &stream, "--time", late]);
        assert_eq!(run.code, 2, "{late}: {run:?}");
        assert!(!run.stderr.contains("panicked"), "{run:?}");
    }
    let utc = oms(&dir, &["dump", "--since", "2000-01-01T00:00:00Z"]);
    let offset = oms(&dir, &["dump", "--since", "2000-01-01T01:00:00+01:00"]);
    assert_eq!(utc.code, 0, "{utc:?}");
    assert_eq!(offset.code, 0, "{offset:?}");
    assert_eq!(utc.stdout, offset.stdout);
    // A time range that holds no instant (`--until` is exclusive) is a
    // mistake, not an empty answer.
    for (since, until) in [("2000-01-02", "2000-01-01"), ("2000-01-01", "2000-01-01")] {
        let run = oms(&dir, &["dump", "--since", since, "--until", until]);
        assert_eq!(run.code, 2, "{since}..{until}: {run:?}");
        assert!(run.stderr.contains("--since"), "{run:?}");
    }
}

/// A change made to one line of an export.
type Change = fn(&mut serde_json::Value);

#[test]
fn an_idempotency_record_that_does_not_name_one_append_or_a_wrong_head_position_is_refused() {
    let (tmp, dir) = generated();
    let file = tmp.path().join("log.oms-export");
    assert_eq!(oms(&dir, &["export", "-o", file.to_str().unwrap()]).code, 0);
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let idempotency = lines
        .iter()
        .position(|l| l.contains("\"idempotency\""))
        .expect("an idempotency line");
    let changes: [(&str, Change); 4] = [
        ("stream version", |v| v["stream_version"] = 0.into()),
        ("first position", |v| v["first_position"] = 0.into()),
        ("last position", |v| {
            v["last_position"] = (v["last_position"].as_u64().unwrap() + 1).into();
        }),
        ("head position", |_| {}),
    ];
    for (n, (what, change)) in changes.iter().enumerate() {
        let mut changed: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
        if *what == "head position" {
            let mut header: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
            header["head_position"] = 5.into();
            changed[0] = header.to_string();
        } else {
            let mut line: serde_json::Value = serde_json::from_str(lines[idempotency]).unwrap();
            let before = line.clone();
            change(&mut line);
            if line == before {
                continue; // the record already had that value
            }
            changed[idempotency] = line.to_string();
        }
        let path = tmp.path().join(format!("changed-{n}.oms-export"));
        std::fs::write(&path, changed.join("\n") + "\n").unwrap();
        let target = tmp.path().join(format!("restored-{n}"));
        let run = oms(&target, &["import", path.to_str().unwrap()]);
        assert_eq!(run.code, 2, "{what}: {run:?}");
        assert!(
            !target.join("db").exists(),
            "{what}: the refused import left a log"
        );
    }
}

#[test]
fn a_stream_named_twice_is_dumped_once_and_a_limit_of_zero_is_a_usage_error() {
    let (_tmp, dir) = generated();
    let first = oms(&dir, &["dump", "--json", "--limit", "1"]).json_lines()[0]["stream_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let once = oms(&dir, &["dump", "--stream", &first]);
    let twice = oms(&dir, &["dump", "--stream", &first, "--stream", &first]);
    assert_eq!(once.code, 0, "{once:?}");
    assert!(!once.stdout.is_empty());
    assert_eq!(twice.stdout, once.stdout);
    let zero = oms(&dir, &["dump", "--limit", "0"]);
    assert_eq!(zero.code, 2, "{zero:?}");
    assert!(zero.stdout.is_empty(), "{zero:?}");
    // `--json` promises JSON for errors too, also for one the command-line
    // parser refuses; after `--` it is a value, not the flag.
    for args in [
        &["--json", "dump", "--limit", "0"][..],
        &["dump", "--from", "abc", "--json"][..],
        &["--json", "no-such-command"][..],
    ] {
        let run = oms(&dir, args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        let json = run.json();
        assert_eq!(json["ok"], false, "{args:?}: {json}");
        assert_eq!(json["error"]["kind"], "usage", "{args:?}: {json}");
        assert_eq!(json["error"]["exit_code"], 2, "{args:?}: {json}");
        assert!(!run.stderr.is_empty(), "{args:?}: {run:?}");
    }
    let value = oms(&dir, &["trace", "--", "--json", "--bogus"]);
    assert_eq!(value.code, 2, "{value:?}");
    assert!(value.stdout.is_empty(), "{value:?}");
    // Refused without naming a --to nobody gave.
    let past = oms(&dir, &["dump", "--from", &u64::MAX.to_string()]);
    assert_eq!(past.code, 2, "{past:?}");
    assert!(!past.stderr.contains("--to"), "{past:?}");
}

#[test]
fn idempotency_records_changed_added_or_removed_are_refused_by_the_headers_digest() {
    let (tmp, dir) = generated();
    let file = tmp.path().join("log.oms-export");
    assert_eq!(oms(&dir, &["export", "-o", file.to_str().unwrap()]).code, 0);
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let first_idem = lines
        .iter()
        .position(|l| l.contains("\"idempotency\""))
        .expect("an idempotency line");
    let header: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    let records = header["idempotency_records"].as_u64().unwrap() as usize;

    // A request hash edited in place: every count and position still holds.
    let mut edited = lines.clone();
    let mut line: serde_json::Value = serde_json::from_str(&edited[first_idem]).unwrap();
    let hash = line["request_hash"].as_str().unwrap().to_owned();
    let flipped = if hash.starts_with('0') { "1" } else { "0" };
    line["request_hash"] = format!("{flipped}{}", &hash[1..]).into();
    edited[first_idem] = line.to_string();
    // Every idempotency line gone, the header's count set to 0 to match.
    let mut emptied: Vec<String> = lines[..first_idem].to_vec();
    let mut zero = header.clone();
    zero["idempotency_records"] = 0.into();
    emptied[0] = zero.to_string();
    emptied.extend(lines[first_idem + records..].iter().cloned());
    for (what, changed) in [("edited", edited), ("emptied", emptied)] {
        let path = tmp.path().join(format!("{what}.oms-export"));
        std::fs::write(&path, changed.join("\n") + "\n").unwrap();
        let target = tmp.path().join(format!("restored-{what}"));
        let run = oms(&target, &["import", path.to_str().unwrap()]);
        assert_eq!(run.code, 2, "{what}: {run:?}");
        assert!(run.stderr.contains("idempotency_sha256"), "{what}: {run:?}");
        assert!(
            !target.join("db").exists(),
            "{what}: the refused import left a log"
        );
    }

    // A version 1 file (no digest) still imports.
    let mut v1 = header.clone();
    v1["export_version"] = 1.into();
    v1.as_object_mut().unwrap().remove("idempotency_sha256");
    let mut old = lines.clone();
    old[0] = v1.to_string();
    let path = tmp.path().join("v1.oms-export");
    std::fs::write(&path, old.join("\n") + "\n").unwrap();
    let run = oms(
        &tmp.path().join("restored-v1"),
        &["import", path.to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn an_import_of_a_file_that_is_missing_or_a_directory_is_a_usage_error_that_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such.oms-export");
    let directory = tmp.path().join("a-directory");
    std::fs::create_dir(&directory).unwrap();
    for (file, words) in [(&missing, "no such file"), (&directory, "is a directory")] {
        let target = tmp.path().join("restored");
        let run = oms(&target, &["import", file.to_str().unwrap()]);
        assert_eq!(run.code, 2, "{file:?}: {run:?}");
        assert!(run.stderr.contains(words), "{file:?}: {run:?}");
        assert!(
            !target.exists(),
            "{file:?}: the refused import left {target:?}"
        );
    }
}

/// A file given as the data directory is a usage error (exit 2) naming it,
/// for every command: it was exit 4, an I/O error `Not a directory (os
/// error 20)` on a path inside it.
#[test]
fn a_data_directory_that_is_a_file_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("data");
    std::fs::write(&file, "not a directory").unwrap();
    for command in [
        &["verify"][..],
        &["dump"][..],
        &["stats"][..],
        &["consumers"][..],
        &["rebuild", "--all"][..],
        &["import", "-"][..],
    ] {
        let run = oms(&file, command);
        assert_eq!(run.code, 2, "{command:?}: {run:?}");
        assert!(
            run.stderr.contains("is a file, not a data directory"),
            "{command:?}: {run:?}"
        );
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a directory");
    // A link to nothing: the import said `File exists (os error 17)`, exit 4.
    let dangling = tmp.path().join("dangling");
    std::os::unix::fs::symlink(tmp.path().join("nowhere"), &dangling).unwrap();
    let (_source_tmp, source) = generated();
    let export = tmp.path().join("log.oms-export");
    let exported = oms(&source, &["export", "--output", export.to_str().unwrap()]);
    assert_eq!(exported.code, 0, "{exported:?}");
    for command in [&["import", export.to_str().unwrap()][..], &["verify"][..]] {
        let run = oms(&dangling, command);
        assert_eq!(run.code, 2, "{command:?}: {run:?}");
        assert!(
            run.stderr.contains("is a link to nothing"),
            "{command:?}: {run:?}"
        );
    }
}

/// A line longer than any an export writes is refused once it passes that
/// length, so memory stays bounded: the whole line used to be read first
/// (`/dev/zero`, whose NUL bytes are text, grew to 4 GB in 7 s and never
/// ended).
#[test]
fn an_import_line_longer_than_an_export_writes_is_refused_without_reading_it_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let long = tmp.path().join("long.oms-export");
    std::fs::write(&long, vec![b'x'; 8 << 20]).unwrap();
    for input in [long.to_str().unwrap(), "/dev/zero"] {
        let target = tmp.path().join("restored");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_oms-replay"))
            .arg("--data-dir")
            .arg(&target)
            .args(["import", input])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A watchdog, not a timing claim: the old build never ended on
        // /dev/zero.
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if started.elapsed() > std::time::Duration::from_secs(120) {
                child.kill().unwrap();
                child.wait().unwrap();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        let status = status.unwrap_or_else(|| panic!("{input}: still reading line 1 after 120 s"));
        assert_eq!(status.code(), Some(2), "{input}: {stderr}");
        assert!(
            stderr.contains("line 1") && stderr.contains("longer than"),
            "{input}: {stderr}"
        );
        assert!(
            !target.exists(),
            "{input}: the refused import left {target:?}"
        );
    }
}

/// An id no event can carry (a control or invisible character, more than
/// the log holds) is refused before anything is read, and shown escaped:
/// `as-of` and `trace` answered "no stream ..." with the raw escape
/// sequences and U+202E of their argument on the terminal.
#[test]
fn a_hostile_id_is_refused_and_shown_escaped_by_every_reader() {
    let (_tmp, dir) = generated();
    let long_stream = format!("quote-{}", "a".repeat(10_240));
    let long_correlation = "c".repeat(10_240);
    for args in [
        vec!["as-of", "quote-\u{1b}[2J\u{1b}[31mRED\u{7}"],
        vec!["as-of", "quote-q\u{202e}1"],
        vec!["as-of", &long_stream],
        vec!["trace", "demo:\u{1b}[31mRED\u{202e}"],
        vec!["trace", &long_correlation],
        vec!["trace", ""],
        vec!["dump", "--correlation", "demo:c\u{1b}[31m"],
        vec!["dump", "--stream", "quote-\u{1b}[31m"],
    ] {
        let run = oms(&dir, &args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains("is not a stream id")
                || run.stderr.contains("is not a correlation id"),
            "{args:?}: {run:?}"
        );
        assert!(
            !run.stderr.contains(['\u{1b}', '\u{7}', '\u{202e}']),
            "{args:?}: raw control characters reach the terminal: {run:?}"
        );
        assert!(
            run.stderr.len() < 2_000,
            "{args:?}: the whole id is echoed: {run:?}"
        );
    }
}

/// A `--type` no event can have is a usage error naming the types (and
/// the one meant, when only its case is wrong): a typo used to dump
/// nothing and exit 0, as if no such events had happened.
#[test]
fn an_unknown_event_type_is_refused_naming_the_one_meant() {
    let (_tmp, dir) = generated();
    let run = oms(&dir, &["dump", "--type", "quotecreated"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("did you mean QuoteCreated"), "{run:?}");
    let run = oms(&dir, &["dump", "--type", "NoSuchEvent"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("QuoteCreated, "),
        "the types are listed: {run:?}"
    );
    let run = oms(&dir, &["dump", "--type", "QuoteCreated", "--limit", "1"]);
    assert_eq!(run.code, 0, "{run:?}");
}

/// A stopped data directory on a read-only mount (a forensic copy) is
/// refused naming the directory and the way out: sled opens its data file
/// for writing even to read it. `verify` said only `storage error: IO
/// error: Read-only file system (os error 30)` (a probe). Needs root for
/// the bind mount, as the suite's other mounts do.
#[test]
fn a_data_directory_on_a_read_only_mount_is_refused_with_the_way_out() {
    let (tmp, dir) = generated();
    let mounted = tmp.path().join("read-only");
    std::fs::create_dir(&mounted).unwrap();
    let mount = |args: &[&str]| {
        let status = std::process::Command::new("mount")
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "mount {args:?} needs root: {status}");
    };
    let (from, to) = (dir.to_str().unwrap(), mounted.to_str().unwrap());
    mount(&["--bind", from, to]);
    struct Unmount<'a>(&'a str);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(to);
    mount(&["-o", "remount,bind,ro", to]);
    for command in [&["verify"][..], &["stats"], &["dump", "--limit", "1"]] {
        let run = oms(&mounted, command);
        assert_eq!(run.code, 4, "{command:?}: {run:?}");
        assert!(
            run.stderr.contains(&format!("{}", mounted.display()))
                && run.stderr.contains("cannot be opened for writing")
                && run.stderr.contains("cp -a"),
            "{command:?}: {run:?}"
        );
    }
    drop(_unmount);
    assert_eq!(oms(&dir, &["verify"]).code, 0, "the copy itself is sound");
}

/// An export whose header counts more events than it holds, or that gives
/// an idempotency record twice, is refused naming the line and what is
/// wrong with it: the first said "bad event line: missing field
/// `position`", the second named no line at all.
#[test]
fn an_export_with_too_few_events_or_a_record_given_twice_names_its_line() {
    let (tmp, dir) = generated();
    let file = tmp.path().join("log.oms-export");
    assert_eq!(oms(&dir, &["export", "-o", file.to_str().unwrap()]).code, 0);
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let events = generated_events();

    let mut header: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    header["events"] = (events + 1).into();
    header["head_position"] = events.into();
    let mut more = lines.clone();
    more[0] = header.to_string();
    let first_idempotency = lines
        .iter()
        .position(|l| l.contains("\"idempotency\""))
        .expect("an idempotency line");
    let mut twice = lines.clone();
    twice.insert(first_idempotency + 1, lines[first_idempotency].clone());
    let mut header: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    header["idempotency_records"] = (header["idempotency_records"].as_u64().unwrap() + 1).into();
    twice[0] = header.to_string();

    for (n, (changed, said)) in [
        (more, format!("an idempotency record after {events} events")),
        (twice, "is given twice".to_owned()),
    ]
    .into_iter()
    .enumerate()
    {
        let path = tmp.path().join(format!("changed-{n}.oms-export"));
        std::fs::write(&path, changed.join("\n") + "\n").unwrap();
        let run = oms(
            &tmp.path().join(format!("restored-{n}")),
            &["import", path.to_str().unwrap()],
        );
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains(&said), "{said}: {run:?}");
        assert!(run.stderr.contains("line "), "{run:?}");
    }
}

/// Odd arguments are usage errors that say what is wrong: a directory as
/// the export file (it was an I/O error, exit 4), a digest position past
/// any (it was "not a number"); a side-effect consumer named twice is
/// one consumer.
#[test]
fn odd_arguments_say_what_is_wrong_with_them() {
    let (tmp, dir) = generated();
    let run = oms(&dir, &["export", "-o", tmp.path().to_str().unwrap()]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("is a directory"), "{run:?}");
    let run = oms(
        &dir,
        &[
            "verify",
            "--against",
            &format!("99999999999999999999:{}", "0".repeat(64)),
        ],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("past any position"), "{run:?}");
    let file = tmp.path().join("log.oms-export");
    assert_eq!(oms(&dir, &["export", "-o", file.to_str().unwrap()]).code, 0);
    let run = oms(
        &tmp.path().join("restored"),
        &[
            "import",
            file.to_str().unwrap(),
            "--side-effect-consumer",
            "handoff-dispatcher",
            "--side-effect-consumer",
            "handoff-dispatcher",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout.matches("handoff-dispatcher").count(),
        1,
        "{run:?}"
    );
}

/// A file name the filesystem takes is taken for an export, however close
/// to its limit (the partial file beside it used the whole name and
/// failed with "File name too long" naming a file nobody asked for), and
/// an unknown side-effect consumer is shown cut short, as every other
/// argument is (a probe).
#[test]
fn a_long_export_name_is_written_and_a_long_consumer_name_shown_short() {
    let (tmp, dir) = generated();
    let file = tmp.path().join("e".repeat(250));
    let run = oms(&dir, &["export", "-o", file.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(std::fs::metadata(&file).unwrap().len() > 0);
    let unknown = "z".repeat(10_000);
    let run = oms(
        &tmp.path().join("restored"),
        &[
            "import",
            file.to_str().unwrap(),
            "--side-effect-consumer",
            &unknown,
        ],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("is not a consumer"), "{run:?}");
    assert!(run.stderr.len() < 1_000, "{}", run.stderr.len());
}

/// An empty `OMS_DATA_DIR` is named as such when no `--data-dir` is
/// given, and overridden by one: clap said "a value is required for
/// '--data-dir'" in both cases, of a flag nobody passed (a probe).
#[test]
fn an_empty_oms_data_dir_is_named_and_a_flag_overrides_it() {
    let (_tmp, dir) = generated();
    let run = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_oms-replay"))
            .args(args)
            .env("OMS_DATA_DIR", "")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = run(&["--json".as_ref(), "stats".as_ref()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("OMS_DATA_DIR is set but empty"), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["ok"], false, "{stdout}");
    let (code, stdout, stderr) = run(&["--data-dir".as_ref(), dir.as_os_str(), "stats".as_ref()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}
