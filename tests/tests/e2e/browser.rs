//! One headless Chromium (Debian's `chromium`, which `.ci/run` installs)
//! with one page, driven over the DevTools protocol, for the browser tests
//! (GraphiQL, the operations console).
//!
//! `E2E_GRAPHIQL_CDN_DIR` (development aid, off by default): a directory
//! with `react/umd/…`, `react-dom/umd/…` and `graphiql/…` from the npm
//! packages; requests to unpkg.com are then answered from it, for machines
//! without internet while a page still references that CDN.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const CHROMIUM: &str = "/usr/bin/chromium";

/// One headless Chromium with one page, over the DevTools protocol.
pub(crate) struct Browser {
    child: Child,
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    cdn: Option<PathBuf>,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub(crate) async fn launch() -> Self {
        let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| CHROMIUM.to_owned());
        assert!(
            std::path::Path::new(&binary).exists(),
            "{binary} not found: install Debian's `chromium` package (.ci/run does)"
        );
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(&binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let browser_url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("chromium printed its DevTools address");
        let port = browser_url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let targets: Value = reqwest::get(format!("http://{port}/json/list"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let page = targets
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_owned();
        let (socket, _) = tokio_tungstenite::connect_async(page).await.unwrap();
        let mut browser = Self {
            child,
            socket,
            next_id: 0,
            cdn: std::env::var_os("E2E_GRAPHIQL_CDN_DIR").map(PathBuf::from),
            _profile: profile,
        };
        browser.call("Page.enable", json!({})).await;
        browser.call("Runtime.enable", json!({})).await;
        if browser.cdn.is_some() {
            browser
                .call(
                    "Fetch.enable",
                    json!({"patterns": [{"urlPattern": "*://unpkg.com/*"}]}),
                )
                .await;
        }
        browser
    }

    async fn send(&mut self, method: &str, params: Value) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({"id": id, "method": method, "params": params});
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
        id
    }

    /// Sends a command and waits for its result, serving paused requests
    /// meanwhile.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params).await;
        loop {
            let message = tokio::time::timeout(Duration::from_secs(30), self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("no answer to {method}"))
                .expect("the DevTools socket is open")
                .unwrap();
            let Message::Text(text) = message else {
                continue;
            };
            let value: Value = serde_json::from_str(text.as_str()).unwrap();
            if value["id"] == id {
                assert!(value.get("error").is_none(), "{method}: {value}");
                return value["result"].clone();
            }
            if value["method"] == "Fetch.requestPaused" {
                self.serve_from_cdn_dir(&value["params"]).await;
            }
        }
    }

    async fn serve_from_cdn_dir(&mut self, params: &Value) {
        let request_id = params["requestId"].clone();
        let url = params["request"]["url"].as_str().unwrap_or_default();
        // https://unpkg.com/react-dom@18/umd/x.js -> react-dom/umd/x.js
        let path = url.split("unpkg.com/").nth(1).unwrap_or_default();
        let (package, rest) = path.split_once('/').unwrap_or((path, ""));
        let package = package.split('@').next().unwrap_or_default();
        let file = self
            .cdn
            .as_ref()
            .map(|dir| dir.join(package).join(rest))
            .and_then(|file| std::fs::read(file).ok());
        let content_type = if rest.ends_with(".css") {
            "text/css"
        } else {
            "application/javascript"
        };
        match file {
            Some(body) => {
                self.send(
                    "Fetch.fulfillRequest",
                    json!({
                        "requestId": request_id,
                        "responseCode": 200,
                        "responseHeaders": [
                            {"name": "Content-Type", "value": content_type},
                            {"name": "Access-Control-Allow-Origin", "value": "*"},
                        ],
                        "body": base64::engine::general_purpose::STANDARD.encode(body),
                    }),
                )
                .await;
            }
            None => {
                self.send(
                    "Fetch.failRequest",
                    json!({"requestId": request_id, "errorReason": "FileNotFound"}),
                )
                .await;
            }
        }
    }

    /// Evaluates `expression` in the page; its value.
    pub(crate) async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        result["result"]["value"].clone()
    }

    /// Polls `expression` until it is truthy; its last value either way.
    pub(crate) async fn wait_for(&mut self, expression: &str, timeout: Duration) -> Value {
        let started = Instant::now();
        loop {
            let value = self.eval(expression).await;
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy || started.elapsed() > timeout {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Saves a PNG of the page's viewport to `path` (a test artifact).
    pub(crate) async fn screenshot(&mut self, path: &Path) {
        let shot = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())
            .unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    /// Sets the viewport to `width` x `height` CSS pixels.
    pub(crate) async fn viewport(&mut self, width: u32, height: u32) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        )
        .await;
    }

    /// Loads `url` and waits until the document is complete.
    pub(crate) async fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
        self.wait_for(
            "document.readyState === 'complete'",
            Duration::from_secs(20),
        )
        .await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
