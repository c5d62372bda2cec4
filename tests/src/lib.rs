//! Test harness: a moto server per test, the platform served over HTTP against it, and helpers
//! to send signed GitHub deliveries and to look at what happened in the emulator.
//!
//! The emulator is `tools/emulator.py` run by the workspace's `.venv` (`make venv` installs
//! it; `make test` does so first); `EPHEMERA_VENV` names another venv.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ephemera_aws::{emulator_config, DynamoRegistry};
use ephemera_domain::{Environment, EnvironmentName, Status};
use ephemera_wiring::{Clients, Config};
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub mod bench;
pub mod chaos;
pub mod faults;
pub mod github;
pub mod iam;
pub mod least_privilege;
pub mod policy;
pub mod resources;

pub const SECRET: &str = "test-webhook-secret";
pub const REGION: &str = "us-east-1";

/// The sample events under `events/` and what they map to.
pub use ephemera_app::memory::fixtures;

/// A program from the project's Python venv (`make venv`).
pub fn venv_bin(name: &str) -> PathBuf {
    let venv = std::env::var("EPHEMERA_VENV").map(PathBuf::from).unwrap_or_else(|_| workspace_root().join(".venv"));
    venv.join("bin").join(name)
}

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The emulator (`tools/emulator.py`: moto server, DynamoDB serialized) on a free loopback
/// port, stopped when dropped. It records every call made to it in `calls` (see
/// `tools/calls.py`), removed when dropped.
pub struct Emulator {
    child: Child,
    pub endpoint: String,
    pub calls: PathBuf,
}

impl Emulator {
    pub fn start() -> anyhow::Result<Self> {
        let python = venv_bin("python");
        if !python.exists() {
            bail!("no emulator venv at {}: run `make venv` (make test does)", python.display());
        }
        for _ in 0..5 {
            if let Some(emulator) = Self::start_on_a_free_port(&python)? {
                return Ok(emulator);
            }
        }
        bail!("the emulator found no free port in 5 tries")
    }

    /// Started on a port found free; None if another process bound it first (a concurrent
    /// test's emulator, say), which the emulator's ready file tells apart from this one.
    fn start_on_a_free_port(python: &std::path::Path) -> anyhow::Result<Option<Self>> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let bin = workspace_root().join("tools/emulator.py");
        let unique = format!("{}-{port}-{}", std::process::id(), uuid::Uuid::new_v4());
        let calls = std::env::temp_dir().join(format!("ephemera-calls-{unique}.jsonl"));
        let ready = std::env::temp_dir().join(format!("ephemera-ready-{unique}"));
        let child = Command::new(python)
            .arg(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .arg("--ready")
            .arg(&ready)
            .env("EPHEMERA_EMULATOR_CALLS", &calls)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut emulator = Self { child, endpoint: format!("http://127.0.0.1:{port}"), calls };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if ready.exists() {
                let _ = std::fs::remove_file(&ready);
                return Ok(Some(emulator));
            }
            if emulator.child.try_wait()?.is_some() {
                return Ok(None);
            }
            if Instant::now() > deadline {
                bail!("the emulator did not listen on {port} within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.calls);
    }
}

/// The platform running against its own emulator.
pub struct Platform {
    pub emulator: Emulator,
    pub config: Config,
    /// Straight to the emulator, for the test's own looks.
    pub clients: Clients,
    /// What the platform itself uses (through the fault proxy, when there is one), to create
    /// its resources and read its queues.
    pub platform_clients: Clients,
    /// Each function's clients, with its own access key (see [`least_privilege`]): the calls
    /// made with them are checked against the function's role when the platform is dropped.
    pub functions: least_privilege::FunctionClients,
    pub base_url: String,
    pub http: reqwest::Client,
    running: Option<ephemera_local::Running>,
}

pub fn init_logs() {
    // reqwest is built with rustls and no default crypto provider: ring, as everywhere else.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
}

/// The change a pull request's opening records: environment `env` of `repo`'s pull request
/// `number`, wanted up now, expiring after `ttl`.
pub fn opened_change(
    repo: &ephemera_domain::RepoName,
    number: u64,
    env: &EnvironmentName,
    ttl: chrono::Duration,
) -> ephemera_app::ports::Change {
    use ephemera_domain::{Desired, EnvironmentKind, EventOrder};
    let at = chrono::Utc::now();
    let order = EventOrder::new(at.timestamp(), EventOrder::RANK_OPEN);
    ephemera_app::ports::Change {
        repository: Some(repo.clone()),
        pull_request: Some(number),
        ..ephemera_app::ports::Change::new(
            env.clone(),
            EnvironmentKind::Pr,
            "octocat",
            Desired::Up,
            order,
            at + ttl,
            at,
        )
    }
}

/// Configuration for tests: the given variables over test defaults.
pub fn test_config(vars: &[(&str, &str)]) -> Config {
    let defaults = [
        ("EPHEMERA_GITHUB_WEBHOOK_SECRET", SECRET),
        ("EPHEMERA_BUCKET", "ephemera-test"),
        ("EPHEMERA_STACK_POLL_MILLIS", "50"),
        ("EPHEMERA_STACK_WAIT_SECONDS", "20"),
        ("EPHEMERA_COST_TAGS", "CostCenter=platform"),
    ];
    Config::from_lookup(|k| vars.iter().chain(defaults.iter()).find(|(name, _)| *name == k).map(|(_, v)| v.to_string()))
        .expect("test configuration is valid")
}

impl Platform {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    pub async fn start_with(vars: &[(&str, &str)]) -> Self {
        Self::start_via(vars, None).await
    }

    /// The platform reporting to the fake GitHub at `github_url` with a token, without load
    /// tests, and `more`.
    pub async fn with_fake_github(github_url: &str, more: &[(&str, &str)]) -> Self {
        let mut vars = vec![
            ("EPHEMERA_GITHUB_TOKEN", "test-token"),
            ("EPHEMERA_GITHUB_API_URL", github_url),
            ("EPHEMERA_LOAD_TEST", "false"),
        ];
        vars.extend_from_slice(more);
        Self::start_with(&vars).await
    }

    /// The reaper as its function runs it, catching up with GitHub first, with the reaper's
    /// own clients (its role's permissions).
    pub async fn reaper_catching_up(
        &self,
        clock: std::sync::Arc<dyn ephemera_app::Clock>,
    ) -> ephemera_app::reaper::Reaper {
        use ephemera_wiring::platform;
        let c = &self.config;
        let mut reaper = platform::reaper(&c.shared, &c.reaper, &self.functions.reaper, clock);
        reaper.catch_up = platform::catch_up(&c.shared, &c.reaper, &c.github, &c.webhook, &self.functions.reaper)
            .await
            .expect("GitHub is configured");
        assert!(reaper.catch_up.is_some(), "catching up needs GitHub credentials");
        reaper
    }

    /// The platform talking to its emulator through a fault-injecting proxy (which starts with
    /// no faults). `clients` still reach the emulator directly, for the test's own looks.
    pub async fn start_faulty(vars: &[(&str, &str)], seed: u64) -> (Self, faults::FaultProxy) {
        init_logs();
        let emulator = Emulator::start().expect("emulator starts");
        let proxy = faults::FaultProxy::start(&emulator.endpoint, faults::Faults::NONE, seed).await;
        (Self::start_on(emulator, vars, Some(&proxy.endpoint)).await, proxy)
    }

    async fn start_via(vars: &[(&str, &str)], endpoint: Option<&str>) -> Self {
        init_logs();
        let emulator = Emulator::start().expect("emulator starts");
        Self::start_on(emulator, vars, endpoint).await
    }

    async fn start_on(emulator: Emulator, vars: &[(&str, &str)], endpoint: Option<&str>) -> Self {
        let config = test_config(vars);
        let clients = Clients::new(&emulator_config(&emulator.endpoint, REGION).await);
        let platform_sdk = emulator_config(endpoint.unwrap_or(&emulator.endpoint), REGION).await;
        let platform_clients = Clients::new(&platform_sdk);
        let functions = least_privilege::FunctionClients::new(&platform_sdk);
        let running = ephemera_local::start(
            &config,
            &functions.local(&platform_clients),
            "127.0.0.1:0".parse().unwrap(),
            ephemera_local::WORK_QUEUE,
            identities(),
        )
        .await
        .expect("platform starts");
        Self {
            base_url: format!("http://{}", running.addr),
            emulator,
            config,
            clients,
            platform_clients,
            functions,
            http: reqwest::Client::new(),
            running: Some(running),
        }
    }

    /// Sends `body` as GitHub would: signed with the shared secret.
    pub async fn deliver(&self, event: &str, delivery: &str, body: &[u8]) -> (u16, serde_json::Value) {
        self.deliver_signed(event, delivery, body, &sign(SECRET.as_bytes(), body)).await
    }

    pub async fn deliver_signed(
        &self,
        event: &str,
        delivery: &str,
        body: &[u8],
        signature: &str,
    ) -> (u16, serde_json::Value) {
        let res = self
            .http
            .post(format!("{}/webhooks/github", self.base_url))
            .header("content-type", "application/json")
            .header("user-agent", "GitHub-Hookshot/test")
            .header("x-github-event", event)
            .header("x-github-delivery", delivery)
            .header("x-hub-signature-256", signature)
            .body(body.to_vec())
            .send()
            .await
            .expect("platform answers");
        let status = res.status().as_u16();
        let json = res.json().await.unwrap_or(serde_json::Value::Null);
        (status, json)
    }

    pub fn registry(&self) -> DynamoRegistry {
        DynamoRegistry::new(self.clients.dynamodb().clone(), &self.config.shared.table)
    }

    pub async fn environment(&self, name: &str) -> Option<Environment> {
        use ephemera_app::ports::registry_traits::*;
        self.registry().get(&EnvironmentName::parse(name).unwrap()).await.expect("registry readable")
    }

    /// Waits until the environment is in `status` for its current generation.
    pub async fn wait_for(&self, name: &str, status: Status) -> Environment {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(env) = self.environment(name).await {
                if env.status == status && env.is_converged() {
                    return env;
                }
                if Instant::now() > deadline {
                    panic!("{name} did not reach {status:?}; last seen {env:#?}");
                }
            } else if Instant::now() > deadline {
                panic!("{name} never appeared in the registry");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the environment shows `status` (converged or not, e.g. QUEUED).
    pub async fn wait_for_status(&self, name: &str, status: Status) -> Environment {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.environment(name).await {
                Some(env) if env.status == status => return env,
                last if Instant::now() > deadline => panic!("{name} did not reach {status:?}; last seen {last:#?}"),
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// The live (not deleted) stack of that name: status and tags.
    pub async fn stack(&self, name: &str) -> Option<(String, Vec<(String, String)>)> {
        let out = match self.clients.cloudformation().describe_stacks().stack_name(name).send().await {
            Ok(o) => o,
            Err(_) => return None,
        };
        let s = out.stacks?.into_iter().next()?;
        let status = s.stack_status?.as_str().to_owned();
        if status == "DELETE_COMPLETE" {
            return None;
        }
        let tags = s.tags.unwrap_or_default().into_iter().filter_map(|t| Some((t.key?, t.value?))).collect();
        Some((status, tags))
    }

    /// Names of live stacks whose name starts with `prefix`.
    pub async fn live_stacks(&self, prefix: &str) -> Vec<String> {
        let out = self.clients.cloudformation().list_stacks().send().await.expect("list stacks");
        out.stack_summaries()
            .iter()
            .filter(|s| s.stack_status().map(|st| st.as_str()) != Some("DELETE_COMPLETE"))
            .filter_map(|s| s.stack_name().filter(|n| n.starts_with(prefix)).map(str::to_owned))
            .collect()
    }

    /// Clients acting in `account` (the emulator keeps each account's state apart, by the
    /// account of the role assumed).
    pub async fn clients_in(&self, account: &str) -> Clients {
        let role = format!("arn:aws:iam::{account}:role/ephemera-test");
        let sdk = ephemera_aws::sites::assume_role(self.clients.sdk(), &role, "ephemera-test", None, None)
            .await
            .expect("the emulator lets any role be assumed");
        Clients::new(&sdk)
    }

    /// The live stacks in `account` whose names start with `prefix`.
    pub async fn live_stacks_in(&self, account: &str, prefix: &str) -> Vec<String> {
        let clients = self.clients_in(account).await;
        let out = clients.cloudformation().list_stacks().send().await.expect("list stacks");
        out.stack_summaries()
            .iter()
            .filter(|s| s.stack_status().map(|st| st.as_str()) != Some("DELETE_COMPLETE"))
            .filter_map(|s| s.stack_name().filter(|n| n.starts_with(prefix)).map(str::to_owned))
            .collect()
    }

    /// Every environment and delivery item in the registry table.
    pub async fn table_item_count(&self) -> usize {
        let out = self.clients.dynamodb().scan().table_name(&self.config.shared.table).send().await.expect("scan");
        // The provisioner's claims and totals are the ledger's, written on its own time; the
        // timeline keeps what was announced (a pull request not deployed, say), not state.
        let ledger = |i: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>| {
            let key = |k: &str| i.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            let (pk, sk) = (key("pk"), key("sk"));
            pk.starts_with("CLAIM#") || pk == "TOTALS" || sk.starts_with("EVENT#") || sk == "RESOURCES"
        };
        out.items.unwrap_or_default().iter().filter(|i| !ledger(i)).count()
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }
}

impl Drop for Platform {
    /// Every call a function made, checked against its role (see [`least_privilege`]); not
    /// when the test has already failed.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            least_privilege::enforce(&self.config, &self.emulator.calls);
        }
    }
}

/// Local identities for tests: two developers and an admin; then a role session that named
/// itself after kyle, a user named kyle in another account, and two sessions of an admin role.
pub const IDENTITIES: &[(&str, &str, &str)] = &[
    ("AKIAKYLE0000000000001", "kyle-secret", "arn:aws:iam::123456789012:user/kyle"),
    ("AKIAALICE000000000001", "alice-secret", "arn:aws:sts::123456789012:assumed-role/Developer/alice"),
    ("AKIAADMIN000000000001", "admin-secret", "arn:aws:iam::123456789012:user/platform-admin"),
    ("AKIASESSIONKYLE00001", "session-secret", "arn:aws:sts::123456789012:assumed-role/Developer/kyle"),
    ("AKIAOTHERKYLE000001", "other-secret", "arn:aws:iam::210987654321:user/kyle"),
    ("AKIAOPSONE00000000001", "ops-one-secret", "arn:aws:sts::123456789012:assumed-role/PlatformAdmin/ops-one"),
    ("AKIAOPSTWO00000000001", "ops-two-secret", "arn:aws:sts::123456789012:assumed-role/PlatformAdmin/ops-two"),
];

/// `EPHEMERA_ADMINS` naming the admin role of [`IDENTITIES`] (every session of it).
pub const ADMIN_ROLE: &str = "arn:aws:iam::123456789012:role/PlatformAdmin";

pub fn identities() -> ephemera_http::sigv4::LocalIdentities {
    let text: String = IDENTITIES.iter().map(|(k, s, a)| format!("{k} {s} {a}\n")).collect();
    ephemera_http::sigv4::LocalIdentities::parse(&text, REGION).unwrap()
}

/// `sha256=<hex>` as GitHub computes it.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub use ephemera_app::memory::fixtures::edit;
