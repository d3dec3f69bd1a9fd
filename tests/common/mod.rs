//! Test harness: the strict memory store served on loopback (owned by the
//! test, so it can be inspected and broken while the daemon binary writes to
//! it, and after the daemon exits), simulated regional endpoints, and the
//! built daemon binary as a child process. Every wait is bounded.
#![allow(dead_code)]

pub mod ha;
pub mod lever;

use std::future::Future;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use route53_failover::demo::{Endpoint, Mode};
use route53_failover::provider::faults::{Faulty, MemoryStore};
use route53_failover::provider::memory::MemoryProvider;
use route53_failover::provider::{RecordSet, RecordType};
use route53_failover::status::Status;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

pub const BIN: &str = env!("CARGO_BIN_EXE_route53-failover");

pub struct Store {
    pub store: Arc<MemoryStore>,
    pub url: String,
    _stop: tokio_util::sync::DropGuard,
}

/// Serves a fresh store holding `zones` on 127.0.0.1.
pub async fn start_store(zones: &[&str]) -> Store {
    let store = Arc::new(Faulty::new(MemoryProvider::new(
        zones,
        Duration::from_millis(300),
    )));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let app = route53_failover::provider::remote::router(store.clone());
    let s = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(s.cancelled_owned())
            .await;
    });
    Store {
        store,
        url,
        _stop: stop.drop_guard(),
    }
}

impl Store {
    /// The latency records of `name` (type A), by set identifier.
    pub fn members(&self, zone: &str, name: &str) -> Vec<RecordSet> {
        self.store
            .records(zone)
            .unwrap()
            .into_iter()
            .filter(|r| r.name == name && r.rtype == RecordType::A)
            .collect()
    }

    /// Changes the zone as another tool would (not counted, never faulted).
    pub fn edit(&self, zone: &str, action: route53_failover::provider::Action, record: RecordSet) {
        self.store
            .apply_direct(
                zone,
                &[route53_failover::provider::Change { action, record }],
            )
            .unwrap();
    }

    /// Waits until the daemon has finished converging on `name`: `n`
    /// members published, each carrying its health check (attached in a
    /// batch after the records), and the ownership marker claiming each.
    /// A baseline taken before that may see the daemon's own late writes
    /// (under load, seconds late) as the action's.
    pub async fn settled(&self, zone: &str, name: &str, n: usize) {
        let marker = format!("_route53-failover.{name}");
        wait_until(
            "published, checks attached, every member claimed",
            Duration::from_secs(20),
            || async {
                let members = self.members(zone, name);
                let claims = self
                    .store
                    .records(zone)
                    .unwrap()
                    .into_iter()
                    .find(|r| r.name == marker && r.rtype == RecordType::Txt)
                    .map_or(0, |m| m.values.len());
                members.len() == n
                    && members.iter().all(|r| r.health_check_id.is_some())
                    && claims == n
            },
        )
        .await;
    }

    pub fn member_ids(&self, zone: &str, name: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .members(zone, name)
            .into_iter()
            .filter_map(|r| r.set_identifier)
            .collect();
        ids.sort();
        ids
    }
}

pub struct Endpoints {
    pub list: Vec<Endpoint>,
    _stop: tokio_util::sync::DropGuard,
}

impl Endpoints {
    pub async fn start(regions: &[&str]) -> Endpoints {
        let stop = CancellationToken::new();
        let mut list = Vec::new();
        for r in regions {
            list.push(
                Endpoint::start(r, Duration::from_millis(1), stop.clone())
                    .await
                    .unwrap(),
            );
        }
        Endpoints {
            list,
            _stop: stop.drop_guard(),
        }
    }

    pub fn set(&self, region: &str, mode: Mode) {
        self.list
            .iter()
            .find(|e| e.name == region)
            .unwrap()
            .set_mode(mode);
    }
}

/// Set identifiers are `id-<region>` so they stay unique per name.
pub fn set_id(region: &str) -> String {
    format!("id-{region}")
}

/// A config for `api.example.test` over the endpoints, on the remote store,
/// with fast probes (200ms, rise 2, fall 3).
pub fn config(store: &Store, eps: &Endpoints, min_healthy: usize, resync: &str) -> String {
    let provider = format!(
        "{{kind: memory, endpoint_url: \"{}\", max_requests_per_second: 50}}",
        store.url
    );
    config_with_provider(&provider, eps, min_healthy, resync)
}

/// The same, with any `provider:` value.
pub fn config_with_provider(
    provider: &str,
    eps: &Endpoints,
    min_healthy: usize,
    resync: &str,
) -> String {
    let mut members = String::new();
    for (i, e) in eps.list.iter().enumerate() {
        members.push_str(&format!(
            "      - region: {r}\n        set_identifier: {id}\n        target: {{values: [192.0.2.{n}]}}\n        probe: {{connect_to: \"{addr}\"}}\n",
            r = e.name,
            id = set_id(&e.name),
            n = i + 1,
            addr = e.addr
        ));
    }
    format!(
        r#"owner: e2e
listen: 127.0.0.1:0
provider: {provider}
resync_interval: {resync}
defaults:
  probe: {{interval: 200ms, timeout: 150ms, rise: 2, fall: 3}}
  policy: {{min_healthy: {min_healthy}}}
records:
  - name: api.example.test
    zone: example.test
    probe: {{url: "http://api.example.test/health", expect: {{status: [200], body_contains: ok}}}}
    regions:
{members}"#
    )
}

/// Writes the file the way Kubernetes updates a ConfigMap: a new file
/// renamed over the old one.
pub fn replace_file(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

pub struct Daemon {
    pub child: Child,
    /// The config file it runs (and watches).
    pub config_path: PathBuf,
    pub base: String,
    pub stderr: Arc<std::sync::Mutex<String>>,
    _dir: tempfile::TempDir,
}

/// Starts the daemon binary with `run --config` and waits for it to listen.
pub async fn start_daemon(config: &str) -> Daemon {
    start_daemon_with(config, None).await
}

/// The same, with at most `descriptors` open files (soft and hard limit,
/// as `ulimit -n` sets them), when given.
pub async fn start_daemon_with(config: &str, descriptors: Option<u64>) -> Daemon {
    launch(
        config,
        Launch {
            descriptors,
            ..Launch::default()
        },
    )
    .await
}

/// How a daemon is started, beyond its config.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// At most this many open files (`ulimit -n`).
    pub descriptors: Option<u64>,
    /// Its wall clock this far off the machine's (libfaketime's offset,
    /// as `+20s` or `-20s`); its monotonic clock is left alone.
    pub clock: Option<String>,
    /// More environment variables (a failpoint).
    pub env: Vec<(String, String)>,
}

/// Debian's libfaketime (package `faketime`), for threaded programs.
fn libfaketime() -> PathBuf {
    let lib = std::fs::read_dir("/usr/lib")
        .unwrap()
        .flatten()
        .map(|d| d.path().join("faketime/libfaketimeMT.so.1"))
        .chain([PathBuf::from("/usr/lib/faketime/libfaketimeMT.so.1")])
        .find(|p| p.exists());
    lib.expect("libfaketime is installed (Debian package faketime; .ci/run installs it)")
}

pub async fn launch(config: &str, how: Launch) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("config.yaml");
    std::fs::write(&path, config).unwrap();
    let mut command = match how.descriptors {
        None => Command::new(BIN),
        Some(n) => {
            let mut c = Command::new("sh");
            c.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\""), BIN]);
            c
        }
    };
    if let Some(offset) = &how.clock {
        // libfaketime preloaded into the daemon itself (the `faketime`
        // command would run it as a child, out of reach of its signals).
        command
            .env("LD_PRELOAD", libfaketime())
            .env("FAKETIME", offset)
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    }
    command.envs(how.env.iter().map(|(k, v)| (k, v)));
    let mut child = command
        .args(["run", "--config"])
        .arg(&path)
        .env("RUST_LOG", "info")
        // Dummy credentials for moto; no instance metadata (not loopback),
        // no profile files.
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stderr = Arc::new(std::sync::Mutex::new(String::new()));
    let mut err_lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let sink = stderr.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = err_lines.next_line().await {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), out.next_line())
        .await
        .expect("the daemon prints its address within 20s")
        .unwrap()
        .unwrap_or_else(|| panic!("daemon exited: {}", stderr.lock().unwrap()));
    let base = line
        .strip_prefix("route53-failover listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Daemon {
        child,
        config_path: path,
        base,
        stderr,
        _dir: dir,
    }
}

impl Daemon {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .unwrap()
    }

    pub async fn status(&self) -> Status {
        self.get("/status").await.json().await.unwrap()
    }

    pub async fn metrics(&self) -> String {
        self.get("/metrics").await.text().await.unwrap()
    }

    /// Sends `signal` (`STOP`, `CONT`, ...) to the daemon.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("running");
        let ok = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal} {pid}");
    }

    pub fn sigterm(&self) {
        let pid = self.child.id().expect("running");
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM {pid}");
    }

    /// SIGTERM, then waits (at most 20 s) for a clean exit.
    pub async fn stop(mut self) {
        self.sigterm();
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("the daemon exits within 20s of SIGTERM")
            .unwrap();
        assert!(status.success(), "exit {status}: {}", self.logs());
    }

    pub fn logs(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The descriptors the daemon process holds open now.
    pub fn open_descriptors(&self) -> usize {
        let pid = self.child.id().expect("running");
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// The member of the first record in `region`, from /status.
    pub async fn member(&self, region: &str) -> route53_failover::status::MemberSnapshot {
        self.status().await.member(region).cloned().unwrap()
    }
}

/// Polls `check` every 50ms until it holds; panics with `what` after `limit`.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out after {limit:?} waiting until {what}");
}

/// A metric sample's value from the text exposition (labels given as
/// `k="v"` fragments that must all appear).
pub fn metric(page: &str, name: &str, labels: &[&str]) -> Option<f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.split(['{', ' ']).next() == Some(name) && labels.iter().all(|f| l.contains(f))
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .reduce(|a, b| a + b)
}

/// Starts a store, three endpoints and a daemon over them, and waits until
/// all three members are published and settled ([`Store::settled`]).
pub async fn three_regions(min_healthy: usize, resync: &str) -> (Store, Endpoints, Daemon) {
    let store = start_store(&["example.test"]).await;
    let eps = Endpoints::start(&["us-east-1", "eu-west-1", "ap-southeast-2"]).await;
    let daemon = start_daemon(&config(&store, &eps, min_healthy, resync)).await;
    store.settled("example.test", "api.example.test", 3).await;
    (store, eps, daemon)
}

/// Runs `route53-failover COMMAND --config FILE` on `text` to its end
/// (at most 30 s), with the dummy credentials moto takes and no instance
/// metadata.
pub async fn run_with_config(command: &str, text: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, text).unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        Command::new(BIN)
            .args([command, "--config"])
            .arg(&path)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{command} ends within 30s"))
    .unwrap()
}

/// `promtool check metrics` passes on a metrics page (the exposition
/// format and Prometheus's naming rules).
pub fn promtool_check_metrics(page: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (Debian package prometheus; .ci/run installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A loopback address that refuses connections for as long as the socket
/// returned lives: bound and never listening, so no test beside this one
/// can take its port (as it could one bound, dropped, then handed over).
pub fn refusing_port() -> (tokio::net::TcpSocket, std::net::SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

/// The first thing `find` finds in a child's output, line by line, within
/// 30 s; the rest of the output is read and dropped, so the child never
/// writes to a closed pipe. For a server's address when it chose its own
/// port.
pub async fn said<R>(out: R, what: &str, find: impl Fn(&str) -> Option<String>) -> String
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    let mut lines = BufReader::new(out).lines();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(found) = find(&line) {
                return Some(found);
            }
        }
        None
    })
    .await;
    let mut rest = lines.into_inner();
    tokio::spawn(async move { tokio::io::copy(&mut rest, &mut tokio::io::sink()).await });
    found
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("the child did not say {what} within 30s"))
}

/// The README's first command, `demo`, as a child process (killed when
/// dropped) on a port the OS chooses; returns it and its base URL, read
/// from its `listening on` line. A port chosen here and handed over could
/// be taken by a test beside this one before the demo binds it.
pub async fn start_demo() -> (tokio::process::Child, String) {
    let mut child = Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = said(child.stdout.take().unwrap(), "the demo's address", |line| {
        line.strip_prefix("route53-failover listening on ")
            .map(String::from)
    })
    .await;
    (child, base)
}

/// moto's server (the Route53 emulator) on a loopback port it binds itself,
/// from the venv `.ci/run` creates; stopped when dropped.
///
/// moto binds port 0 and prints the port it holds: choosing a free port here
/// and handing it over would leave a window in which a test running beside
/// this one binds the same port, and both would talk to one server.
pub struct Moto {
    child: std::process::Child,
    pub url: String,
}

/// Starts moto's threaded server on 127.0.0.1, port 0, sends its stdout
/// nowhere (nobody reads the pipe after the port), then writes the port to
/// the pipe.
const MOTO_ON_A_PORT_OF_ITS_OWN: &str = "\
import os, threading
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False)
server.start()
port = server.get_host_and_port()[1]
os.environ['MOTO_PORT'] = str(port)
said = os.dup(1)
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
os.write(said, f'{port}\\n'.encode())
os.close(said)
threading.Event().wait()
";

impl Moto {
    pub async fn start() -> Moto {
        let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin");
        assert!(
            venv.join("moto_server").exists(),
            "{}/moto_server is missing: .ci/run creates the venv with moto[server]",
            venv.display()
        );
        let python = venv.join("python");
        let mut child = std::process::Command::new(python)
            .args(["-c", MOTO_ON_A_PORT_OF_ITS_OWN])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = tokio::process::ChildStdout::from_std(child.stdout.take().unwrap()).unwrap();
        // Held before the port is read, so a moto that never says it is
        // stopped when the test fails.
        let mut moto = Moto {
            child,
            url: String::new(),
        };
        let port = said(stdout, "moto's port", |line| {
            line.trim().parse::<u16>().ok().map(|p| p.to_string())
        })
        .await;
        moto.url = format!("http://127.0.0.1:{port}");
        let probe = format!("{}/moto-api/", moto.url);
        wait_until("moto answers", Duration::from_secs(30), || async {
            reqwest::get(&probe).await.is_ok()
        })
        .await;
        moto
    }

    /// An SDK configuration for this server (any key works; requests must be signed).
    pub fn conf(&self) -> aws_sdk_route53::Config {
        aws_sdk_route53::Config::builder()
            .behavior_version(aws_sdk_route53::config::BehaviorVersion::latest())
            .region(aws_sdk_route53::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_route53::config::Credentials::new(
                "test", "test", None, None, "tests",
            ))
            .endpoint_url(&self.url)
            .build()
    }

    /// A state store table as `docs/design.md#the-state-store` makes it.
    pub async fn create_table(&self, table: &str, sort_key: &str) {
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-2"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "tests",
            ))
            .endpoint_url(&self.url)
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(conf);
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(sort_key)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("pk")
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(sort_key)
                    .key_type(KeyType::Range)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }

    /// Creates a public hosted zone; returns its id.
    pub async fn create_zone(&self, name: &str) -> String {
        let client = aws_sdk_route53::Client::from_conf(self.conf());
        let out = client
            .create_hosted_zone()
            .name(name)
            .caller_reference(format!("test-{name}-{}", std::process::id()))
            .send()
            .await
            .unwrap();
        out.hosted_zone()
            .unwrap()
            .id()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string()
    }
}

/// The crate's DynamoDB state store on an emulated endpoint (moto, or a
/// fault proxy in front of it), signed with test credentials.
pub async fn dynamo_store(
    url: &str,
    table: &str,
    owner: &str,
    timeout: Duration,
) -> route53_failover::store::DynamoStore {
    route53_failover::store::DynamoStore::new(
        table,
        "us-east-2",
        Some(url),
        owner,
        timeout,
        Some(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "tests",
        )),
    )
    .await
}

/// Creates one record set through the SDK, as a person or another tool
/// would.
pub async fn create_record(
    client: &aws_sdk_route53::Client,
    zone: &str,
    record: aws_sdk_route53::types::ResourceRecordSet,
) {
    use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch};
    let change = Change::builder()
        .action(ChangeAction::Create)
        .resource_record_set(record)
        .build()
        .unwrap();
    client
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(ChangeBatch::builder().changes(change).build().unwrap())
        .send()
        .await
        .unwrap();
}

/// An apigatewayv2 client for moto's server in `region`.
pub fn apigw_client(url: &str, region: &str) -> aws_sdk_apigatewayv2::Client {
    use aws_sdk_apigatewayv2::config;
    let conf = config::Config::builder()
        .behavior_version(config::BehaviorVersion::latest())
        .region(config::Region::new(region.to_string()))
        .credentials_provider(config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .endpoint_url(url)
        .build();
    aws_sdk_apigatewayv2::Client::from_conf(conf)
}

/// A regional custom domain (TLS 1.2) in moto's API Gateway in `region`,
/// whose regional target is `target` (moto does not make one up).
pub async fn create_domain(url: &str, region: &str, domain: &str, target: &str) {
    use aws_sdk_apigatewayv2::types::{DomainNameConfiguration, EndpointType, SecurityPolicy};
    apigw_client(url, region)
        .create_domain_name()
        .domain_name(domain)
        .domain_name_configurations(
            DomainNameConfiguration::builder()
                .api_gateway_domain_name(target)
                .hosted_zone_id("Z1UJRXOUMOOFQ8")
                .endpoint_type(EndpointType::Regional)
                .security_policy(SecurityPolicy::Tls12)
                .certificate_arn(format!(
                    "arn:aws:acm:{region}:123456789012:certificate/test"
                ))
                .build(),
        )
        .send()
        .await
        .unwrap();
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fault-injecting proxy in front of an upstream (moto, or a memory
/// store): a queued fault answers the next request whose method and path
/// match with a canned status and body (Route53's XML error format); a
/// partition answers 503 to every request whose body contains a given
/// text; everything else is forwarded as it is. Every request is logged
/// (time, method, path, body, status), so a test can tell which of several
/// daemons, each behind its own proxy, sent what and when.
/// Queued faults: (method, path ending, HTTP status, body).
type Faults = Arc<std::sync::Mutex<std::collections::VecDeque<(String, String, u16, String)>>>;
/// A stand-in for what the upstream cannot answer (or should not): a
/// request → a JSON answer, no answer at all, or `None` to forward.
pub type Answer = Arc<dyn Fn(&Asked) -> Option<Reply> + Send + Sync>;

/// What a stand-in sees of a request.
pub struct Asked<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub authorization: &'a str,
    pub body: &'a str,
}

impl Asked<'_> {
    /// The region a SigV4-signed request is for (its credential scope:
    /// `Credential=<key>/<date>/<region>/<service>/aws4_request`).
    pub fn region(&self) -> Option<&str> {
        let scope = self.authorization.split("Credential=").nth(1)?;
        scope.split('/').nth(2)
    }
}

pub enum Reply {
    /// This status and JSON body.
    Json(u16, String),
    /// Nothing, ever: the caller's own timeout ends it.
    Hang,
}

#[derive(Debug, Clone)]
pub struct Logged {
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub body: String,
    pub status: u16,
    /// The writer's term the request named (`provider::TERM_HEADER`).
    pub term: Option<u64>,
}

pub struct FaultProxy {
    pub url: String,
    faults: Faults,
    log: Arc<std::sync::Mutex<Vec<Logged>>>,
    partition: Arc<std::sync::Mutex<Option<String>>>,
    answer: Arc<std::sync::Mutex<Option<Answer>>>,
    _stop: tokio_util::sync::DropGuard,
}

impl FaultProxy {
    pub async fn start(upstream: &str) -> FaultProxy {
        use axum::body::Bytes;
        use axum::http::{HeaderMap, Method, StatusCode, Uri};
        let faults: Faults = Default::default();
        let log: Arc<std::sync::Mutex<Vec<Logged>>> = Default::default();
        let partition: Arc<std::sync::Mutex<Option<String>>> = Default::default();
        let answer: Arc<std::sync::Mutex<Option<Answer>>> = Default::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_end_matches('/').to_string();
        let (queue, journal, cut) = (faults.clone(), log.clone(), partition.clone());
        let stand_in = answer.clone();
        let client = reqwest::Client::new();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (queue, journal, cut) = (queue.clone(), journal.clone(), cut.clone());
                let stand_in = stand_in.lock().unwrap().clone();
                let client = client.clone();
                let upstream = upstream.clone();
                async move {
                    let at = Instant::now();
                    let text = String::from_utf8_lossy(&body).to_string();
                    let term = headers
                        .get(route53_failover::provider::TERM_HEADER)
                        .and_then(|v| v.to_str().ok()?.parse().ok());
                    let note = |status: u16| {
                        journal.lock().unwrap().push(Logged {
                            at,
                            method: method.to_string(),
                            path: uri.path().to_string(),
                            body: text.clone(),
                            status,
                            term,
                        })
                    };
                    let partitioned = cut
                        .lock()
                        .unwrap()
                        .as_ref()
                        .is_some_and(|needle| text.contains(needle.as_str()));
                    if partitioned {
                        note(503);
                        return (StatusCode::SERVICE_UNAVAILABLE, "partitioned").into_response();
                    }
                    let fault = {
                        let mut q = queue.lock().unwrap();
                        let pos = q.iter().position(|(m, p, _, _)| {
                            *m == method.as_str() && uri.path().ends_with(p.as_str())
                        });
                        pos.and_then(|i| q.remove(i))
                    };
                    let answered = stand_in.and_then(|f| {
                        f(&Asked {
                            method: method.as_str(),
                            path: uri.path(),
                            query: uri.query().unwrap_or(""),
                            authorization: headers
                                .get("authorization")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or(""),
                            body: &text,
                        })
                    });
                    match answered {
                        Some(Reply::Json(status, body)) => {
                            note(status);
                            return (
                                StatusCode::from_u16(status).unwrap(),
                                [("content-type", "application/json")],
                                body,
                            )
                                .into_response();
                        }
                        Some(Reply::Hang) => {
                            note(0);
                            std::future::pending::<()>().await;
                        }
                        None => {}
                    }
                    if let Some((_, _, status, body)) = fault {
                        note(status);
                        return (
                            StatusCode::from_u16(status).unwrap(),
                            [("content-type", "text/xml")],
                            body,
                        )
                            .into_response();
                    }
                    let target = format!(
                        "{upstream}{}",
                        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
                    );
                    let mut req = client.request(method.clone(), target).body(body);
                    for (k, v) in headers.iter() {
                        if k != "host" && k != "content-length" {
                            req = req.header(k, v);
                        }
                    }
                    let resp = req.send().await.unwrap();
                    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
                    note(status.as_u16());
                    let ctype = resp
                        .headers()
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("text/xml")
                        .to_string();
                    let body = resp.bytes().await.unwrap();
                    (status, [("content-type", ctype)], body).into_response()
                }
            },
        );
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(s.cancelled_owned())
                .await;
        });
        FaultProxy {
            url,
            faults,
            log,
            partition,
            answer,
            _stop: stop.drop_guard(),
        }
    }

    /// From now on, `f` answers the requests it returns `Some` for (what
    /// the upstream cannot answer); the others are forwarded.
    pub fn answer(&self, f: Answer) {
        *self.answer.lock().unwrap() = Some(f);
    }

    /// From now on, every request whose body contains `needle` gets a 503
    /// (an empty needle: every request); `None` heals the partition.
    pub fn partition(&self, needle: Option<&str>) {
        *self.partition.lock().unwrap() = needle.map(str::to_string);
    }

    /// Every request so far.
    pub fn log(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }

    /// The next `times` requests of `method` to a path ending in `path_end`
    /// get a Route53 error with this HTTP status and code.
    pub fn inject(&self, method: &str, path_end: &str, times: usize, status: u16, code: &str) {
        let body = format!(
            "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>injected {code}</Message></Error><RequestId>test</RequestId></ErrorResponse>"
        );
        let mut q = self.faults.lock().unwrap();
        for _ in 0..times {
            q.push_back((
                method.to_string(),
                path_end.to_string(),
                status,
                body.clone(),
            ));
        }
    }
}

use axum::response::IntoResponse;

/// A TCP path to an endpoint that a test can break for one daemon (its
/// `connect_to` points here): while cut, connections are closed as soon as
/// they are accepted, and those open are dropped at once.
pub struct TcpPath {
    pub addr: String,
    cut: tokio::sync::watch::Sender<bool>,
    _stop: tokio_util::sync::DropGuard,
}

impl TcpPath {
    pub async fn start(target: &str) -> TcpPath {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (cut, watch) = tokio::sync::watch::channel(false);
        let stop = CancellationToken::new();
        let (s, target) = (stop.clone(), target.to_string());
        tokio::spawn(async move {
            loop {
                let (mut inbound, _) = tokio::select! {
                    a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                    _ = s.cancelled() => return,
                };
                if *watch.borrow() {
                    continue;
                }
                let (s, target, mut cut) = (s.clone(), target.clone(), watch.clone());
                tokio::spawn(async move {
                    let connect = tokio::net::TcpStream::connect(&target);
                    let Ok(Ok(mut outbound)) =
                        tokio::time::timeout(Duration::from_secs(2), connect).await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.wait_for(|c| *c) => {}
                        _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                        _ = s.cancelled() => {}
                    }
                });
            }
        });
        TcpPath {
            addr,
            cut,
            _stop: stop.drop_guard(),
        }
    }

    /// Breaks the path (`true`) or mends it.
    pub fn cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}
