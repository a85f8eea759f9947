//! A server started on a data directory whose log was damaged on disk (one
//! byte flipped in sled's `db` file and in the redo journal's copy, so the
//! journal cannot put the record back) refuses to start: it exits non-zero
//! with one line naming the damage and pointing at `oms-replay verify`, it
//! never listens, and nothing is appended (ADR 0010, ADR 0030).

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use tests::{serve_command, server_binary, unique, Server};

/// Flips one byte inside every occurrence of `marker` in the `db` file and
/// in the journal files; returns how many there were in `db`.
fn flip_marker_on_disk(data_dir: &Path, marker: &str) -> usize {
    for name in ["journal-0", "journal-1"] {
        let path = data_dir.join("journal").join(name);
        if path.exists() {
            flip_marker_in(&path, marker);
        }
    }
    flip_marker_in(&data_dir.join("db"), marker)
}

/// Flips one byte inside every occurrence of `marker` in the file at
/// `path`; returns how many there were.
fn flip_marker_in(path: &Path, marker: &str) -> usize {
    let mut bytes = std::fs::read(path).unwrap();
    let needle = marker.as_bytes();
    let hits: Vec<usize> = bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(at, _)| at)
        .collect();
    for at in &hits {
        bytes[at + needle.len() / 2] ^= 0x02;
    }
    std::fs::write(path, bytes).unwrap();
    hits.len()
}

/// What a start of the server on `data_dir` did, if it exited within 60 s.
struct Refused {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn start_expecting_exit(data_dir: &Path) -> Refused {
    start_with_env_expecting_exit(data_dir, &[])
}

fn start_with_env_expecting_exit(data_dir: &Path, env: &[(&str, &str)]) -> Refused {
    let mut child = serve_command(&server_binary(), data_dir)
        .envs(env.iter().copied())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server kept running on a damaged log");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    Refused {
        code: status.code(),
        stdout,
        stderr,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_on_a_damaged_log_refuses_to_start_and_appends_nothing() {
    let mut server = Server::start();
    let sales = server.token("sales");
    let marker = unique("damage-marker");
    let quote = server
        .client
        .create_quote(&sales, &marker, "cust-1")
        .await
        .unwrap();
    for i in 0..5 {
        server
            .client
            .add_line(&sales, &quote, &format!("l-{i}"), "fiber-1g")
            .await
            .unwrap();
    }
    let status = server.stop();
    assert!(status.success(), "{status}");
    let data_dir = server.data_dir.clone();
    let acked_before = std::fs::read(data_dir.join("acked-head")).unwrap();

    assert!(
        flip_marker_on_disk(&data_dir, &marker) >= 1,
        "marker not on disk"
    );

    // Twice: sled's recovery rewrites the directory at the first attempt;
    // the second must refuse just the same.
    for attempt in 1..=2 {
        let run = start_expecting_exit(&data_dir);
        assert_eq!(run.code, Some(1), "attempt {attempt}: {}", run.stderr);
        assert!(
            !run.stdout.contains("listening on"),
            "attempt {attempt}: {}",
            run.stdout
        );
        let line = run
            .stderr
            .lines()
            .find(|l| l.starts_with("oms-server: refusing to start"))
            .unwrap_or_else(|| panic!("attempt {attempt}: no refusal line in\n{}", run.stderr));
        assert!(
            line.contains("is damaged")
                && line.contains("log damaged at position")
                && line.contains("nothing was served or written")
                && line.contains("oms-replay verify --data-dir"),
            "attempt {attempt}: {line}"
        );
        assert_eq!(
            std::fs::read(data_dir.join("acked-head")).unwrap(),
            acked_before,
            "attempt {attempt}: nothing may be acknowledged on a damaged log"
        );
    }
}

/// The log's files lost beside the read models made from it: a probe had
/// the server start an empty log (and refill the read models from 0) with
/// the old tokens. And a mistyped `--data-dir` naming a platform's
/// `journal/` set up a new platform inside it. Both are refused now, and
/// nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_log_or_a_directory_of_other_files_is_refused_and_nothing_is_written() {
    let mut server = Server::start();
    let sales = server.token("sales");
    server
        .client
        .create_quote(&sales, &unique("lost"), "cust-1")
        .await
        .unwrap();
    assert!(server.stop().success());
    let data_dir = server.data_dir.clone();
    let listing = |dir: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };

    // A directory of the log itself (its read models', its blobs', its
    // journal's) is no data directory: the read models' database used to
    // be opened as a log (sled rewrote its snapshot first), and an empty
    // `blobs` got a new platform set up inside the old one's (a probe).
    std::fs::create_dir_all(data_dir.join("blobs")).unwrap();
    for inner in ["projections", "blobs", "journal"] {
        let dir = data_dir.join(inner);
        let contents = |dir: &Path| -> Vec<(String, Vec<u8>)> {
            let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.is_file())
                .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
                .collect();
            files.sort();
            files
        };
        let before = (listing(&dir), contents(&dir));
        let run = start_expecting_exit(&dir);
        assert_eq!(run.code, Some(2), "{inner}: {}", run.stderr);
        assert!(
            run.stderr.contains("is a directory of the event log in")
                && run.stderr.contains("nothing was opened or written"),
            "{inner}: {}",
            run.stderr
        );
        assert_eq!(
            (listing(&dir), contents(&dir)),
            before,
            "{inner}: untouched"
        );
    }

    for entry in std::fs::read_dir(&data_dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if [
            "db",
            "conf",
            "acked-head",
            "snapshot-kept",
            "blobs",
            "journal",
        ]
        .contains(&name.as_str())
            || name.starts_with("snap.")
        {
            if path.is_dir() {
                std::fs::remove_dir_all(&path).unwrap();
            } else {
                std::fs::remove_file(&path).unwrap();
            }
        }
    }
    let before = listing(&data_dir);
    let run = start_expecting_exit(&data_dir);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("the log's files were lost")
            && run.stderr.contains("nothing was opened or written"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("listening on"), "{}", run.stdout);
    assert_eq!(listing(&data_dir), before, "nothing written");

    // The read models gone too: the stored credentials, the price-book
    // record and the simulators' journal still show a platform ran here
    // (a probe had it start over, empty, under the old tokens).
    std::fs::remove_dir_all(data_dir.join("projections")).unwrap();
    let before = listing(&data_dir);
    let run = start_expecting_exit(&data_dir);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("the log's files were lost")
            && run.stderr.contains("`credentials.toml`"),
        "{}",
        run.stderr
    );
    assert_eq!(listing(&data_dir), before, "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_that_is_a_file_is_refused_naming_it() {
    let temp = tempfile::tempdir().unwrap();
    let file = temp.path().join("data");
    std::fs::write(&file, "not a directory").unwrap();
    let refused = start_expecting_exit(&file);
    // Configuration (exit 2, naming the key), as any unusable setting is;
    // it was exit 1, the code of a damaged log, with `File exists (os
    // error 17)` after the path.
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!(
            "configuration key `data_dir`: {} is a file, not a directory",
            file.display()
        )),
        "{}",
        refused.stderr
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a directory");
    // A path through that file, and a link to nothing, are configuration
    // too (they were exit 1: `Not a directory`, `File exists`).
    let link = temp.path().join("link");
    std::os::unix::fs::symlink(temp.path().join("gone"), &link).unwrap();
    for (dir, said) in [
        (file.join("sub"), "cannot be created"),
        (link.clone(), "is a symbolic link to nothing"),
    ] {
        let refused = start_expecting_exit(&dir);
        assert_eq!(
            refused.code,
            Some(2),
            "{}: {}",
            dir.display(),
            refused.stderr
        );
        assert!(
            refused.stderr.contains("configuration key `data_dir`")
                && refused.stderr.contains(said),
            "{}",
            refused.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_simulator_timeout_is_refused_by_its_key_before_anything_is_written() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    for (var, value, key) in [
        (
            "OMS_SIMULATOR_READ_TIMEOUT_MS",
            "0",
            "simulator.read_timeout_ms",
        ),
        ("OMS_SIMULATOR_SLA_MS", "100", "simulator.sla_ms"),
    ] {
        let refused = start_with_env_expecting_exit(&data, &[(var, value)]);
        assert_eq!(refused.code, Some(2), "{}", refused.stderr);
        assert!(
            refused
                .stderr
                .contains(&format!("configuration key `{key}`")),
            "{var}={value}: {}",
            refused.stderr
        );
        assert!(
            !refused.stdout.contains("oms_admin_"),
            "no demo tokens before the configuration holds: {}",
            refused.stdout
        );
        assert!(!data.exists(), "{var}={value} created {}", data.display());
    }
}

/// Stored credentials the server cannot use are configuration: the start
/// is refused with exit code 2, as a bad configuration key is, and not
/// with the 1 of a damaged log (which sends an operator to `oms-replay`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_stored_credentials_are_a_configuration_error_not_damage() {
    let mut server = Server::start();
    assert!(server.stop().success());
    let credentials = server.data_dir.join("credentials.toml");
    // Garbled, and a byte that is not UTF-8: each names the file and how
    // to start over (a probe read only "invalid basic string").
    for damaged in [b"this is not toml [".as_slice(), b"[tenants]\n\xff = 1\n"] {
        std::fs::write(&credentials, damaged).unwrap();
        let refused = start_expecting_exit(&server.data_dir);
        assert_eq!(refused.code, Some(2), "{}", refused.stderr);
        assert!(
            refused.stderr.contains("credentials.toml")
                && refused.stderr.contains("remove it")
                && refused.stderr.contains("new demo tokens"),
            "{}",
            refused.stderr
        );
    }
}

/// `--listen` and `--data-dir` override the file and the environment: a
/// bad `OMS_LISTEN` or an empty `OMS_DATA_DIR` under good flags starts
/// (both were refused, exit 2, naming neither the value nor its source:
/// a probe). A bad value that is not overridden is refused showing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flags_override_a_bad_environment_and_a_bad_value_is_shown() {
    use std::io::BufRead as _;
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let mut child = serve_command(&server_binary(), &data)
        .env("OMS_LISTEN", "garbage")
        .env("OMS_DATA_DIR", "")
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let listening = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("listening on http://127.0.0.1:"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(listening, "the server started under its flags");

    let mut command = std::process::Command::new(server_binary());
    let output = command
        .args(["serve", "--data-dir"])
        .arg(&data)
        .env("OMS_LISTEN", "garbage")
        .env_remove("OMS_CONFIG")
        .env_remove("OMS_DATA_DIR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`garbage`") && stderr.contains("OMS_LISTEN"),
        "{stderr}"
    );

    // An empty OMS_CONFIG is named as such (clap asked for a value of a
    // `--config` nobody passed), and nothing is made.
    let fresh = temp.path().join("fresh");
    let output = std::process::Command::new(server_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&fresh)
        .env("OMS_CONFIG", "")
        .env_remove("OMS_DATA_DIR")
        .env_remove("OMS_LISTEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("OMS_CONFIG is set but empty"), "{stderr}");
    assert!(!fresh.exists(), "nothing made");
}

/// A listen address that is taken stops the start before anything is
/// created or printed: a probe had it create the data directory and print
/// new demo tokens, then fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_listen_address_stops_the_start_before_anything_is_written() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let run = std::process::Command::new(server_binary())
        .args(["serve", "--listen", &address, "--data-dir"])
        .arg(&data_dir)
        .env_remove("OMS_CONFIG")
        .env_remove("OMS_DATA_DIR")
        .env_remove("OMS_LISTEN")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    assert!(!run.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    assert!(!stdout.contains("Bearer"), "{stdout}");
    assert!(!data_dir.exists(), "the data directory was created");
    drop(taken);
}

/// A start refused for its configuration records no price book as in
/// force: a probe's start refused for a misspelt relay tenant, or for a
/// token given twice, wrote `price-books.json`, and its corrected book
/// under the same version was then refused as "in force before with
/// other prices". A token given twice is found before anything is made.
#[test]
fn a_start_refused_for_its_configuration_records_no_price_book() {
    let tmp = tempfile::tempdir().unwrap();
    let digest = |c: char| c.to_string().repeat(64);
    let book = "[price_book]\nversion = \"pb-probe\"\ncurrency = \"EUR\"\n\
                [price_book.offerings.fiber-1g]\none_time = \"990.00\"\nmonthly = \"49.90\"\n";
    let tenants = |second: char| {
        format!(
            "[tenants.acme]\ncredentials = [{{ name = \"a\", role = \"admin\", token_sha256 = \"{}\" }}, \
             {{ name = \"b\", role = \"sales\", token_sha256 = \"{}\" }}]\n",
            digest('a'),
            digest(second)
        )
    };
    let write = |name: &str, text: String| {
        let path = tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };

    let twice = write("twice.toml", format!("{book}{}", tenants('a')));
    let data_dir = tmp.path().join("twice");
    let run = start_with_env_expecting_exit(&data_dir, &[("OMS_CONFIG", twice.to_str().unwrap())]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("the same token as"), "{}", run.stderr);
    assert!(
        !data_dir.exists(),
        "nothing made for a refused configuration"
    );

    let ghost = write(
        "ghost.toml",
        format!(
            "{book}{}[relay]\nenabled = true\n[relay.tenants]\nghost = \"all\"\n",
            tenants('b')
        ),
    );
    let data_dir = tmp.path().join("ghost");
    let run = start_with_env_expecting_exit(&data_dir, &[("OMS_CONFIG", ghost.to_str().unwrap())]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("relay.tenants.ghost"), "{}", run.stderr);
    assert!(
        !data_dir.join("price-books.json").exists(),
        "the book was never in force"
    );
}
