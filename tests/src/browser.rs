//! One headless Chromium (Debian's `chromium`), driven over WebDriver by
//! [`fantoccini`] through Debian's `chromedriver` (both installed by
//! `.ci/run`, or by the first test that finds them missing), for the
//! browser tests (GraphiQL, the operations console) and the console
//! benchmark.
//!
//! `CHROMEDRIVER` and `CHROMIUM` override the binaries' paths.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A WebDriver session in a headless Chromium. Dropping it kills
/// chromedriver and the browser it started (one process group).
pub struct Browser {
    client: Client,
    driver: Child,
    /// The browser's profile and TMPDIR, removed after both are killed.
    _scratch: tempfile::TempDir,
}

fn binary(variable: &str, default: &str, package: &str) -> String {
    let binary = std::env::var(variable).unwrap_or_else(|_| default.to_owned());
    if !Path::new(&binary).exists() && std::env::var_os(variable).is_none() {
        install_packages();
    }
    assert!(
        Path::new(&binary).exists(),
        "{binary} not found: install Debian's `{package}` package (.ci/run does; \
         the tests tried `apt-get install` and it failed)"
    );
    binary
}

/// Installs Debian's `chromium` and `chromium-driver` once per process
/// (as `.ci/run` does), so that `cargo test --workspace` on a fresh
/// machine needs nothing else; apt's own lock orders concurrent test
/// processes. A failure is left to the caller's check of the binary.
fn install_packages() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let install = || {
            Command::new("apt-get")
                .args(["-o", "DPkg::Lock::Timeout=600", "install", "-y"])
                .args(["chromium", "chromium-driver"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        };
        if !install() {
            let _ = Command::new("apt-get")
                .args(["-o", "DPkg::Lock::Timeout=600", "update"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status();
            install();
        }
    });
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a session in
    /// a fresh headless Chromium profile, 1280x800.
    ///
    /// # Panics
    /// When chromedriver or Chromium is missing or does not start.
    pub async fn launch() -> Self {
        let driver_binary = binary("CHROMEDRIVER", CHROMEDRIVER, "chromium-driver");
        let chromium = binary("CHROMIUM", CHROMIUM, "chromium");
        // The profile and TMPDIR of both processes: Chromium, killed at the
        // end, never removes its own `org.chromium.*` scratch files.
        let scratch = tempfile::tempdir().expect("a temporary browser directory");
        let profile = scratch.path().join("profile");
        std::fs::create_dir(&profile).expect("the browser profile directory");
        let mut driver = Command::new(&driver_binary)
            .args(["--port=0", "--allowed-ips=127.0.0.1"])
            .env("TMPDIR", scratch.path())
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {driver_binary}: {e}"));
        let (tx, rx) = mpsc::channel();
        let stdout = driver.stdout.take().expect("chromedriver's stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    let _ = tx.send(rest.trim_end_matches('.').trim().to_owned());
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("chromedriver printed its port");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--window-size=1280,800",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| panic!("a WebDriver session in {chromium}: {e}"));
        Self {
            client,
            driver,
            _scratch: scratch,
        }
    }

    /// Runs `body` as the body of a function in the page (so it ends with
    /// `return …`); its value, awaited when it is a promise.
    ///
    /// # Panics
    /// When the script throws.
    pub async fn run(&self, body: &str) -> Value {
        self.client
            .execute(body, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("the script failed: {e}\n{body}"))
    }

    /// The value of `expression` in the page.
    pub async fn eval(&self, expression: &str) -> Value {
        self.run(&format!("return ({expression});")).await
    }

    /// Polls `expression` until it is truthy; its last value either way.
    pub async fn wait_for(&self, expression: &str, timeout: Duration) -> Value {
        let started = Instant::now();
        loop {
            let value = self.eval(expression).await;
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy || started.elapsed() > timeout {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG of the viewport to `path` (a test artifact).
    ///
    /// # Panics
    /// When the screenshot or the file cannot be made.
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.expect("a screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("the screenshot directory");
        }
        std::fs::write(path, png).expect("write the screenshot");
    }

    /// Sizes the window so the page's viewport is `width` x `height` CSS
    /// pixels.
    pub async fn viewport(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("resize the window");
        // Headless windows have no frame, but measure rather than assume.
        let inner = self.eval("[window.innerWidth, window.innerHeight]").await;
        let (w, h) = (
            inner[0].as_u64().unwrap_or(0),
            inner[1].as_u64().unwrap_or(0),
        );
        if (w, h) != (u64::from(width), u64::from(height)) {
            // Grow the window by its frame: what it lacks of the viewport.
            let frame =
                |asked: u32, got: u64| asked.saturating_sub(u32::try_from(got).unwrap_or(asked));
            let outer_w = width.saturating_add(frame(width, w));
            let outer_h = height.saturating_add(frame(height, h));
            self.client
                .set_window_size(outer_w, outer_h)
                .await
                .expect("resize the window");
        }
    }

    /// Loads `url` and waits until the document is complete.
    pub async fn navigate(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
        self.wait_for(
            "document.readyState === 'complete'",
            Duration::from_secs(20),
        )
        .await;
    }

    /// Ends the session and stops chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver leads its own process group, which holds the
        // browser it started: stop them all.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
