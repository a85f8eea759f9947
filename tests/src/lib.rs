//! End-to-end harness: starts the real `oms-server` binary on a free
//! loopback port with a temporary data directory, and drives it over HTTP
//! with the typed operations of [`ops`] (checked at compile time against
//! the committed `schema.graphql`).
//!
//! The harness builds nothing: `cargo test --workspace` builds
//! `target/<profile>/oms-server` because `api` is a workspace member with a
//! binary and integration tests. Run `cargo build -p api` (or
//! `cargo build --release -p api` for the load benchmark) before
//! `cargo test -p tests` alone. `OMS_SERVER_BIN` overrides the path.

pub mod browser;
pub mod chaos;
pub mod ops;

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use graphql_client::GraphQLQuery;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The five roles, weakest first (`platform`: an admin who may also run
/// the operations that touch every tenant).
pub const ROLES: [&str; 5] = ["viewer", "sales", "operator", "admin", "platform"];

/// How long the server may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a SIGTERM may take before the harness sends SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// The `oms-server` binary next to the running executable
/// (`target/<profile>/deps/<test>` or `target/<profile>/examples/<example>`),
/// or `OMS_SERVER_BIN`.
///
/// # Panics
/// When it does not exist, with how to build it.
pub fn server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("OMS_SERVER_BIN") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "OMS_SERVER_BIN={} is not a file",
            path.display()
        );
        return path;
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir
        .file_name()
        .is_some_and(|name| name == "deps" || name == "examples")
    {
        dir.pop();
    }
    let path = dir.join("oms-server");
    assert!(
        path.is_file(),
        "the server binary {} does not exist: build it first with `cargo build -p api` \
         (`cargo build --release -p api` for a release run); `cargo test --workspace` builds it",
        path.display()
    );
    path
}

/// `binary serve` on `data_dir`, listening on `127.0.0.1:0`, with none of
/// the `OMS_` overrides of the calling environment, `RUST_LOG=warn`, no
/// stdin, and stdout and stderr piped: how every test starts a server.
pub fn serve_command(binary: &Path, data_dir: &Path) -> Command {
    let mut command = Command::new(binary);
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .env_remove("OMS_CONFIG")
        .env_remove("OMS_DATA_DIR")
        .env_remove("OMS_LISTEN")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// A unique suffix for ids and tokens within this process.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos:x}-{n}", std::process::id())
}

/// sha256 hex of a token, as `token_sha256` in the configuration.
pub fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A configuration file's tenants: every tenant gets one token per role.
#[derive(Clone, Debug, Default)]
pub struct Tenants {
    tokens: BTreeMap<(String, String), String>,
}

impl Tenants {
    /// Tenants `ids`, each with a fresh token for every role.
    pub fn new(ids: &[&str]) -> Self {
        let mut tokens = BTreeMap::new();
        for tenant in ids {
            for role in ROLES {
                tokens.insert(
                    ((*tenant).to_owned(), role.to_owned()),
                    unique(&format!("tok-{tenant}-{role}")),
                );
            }
        }
        Self { tokens }
    }

    /// The `[tenants.*]` tables of a configuration file.
    pub fn toml(&self) -> String {
        let mut by_tenant: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for ((tenant, role), token) in &self.tokens {
            by_tenant.entry(tenant).or_default().push(format!(
                "{{ name = \"{tenant}-{role}\", role = \"{role}\", token_sha256 = \"{}\" }}",
                token_sha256(token)
            ));
        }
        let mut out = String::new();
        for (tenant, credentials) in by_tenant {
            out.push_str(&format!(
                "[tenants.{tenant}]\ncredentials = [\n  {}\n]\n",
                credentials.join(",\n  ")
            ));
        }
        out
    }
}

/// How to start a server.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// Extra configuration (TOML) written to a file and passed as
    /// `--config`; tenants come from [`ServerOptions::tenants`].
    pub config: String,
    /// Tenants with known tokens; none: the demo tenant.
    pub tenants: Option<Tenants>,
    /// Use this data directory (e.g. to restart on the same data).
    pub data_dir: Option<PathBuf>,
    /// `RUST_LOG` for the server (default `warn`).
    pub log: Option<String>,
    /// The binary (default [`server_binary`]).
    pub binary: Option<PathBuf>,
}

/// A running `oms-server` process; SIGTERM then SIGKILL on drop.
pub struct Server {
    child: Option<Child>,
    /// The bound address.
    pub addr: SocketAddr,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The typed GraphQL client for this server.
    pub client: Client,
    tokens: BTreeMap<(String, String), String>,
    options: ServerOptions,
    stderr: StderrTail,
    // Kept last: removed after the process has stopped.
    _temp: Option<Arc<tempfile::TempDir>>,
}

impl Server {
    /// A server with the demo tenant in a fresh temporary directory.
    pub fn start() -> Self {
        Self::start_with(ServerOptions::default())
    }

    /// A server with these options.
    ///
    /// # Panics
    /// When it does not start (with its standard error).
    pub fn start_with(options: ServerOptions) -> Self {
        Self::spawn(options, None)
    }

    fn spawn(options: ServerOptions, temp: Option<Arc<tempfile::TempDir>>) -> Self {
        let (temp, data_dir) = match (&options.data_dir, temp) {
            (Some(dir), temp) => (temp, dir.clone()),
            (None, Some(temp)) => {
                let dir = temp.path().join("data");
                (Some(temp), dir)
            }
            (None, None) => {
                let temp = Arc::new(tempfile::tempdir().expect("create a temporary directory"));
                let dir = temp.path().join("data");
                (Some(temp), dir)
            }
        };
        let binary = options.binary.clone().unwrap_or_else(server_binary);
        let mut command = serve_command(&binary, &data_dir);
        if let Some(log) = &options.log {
            command.env("RUST_LOG", log);
        }
        let mut config = options.config.clone();
        if let Some(tenants) = &options.tenants {
            config.push('\n');
            config.push_str(&tenants.toml());
        }
        if !config.trim().is_empty() {
            let dir = data_dir.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir).expect("create the config directory");
            let file = dir.join(format!("{}.toml", unique("config")));
            let mut out = std::fs::File::create(&file).expect("write the config file");
            out.write_all(config.as_bytes())
                .expect("write the config file");
            command.arg("--config").arg(&file);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let stderr_lines = StderrTail::follow(&mut child, 2_000);
        let (tx, rx) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(rest) = line.strip_prefix("oms-server: listening on http://") {
                        let _ = tx.send(rest.trim().to_owned());
                    }
                }
            });
        }
        let started = Instant::now();
        let addr = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(addr) => break addr.parse::<SocketAddr>().expect("a socket address"),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(Duration::from_millis(200));
                    let status = child.try_wait().ok().flatten();
                    panic!(
                        "oms-server exited before listening ({status:?}); stderr:\n{}",
                        tail(&stderr_lines)
                    );
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "oms-server exited before listening ({status}); stderr:\n{}",
                    tail(&stderr_lines)
                );
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                panic!(
                    "oms-server did not print `listening on` within {START_TIMEOUT:?}; stderr:\n{}",
                    tail(&stderr_lines)
                );
            }
        };
        let mut tokens = options
            .tenants
            .as_ref()
            .map(|t| t.tokens.clone())
            .unwrap_or_default();
        if options.tenants.is_none() {
            let text = std::fs::read_to_string(data_dir.join("demo-tokens.txt"))
                .expect("read demo-tokens.txt");
            for line in text.lines().filter(|l| !l.starts_with('#')) {
                if let Some((role, token)) = line.split_once('=') {
                    tokens.insert(("demo".to_owned(), role.to_owned()), token.to_owned());
                }
            }
        }
        Self {
            child: Some(child),
            addr,
            data_dir,
            client: Client::new(addr),
            tokens,
            options,
            stderr: stderr_lines,
            _temp: temp,
        }
    }

    /// The token of `role` in the demo tenant (or the only tenant).
    ///
    /// # Panics
    /// When there is none.
    pub fn token(&self, role: &str) -> String {
        self.tokens
            .iter()
            .find(|((_, r), _)| r == role)
            .map(|(_, token)| token.clone())
            .unwrap_or_else(|| panic!("no token for role {role}"))
    }

    /// The token of `role` in `tenant`.
    ///
    /// # Panics
    /// When there is none.
    pub fn tenant_token(&self, tenant: &str, role: &str) -> String {
        self.tokens
            .get(&(tenant.to_owned(), role.to_owned()))
            .cloned()
            .unwrap_or_else(|| panic!("no token for {tenant}/{role}"))
    }

    /// `http://addr`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The value of the unlabelled integer series `name` (a count) on
    /// `/metrics`, read with a platform token when the server has one (the
    /// figures are every tenant's), else an operator's; `None` when the
    /// server does not export it.
    pub async fn metric(&self, name: &str) -> Option<u64> {
        let has_platform = self.tokens.keys().any(|(_, role)| role == "platform");
        let reader = self.token(if has_platform { "platform" } else { "operator" });
        let response = self
            .client
            .http()
            .get(format!("{}/metrics", self.base_url()))
            .bearer_auth(reader)
            .send()
            .await
            .ok()?;
        let text = response.text().await.ok()?;
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
    }

    /// Scripts the next answers of the in-process simulator `system` (as
    /// admin): `faults` such as `BusinessReject`, one answer each.
    pub async fn script_simulator(&self, system: &str, faults: &[&str]) {
        self.client
            .run::<ops::ScriptSimulator>(
                &self.token("admin"),
                ops::script_simulator::Variables {
                    system: system.to_owned(),
                    faults: faults.iter().map(|f| (*f).to_owned()).collect(),
                },
            )
            .await
            .unwrap_or_else(|e| panic!("scriptSimulator {system}: {e:?}"));
    }

    /// The server process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The last lines the server wrote to standard error.
    pub fn stderr_tail(&self) -> String {
        tail(&self.stderr)
    }

    /// Sends SIGTERM and waits for the exit (SIGKILL after a timeout).
    ///
    /// # Panics
    /// When the process was already stopped.
    pub fn stop(&mut self) -> ExitStatus {
        self.stop_with("TERM")
    }

    /// Sends `signal` (a name `kill` takes: `TERM`, `INT`, `HUP`) and
    /// waits for the exit (SIGKILL after a timeout).
    ///
    /// # Panics
    /// When the process was already stopped.
    pub fn stop_with(&mut self, signal: &str) -> ExitStatus {
        let mut child = self.child.take().expect("the server is running");
        signal_and_wait(&mut child, signal)
    }

    /// Starts the server again on the same data directory and
    /// configuration (a new port), after [`Server::stop`].
    pub fn restart(mut self) -> Self {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
        let mut options = self.options.clone();
        options.data_dir = Some(self.data_dir.clone());
        let temp = self._temp.take();
        Self::spawn(options, temp)
    }
}

/// The last lines a child process wrote to standard error, read by a
/// thread as they come and bounded, for failure messages.
#[derive(Clone, Debug, Default)]
pub struct StderrTail(Arc<Mutex<VecDeque<String>>>);

impl StderrTail {
    /// Follows `child`'s piped standard error, keeping its last `keep` lines.
    pub fn follow(child: &mut Child, keep: usize) -> Self {
        let tail = Self::default();
        if let Some(pipe) = child.stderr.take() {
            let lines = tail.0.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Ok(mut lines) = lines.lock() {
                        lines.push_back(line);
                        if lines.len() > keep {
                            lines.pop_front();
                        }
                    }
                }
            });
        }
        tail
    }

    /// The last `n` lines kept, joined by newlines.
    pub fn last(&self, n: usize) -> String {
        self.0
            .lock()
            .map(|lines| {
                let start = lines.len().saturating_sub(n);
                lines
                    .iter()
                    .skip(start)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    }
}

fn tail(lines: &StderrTail) -> String {
    lines.last(60)
}

fn terminate(child: &mut Child) -> ExitStatus {
    signal_and_wait(child, "TERM")
}

/// Sends `signal` (a name `kill` takes) to `child` and waits for its exit;
/// SIGKILL after [`STOP_TIMEOUT`].
pub fn signal_and_wait(child: &mut Child, signal: &str) -> ExitStatus {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status();
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        if started.elapsed() > STOP_TIMEOUT {
            let _ = child.kill();
            return child.wait().expect("wait for the killed server");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }
}

/// A GraphQL error as the server sends it.
#[derive(Clone, Debug, PartialEq)]
pub struct GqlError {
    /// The HTTP status.
    pub status: u16,
    /// `errors[0].message`.
    pub message: String,
    /// `errors[0].extensions.code`, if any.
    pub code: Option<String>,
    /// `errors[0].extensions`.
    pub extensions: Value,
    /// The whole body.
    pub body: Value,
}

impl GqlError {
    /// The code, or `-` when the error has none.
    pub fn code(&self) -> &str {
        self.code.as_deref().unwrap_or("-")
    }
}

/// An HTTP client for one server.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    /// `http://addr/graphql`.
    pub endpoint: String,
    /// `http://addr`.
    pub base: String,
}

impl Client {
    /// A client for the server at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .build()
            .expect("build the HTTP client");
        Self {
            http,
            endpoint: format!("http://{addr}/graphql"),
            base: format!("http://{addr}"),
        }
    }

    /// The underlying reqwest client.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// POSTs `body` (any JSON) to `/graphql`; the status and the JSON body
    /// (`Value::Null` when it is not JSON).
    ///
    /// # Panics
    /// When the request cannot be sent.
    pub async fn post(&self, token: Option<&str>, body: &Value) -> (u16, Value) {
        self.try_post(token, body).await.expect("send the request")
    }

    /// [`Client::post`], with transport failures as errors.
    ///
    /// # Errors
    /// The request could not be sent or its answer not read.
    pub async fn try_post(
        &self,
        token: Option<&str>,
        body: &Value,
    ) -> Result<(u16, Value), reqwest::Error> {
        let mut request = self.http.post(&self.endpoint).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// Runs a raw GraphQL document.
    pub async fn raw(&self, token: &str, query: &str, variables: Value) -> (u16, Value) {
        self.post(
            Some(token),
            &json!({"query": query, "variables": variables}),
        )
        .await
    }

    /// Runs the typed operation `Q`: its data, or its first error.
    pub async fn run<Q: GraphQLQuery>(
        &self,
        token: &str,
        variables: Q::Variables,
    ) -> Result<Q::ResponseData, GqlError> {
        let body = serde_json::to_value(Q::build_query(variables)).expect("serialize the query");
        match self.try_post(Some(token), &body).await {
            Ok((status, body)) => decode::<Q>(status, body),
            Err(error) => Err(GqlError {
                status: 0,
                message: format!("transport: {error}"),
                code: None,
                extensions: Value::Null,
                body: Value::Null,
            }),
        }
    }
}

/// Decodes a response body for `Q`.
pub fn decode<Q: GraphQLQuery>(status: u16, body: Value) -> Result<Q::ResponseData, GqlError> {
    if let Some(error) = body
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        let extensions = error.get("extensions").cloned().unwrap_or(Value::Null);
        return Err(GqlError {
            status,
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            code: extensions
                .get("code")
                .and_then(Value::as_str)
                .map(str::to_owned),
            extensions,
            body,
        });
    }
    match body
        .get("data")
        .cloned()
        .map(serde_json::from_value::<Q::ResponseData>)
    {
        Some(Ok(data)) if status == 200 => Ok(data),
        other => Err(GqlError {
            status,
            message: format!(
                "undecodable response: {:?}",
                other.map(|decoded| decoded.err())
            ),
            code: None,
            extensions: Value::Null,
            body,
        }),
    }
}

/// The answer of a mutation field of an operation that had no error
/// (`decode` returns the first error): mutation fields are nullable so that
/// one that fails answers null beside the others of its request.
pub fn answered<T>(field: Option<T>) -> T {
    field.expect("a mutation field answers unless an error says why")
}

/// A line of the default price book (`fiber-1g`, `fiber-10g`,
/// `sdwan-edge`).
pub fn line(line_id: &str, offering: &str, quantity: i64) -> ops::add_quote_line::LineInput {
    ops::add_quote_line::LineInput {
        line_id: line_id.to_owned(),
        offering_id: offering.to_owned(),
        offering_version: 1,
        quantity,
        term_months: 24,
        options: Vec::new(),
    }
}

/// The quote-flow steps every test and the benchmark use.
impl Client {
    /// `createQuote`; the new quote's id.
    pub async fn create_quote(
        &self,
        token: &str,
        command_id: &str,
        customer: &str,
    ) -> Result<String, GqlError> {
        self.run::<ops::CreateQuote>(
            token,
            ops::create_quote::Variables {
                command_id: command_id.to_owned(),
                customer_id: customer.to_owned(),
                catalog_version: None,
            },
        )
        .await
        .map(|data| answered(data.create_quote).id)
    }

    /// `addQuoteLine` with a line of `offering`; the new version.
    pub async fn add_line(
        &self,
        token: &str,
        quote: &str,
        line_id: &str,
        offering: &str,
    ) -> Result<i64, GqlError> {
        self.run::<ops::AddQuoteLine>(
            token,
            ops::add_quote_line::Variables {
                command_id: unique("add"),
                quote_id: quote.to_owned(),
                expected_version: None,
                line: line(line_id, offering, 1),
            },
        )
        .await
        .map(|data| answered(data.add_quote_line).version)
    }

    /// `priceQuote` with `discount` percent; the new version.
    pub async fn price(&self, token: &str, quote: &str, discount: &str) -> Result<i64, GqlError> {
        self.run::<ops::PriceQuote>(
            token,
            ops::price_quote::Variables {
                command_id: unique("price"),
                quote_id: quote.to_owned(),
                expected_version: None,
                discount_percent: Some(discount.to_owned()),
            },
        )
        .await
        .map(|data| answered(data.price_quote).version)
    }

    /// `recordProposal` then `recordSignature` for `revision`.
    pub async fn propose_and_sign(
        &self,
        token: &str,
        quote: &str,
        revision: i64,
    ) -> Result<i64, GqlError> {
        let hash = format!("sha256-{quote}-{revision}");
        self.run::<ops::RecordProposal>(
            token,
            ops::record_proposal::Variables {
                command_id: unique("proposal"),
                quote_id: quote.to_owned(),
                expected_version: None,
                revision,
                artifact_id: format!("doc-{quote}-{revision}"),
                artifact_hash: hash.clone(),
                template_version: "t-1".to_owned(),
            },
        )
        .await?;
        self.run::<ops::RecordSignature>(
            token,
            ops::record_signature::Variables {
                command_id: unique("signature"),
                quote_id: quote.to_owned(),
                expected_version: None,
                revision,
                signer: "Jane Customer".to_owned(),
                provider_reference: format!("esign-{quote}"),
                artifact_hash: hash,
            },
        )
        .await
        .map(|data| answered(data.record_signature).version)
    }

    /// `acceptQuote`; the new version.
    pub async fn accept(&self, token: &str, quote: &str) -> Result<i64, GqlError> {
        self.run::<ops::AcceptQuote>(
            token,
            ops::accept_quote::Variables {
                command_id: unique("accept"),
                quote_id: quote.to_owned(),
                expected_version: None,
                billing_account: "ba-1".to_owned(),
            },
        )
        .await
        .map(|data| answered(data.accept_quote).version)
    }

    /// The whole quote flow with `lines` lines of `offering`, up to and
    /// including acceptance; the quote's id.
    pub async fn accepted_quote(
        &self,
        token: &str,
        customer: &str,
        offerings: &[&str],
    ) -> Result<String, GqlError> {
        let quote = self
            .create_quote(token, &unique("create"), customer)
            .await?;
        for (i, offering) in offerings.iter().enumerate() {
            self.add_line(token, &quote, &format!("line-{}", i + 1), offering)
                .await?;
        }
        self.price(token, &quote, "5").await?;
        self.propose_and_sign(token, &quote, 1).await?;
        self.accept(token, &quote).await?;
        Ok(quote)
    }
}
