//! Shared fixtures: one generated log (made once, copied per test), the
//! binary runner, and raw access to a closed log for tampering.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use application::CommandPath;
use eventlog::{keyspace, Durability, EventLog, LogConfig, RecordedEvent};
use tempfile::TempDir;

use crate::gen;

/// Flows in the generated log.
pub(crate) const FLOWS: usize = 60;

/// What one run of the binary printed and returned.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    pub(crate) fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// Runs `oms-replay --data-dir DIR ARGS...`.
pub(crate) fn oms(dir: &Path, args: &[&str]) -> Run {
    oms_with_stdin(dir, args, None)
}

/// The binary on `dir` with `args`, its standard streams left to the caller.
pub(crate) fn oms_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_oms-replay"));
    command
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("OMS_DATA_DIR");
    command
}

/// Runs the binary with `stdin` piped in.
pub(crate) fn oms_with_stdin(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut child = oms_command(dir, args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn oms-replay");
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Generates `flows` flows into `dir` (1 to 3 lines each), 8 at a time.
pub(crate) fn generate(dir: &Path, flows: usize) -> u64 {
    runtime().block_on(async {
        let log = EventLog::open(LogConfig::new(dir).durability(Durability::Buffered)).unwrap();
        let path = CommandPath::new(log.clone());
        let mut next = 0;
        while next < flows {
            let batch: Vec<_> = (next..flows.min(next + 8))
                .map(|i| {
                    let path = path.clone();
                    tokio::spawn(async move { gen::run_flow(&path, i, 1 + i % 3).await })
                })
                .collect();
            for task in batch {
                task.await.unwrap().unwrap();
            }
            next += 8;
        }
        drop(path);
        let events = log.next_position();
        log.flush().unwrap();
        log.close().await;
        events
    })
}

struct Template {
    dir: TempDir,
    events: u64,
}

fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        // A static is never dropped, so its directory outlives the run:
        // under cargo's target/tmp, not /tmp, where runs would pile up.
        let dir = tempfile::Builder::new()
            .prefix("replay-cli-template-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let events = generate(dir.path(), FLOWS);
        // Let the closed log's background threads drop their handles.
        std::thread::sleep(std::time::Duration::from_millis(50));
        Template { dir, events }
    })
}

/// A fresh copy of the generated log: (its parent tempdir, the data dir).
pub(crate) fn generated() -> (TempDir, PathBuf) {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    copy_dir(template().dir.path(), &data);
    (parent, data)
}

/// Events in the generated log.
pub(crate) fn generated_events() -> u64 {
    template().events
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Opens a closed data dir's sled database raw (for tampering), runs `f`
/// on the log tree, flushes and closes.
pub(crate) fn with_raw_tree<T>(dir: &Path, f: impl FnOnce(&sled::Tree) -> T) -> T {
    let db = eventlog::storage::open_sled(dir, 32 << 20).unwrap();
    let tree = db.open_tree(keyspace::LOG_TREE).unwrap();
    let result = f(&tree);
    db.flush().unwrap();
    drop(tree);
    drop(db);
    wait_unlocked(dir);
    result
}

/// The key and records of the page holding `position`.
fn page_holding(tree: &sled::Tree, position: u64) -> ([u8; 9], u64, Vec<Vec<u8>>) {
    use eventlog::pages::{page_key, page_records, position_of_page_key};
    let (key, value) = tree
        .range(page_key(0)..=page_key(position))
        .next_back()
        .unwrap()
        .unwrap();
    let first = position_of_page_key(&key).unwrap();
    let records = page_records(&value)
        .unwrap()
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect();
    (page_key(first), first, records)
}

/// Rewrites the stored bytes of the record at `position` in its page.
pub(crate) fn rewrite_record(tree: &sled::Tree, position: u64, change: impl FnOnce(&mut Vec<u8>)) {
    let (key, first, mut records) = page_holding(tree, position);
    let index = usize::try_from(position - first).unwrap();
    change(&mut records[index]);
    let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
    tree.insert(key, eventlog::pages::encode_page(&refs))
        .unwrap();
}

/// Removes the records at and after `from` in the page holding `from`,
/// keeping those after `to` (exclusive) in a page of their own: the
/// records `[from, to)` are gone, as if their keys had been deleted.
pub(crate) fn remove_records(tree: &sled::Tree, from: u64, to: u64) {
    use eventlog::pages::{encode_page, page_key};
    let mut at = from;
    while at < to {
        let (key, first, records) = page_holding(tree, at);
        let last = first + records.len() as u64;
        if last <= at {
            break;
        }
        tree.remove(key).unwrap();
        let keep = |range: std::ops::Range<u64>| -> Vec<&[u8]> {
            records
                .iter()
                .enumerate()
                .map(|(i, r)| (first + i as u64, r))
                .filter(|(p, _)| range.contains(p))
                .map(|(_, r)| r.as_slice())
                .collect()
        };
        let before = keep(first..from);
        if !before.is_empty() {
            tree.insert(page_key(first), encode_page(&before)).unwrap();
        }
        let after = keep(to..last);
        if !after.is_empty() {
            tree.insert(page_key(to), encode_page(&after)).unwrap();
        }
        at = last;
    }
}

/// Every record of a closed log, read raw.
pub(crate) fn records(dir: &Path) -> Vec<RecordedEvent> {
    with_raw_tree(dir, |tree| {
        eventlog::pages::raw_range(tree, 0, u64::MAX)
            .map(|e| RecordedEvent::decode(&e.unwrap().1).unwrap())
            .collect()
    })
}

/// A small deterministic pseudo-random sequence (no RNG dependency).
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

/// Opens the log of `dir`, runs `f` on it, closes it and waits until the
/// directory's lock is free again.
pub(crate) fn with_log<T>(dir: &Path, f: impl FnOnce(&EventLog) -> T) -> T {
    let result = runtime().block_on(async {
        let log = EventLog::open(LogConfig::new(dir).durability(Durability::Buffered)).unwrap();
        let result = f(&log);
        log.flush().unwrap();
        log.close().await;
        result
    });
    wait_unlocked(dir);
    result
}

/// Waits (up to 10 s) until nothing in this process holds `dir`'s lock.
/// It probes the lock sled takes (an exclusive `flock` of `<dir>/db`)
/// directly: probing by opening sled would start sled's own threads,
/// which hold the lock again for a while after the probe returns.
pub(crate) fn wait_unlocked(dir: &Path) {
    use fs2::FileExt;
    for _ in 0..1000 {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.join("db"))
            .unwrap();
        if file.try_lock_exclusive().is_ok() {
            let _ = FileExt::unlock(&file);
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{} stayed locked", dir.display());
}
