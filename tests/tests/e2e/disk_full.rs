//! A full disk, as a user meets it: commands answer a retryable
//! `UNAVAILABLE` that names the restart they wait for, SIGTERM still stops
//! the server, and once space is freed a restart completes every order
//! whose quote acceptance was acknowledged.
//!
//! The data directory lives on a tmpfs of its own, mounted for the test
//! (root, as in CI; the power-cut tests need root for FUSE too).

use std::path::{Path, PathBuf};
use std::process::Command;

use tests::ops;
use tests::{Server, ServerOptions};

use crate::flow::{eventually, orders_page};

/// Size of the test's file system.
const SIZE_MIB: u64 = 48;

/// Free space left when the disk is "filled"; the server uses it up.
const LEFT_MIB: u64 = 3;

/// A tmpfs mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={SIZE_MIB}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mounting a tmpfs needs root (CI runs the suite as root): {status}"
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Bytes still free.
    fn available(&self) -> u64 {
        let output = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(self.path())
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .nth(1)
            .and_then(|line| line.trim().parse().ok())
            .unwrap()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_commands_retryably_stops_on_sigterm_and_recovers() {
    let disk = Tmpfs::mount();
    let data_dir = disk.path().join("data");
    let mut server = Server::start_with(ServerOptions {
        data_dir: Some(data_dir.clone()),
        // A call whose outcome the full disk kept from the log is UNKNOWN
        // after the restart, and reconciliation asks about it once the
        // system's SLA has passed: a short one keeps the test short.
        config: "reconciliation_interval_ms = 200\n[simulator]\nread_timeout_ms = 1000\n\
                 sla_ms = 2500\n"
            .to_owned(),
        ..ServerOptions::default()
    });
    let sales = server.token("sales");
    let filler: PathBuf = disk.path().join("filler");
    let fill = disk.available().saturating_sub(LEFT_MIB << 20);
    let status = Command::new("fallocate")
        .args(["-l", &fill.to_string()])
        .arg(&filler)
        .status()
        .unwrap();
    assert!(status.success(), "fallocate: {status}");

    let mut accepted = Vec::new();
    let refusal = loop {
        assert!(
            accepted.len() < 500,
            "{} quotes accepted on a disk with {LEFT_MIB} MiB free, and no refusal",
            accepted.len()
        );
        match server
            .client
            .accepted_quote(&sales, "cust-1", &["fiber-1g"])
            .await
        {
            Ok(quote) => accepted.push(quote),
            Err(error) => break error,
        }
    };
    assert_eq!(
        refusal.code.as_deref(),
        Some("UNAVAILABLE"),
        "after {} accepted quotes: {refusal:?}\n{}",
        accepted.len(),
        server.stderr_tail()
    );
    // The command whose own write failed may or may not be recorded; one
    // refused by the fenced log was not. Either is retried after a restart.
    assert!(
        (refusal.message.contains("nothing was recorded")
            || refusal
                .message
                .contains("may or may not have been recorded"))
            && refusal.message.contains("restarted"),
        "{refusal:?}"
    );
    assert_eq!(refusal.extensions["retryable"], true, "{refusal:?}");
    // The operator the client asks finds the command in the log by its
    // correlation id: the ERROR line named only the tenant and role.
    let tail = server.stderr_tail();
    let stored: Vec<&str> = tail
        .lines()
        .filter(|line| {
            line.contains("failed to store a command")
                || line.contains("a command was refused: the event log is fenced")
        })
        .collect();
    if refusal
        .message
        .contains("may or may not have been recorded")
    {
        assert!(!stored.is_empty(), "{tail}");
    }
    assert!(
        stored.iter().all(|line| line.contains("correlation_id")),
        "{tail}"
    );
    let health = server
        .client
        .http()
        .get(format!("{}/healthz", server.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 503);

    let stopping = std::time::Instant::now();
    let status = server.stop();
    eprintln!("stopped in {:?}", stopping.elapsed());
    assert!(
        status.success(),
        "SIGTERM must stop a server whose log is fenced: {status}; {}",
        server.stderr_tail()
    );
    std::fs::remove_file(&filler).unwrap();

    let restarting = std::time::Instant::now();
    let server = server.restart();
    let viewer = server.token("viewer");
    let client = &server.client;
    eventually(
        &format!(
            "every one of {} accepted quotes' orders completed",
            accepted.len()
        ),
        || async {
            let orders = orders_page(client, &viewer).await?;
            let waiting: Vec<String> = accepted
                .iter()
                .filter(|quote| {
                    !orders.iter().any(|o| {
                        &o.quote_id == *quote && o.status == ops::orders::OrderStatus::COMPLETED
                    })
                })
                .cloned()
                .collect();
            if waiting.is_empty() {
                Ok(())
            } else {
                Err(format!("not completed: {waiting:?}"))
            }
        },
    )
    .await;
    eprintln!("restarted and completed in {:?}", restarting.elapsed());
    drop(server);
}
