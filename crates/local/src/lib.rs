//! The whole platform in one process: the HTTP surface on a TCP port and the provisioner
//! reading its work queue, against whatever AWS endpoint the clients point at. The events
//! take the production path: intake → EventBridge bus → rule → SQS queue → provisioner.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ephemera_app::{Disposition, Retryable};
use ephemera_aws::bootstrap::{self, Resources};
use ephemera_aws::queue::WorkQueue;
use ephemera_aws::S3Store;
use ephemera_http::sigv4::LocalIdentities;
use ephemera_http::{router, AppState, Identity};
use ephemera_wiring::{platform, Clients, Config, SharedConfig};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

/// The default blueprint, uploaded at start so that `make run` works out of the box.
pub const DEFAULT_BLUEPRINT: &str = include_str!("../../../infra/blueprints/default.yaml");
/// The default blueprint's synthetic fixtures, loaded into a new environment's tables.
pub const DEFAULT_SEEDS: [(&str, &str); 2] = [
    ("seeds/default/Task.jsonl", include_str!("../../../infra/seeds/default/Task.jsonl")),
    ("seeds/default/Activity.jsonl", include_str!("../../../infra/seeds/default/Activity.jsonl")),
];
pub const WORK_QUEUE: &str = "ephemera-work";

pub struct Running {
    pub addr: SocketAddr,
    pub queue_url: String,
    /// The notifier's queue, when GitHub feedback is on (`EPHEMERA_GITHUB_TOKEN` set).
    pub notify_queue_url: Option<String>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    pub fn webhook_url(&self) -> String {
        format!("http://{}/webhooks/github", self.addr)
    }
    /// Stops serving and polling, and waits for both to end.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Creates the platform's resources if needed and uploads the default blueprint; returns the
/// work queue's URL, and the notifier's if `notify` is set.
pub async fn prepare(
    config: &SharedConfig,
    clients: &Clients,
    work_queue: &str,
    notify: bool,
) -> anyhow::Result<(String, Option<String>)> {
    let created = bootstrap::ensure(
        &clients.bootstrap(),
        &Resources {
            table: config.table.clone(),
            bus: config.bus.clone(),
            bucket: config.bucket.clone(),
            work_queue: work_queue.to_owned(),
            notify_queue: notify.then(|| format!("{work_queue}-notify")),
        },
    )
    .await
    .context("creating the platform's table, bus, bucket and queue")?;
    let store = S3Store::new(clients.s3().clone());
    store
        .put_text(&config.bucket, "blueprints/default.yaml", DEFAULT_BLUEPRINT)
        .await
        .context("uploading the default blueprint")?;
    for (key, body) in DEFAULT_SEEDS {
        store.put_text(&config.bucket, key, body).await.with_context(|| format!("uploading {key}"))?;
    }
    Ok((created.work_queue_url, created.notify_queue_url))
}

/// The clients each part of the platform acts with. On AWS each function has its own role;
/// locally they may all be one (see [`Functions::shared`]), and tests give each its own access
/// key, so that the emulator's record of calls tells whose call each was.
#[derive(Clone)]
pub struct Functions {
    /// Creates the platform's resources and reads its queues: on AWS, the deployment and the
    /// Lambda event source mappings.
    pub platform: Clients,
    pub webhook: Clients,
    pub provisioner: Clients,
    /// The self-service API and the dashboard (one function on AWS).
    pub selfservice: Clients,
    pub notifier: Clients,
}

impl Functions {
    /// Every part acting with the same clients.
    pub fn shared(clients: &Clients) -> Self {
        Self {
            platform: clients.clone(),
            webhook: clients.clone(),
            provisioner: clients.clone(),
            selfservice: clients.clone(),
            notifier: clients.clone(),
        }
    }
}

/// Prepares (see [`prepare`]), then serves HTTP on `listen` and works the queue: every service,
/// so every section of `config`.
pub async fn start(
    config: &Config,
    functions: &Functions,
    listen: SocketAddr,
    work_queue: &str,
    identities: LocalIdentities,
) -> anyhow::Result<Running> {
    let shared = &config.shared;
    let clients = &functions.platform;
    let (webhook, selfservice) = (&functions.webhook, &functions.selfservice);
    let github = platform::github(&config.github, webhook).await?;
    let (queue_url, notify_queue_url) = prepare(shared, clients, work_queue, github.is_some()).await?;
    let secrets = platform::webhook_secrets(&config.webhook, webhook).await?;
    let intake = platform::intake(shared, &config.webhook, webhook, Some(secrets), github.clone());
    let provisioner = Arc::new(platform::provisioner(shared, &config.provisioner, &functions.provisioner));
    let (shutdown, stopped) = watch::channel(false);

    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    let app = router(AppState {
        intake: Some(Arc::new(intake)),
        selfservice: Some(Arc::new(platform::selfservice(shared, &config.selfservice, selfservice))),
        dashboard: Some(Arc::new(platform::dashboard(shared, selfservice))),
        // Open on loopback only: anyone who can reach a wider address would see it.
        dashboard_open: listen.ip().is_loopback(),
        identity: Identity::Local(Arc::new(identities)),
    });
    let mut stop_serving = stopped.clone();
    let server = tokio::spawn(async move {
        let graceful = async move {
            let _ = stop_serving.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(graceful).await {
            error!(error = %e, "server stopped");
        }
    });
    let queue = WorkQueue::new(clients.sqs().clone(), &queue_url);
    let mut tasks = vec![server];
    tasks.push(tokio::spawn(work(queue, provisioner, 8, stopped.clone())));
    if let (Some(url), Some(github)) = (&notify_queue_url, github) {
        let notifier = Arc::new(platform::notifier(shared, &config.notifier, &functions.notifier, github));
        // One at a time, in the order the statuses were announced.
        tasks.push(tokio::spawn(work(WorkQueue::new(clients.sqs().clone(), url), notifier, 1, stopped)));
        info!("GitHub feedback is on");
    }
    info!(%addr, "Ephemera is serving");
    Ok(Running { addr, queue_url, notify_queue_url, shutdown, tasks })
}

/// What reads a queue: a message's body in; what becomes of the message out.
#[async_trait::async_trait]
trait Consumer: Send + Sync + 'static {
    async fn consume(&self, body: &str) -> Disposition<String, String>;
}

/// Settles an outcome as the Lambda functions do (see [`ephemera_app::outcome`]).
fn disposition<T: std::fmt::Debug, E: Retryable + std::fmt::Display>(
    outcome: Result<T, E>,
) -> Disposition<String, String> {
    match Disposition::from(outcome) {
        Disposition::Done(done) => Disposition::Done(format!("{done:?}")),
        Disposition::Retry(e) => Disposition::Retry(e.to_string()),
        Disposition::Drop(e) => Disposition::Drop(e.to_string()),
    }
}

#[async_trait::async_trait]
impl Consumer for ephemera_app::provisioner::Provisioner {
    async fn consume(&self, body: &str) -> Disposition<String, String> {
        disposition(self.handle_message(body).await)
    }
}

#[async_trait::async_trait]
impl Consumer for ephemera_app::feedback::Notifier {
    async fn consume(&self, body: &str) -> Disposition<String, String> {
        disposition(self.handle_message(body).await)
    }
}

/// Reads a queue as the Lambda event source mapping would: each message handled, deleted when
/// done, made visible again after a delay when it should be retried.
async fn work<C: Consumer>(queue: WorkQueue, consumer: Arc<C>, concurrency: u32, mut stopped: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(concurrency as usize));
    loop {
        let batch = tokio::select! {
            _ = stopped.wait_for(|s| *s) => break,
            batch = queue.receive(10, 1) => batch,
        };
        let messages = match batch {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "work queue unavailable; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        for message in messages {
            let Ok(permit) = permits.clone().acquire_owned().await else { break };
            let (queue, consumer) = (queue.clone(), consumer.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let done = !matches!(consumer.consume(&message.body).await.logged("message"), Disposition::Retry(_));
                let result = if done {
                    queue.delete(&message.receipt).await
                } else {
                    queue.retry_after(&message.receipt, 1).await
                };
                if let Err(e) = result {
                    warn!(error = %e, "could not settle message");
                }
            });
        }
    }
    // Let reconciles under way finish.
    let _ = permits.acquire_many(concurrency).await;
}

/// A plain-text report of the registry and the platform's live stacks.
pub async fn status(
    config: &SharedConfig,
    deploy: &ephemera_wiring::config::DeployConfig,
    clients: &Clients,
) -> anyhow::Result<String> {
    use ephemera_app::ports::Environments;
    use std::fmt::Write;
    let registry = ephemera_aws::DynamoRegistry::new(clients.dynamodb().clone(), &config.table);
    let envs = registry.list().await?;
    let mut out = String::new();
    writeln!(
        out,
        "{:<40} {:<9} {:<5} {:<10} {:<4} {:<12} {:<20} PREVIEW",
        "ENVIRONMENT", "STATUS", "WANT", "COMMIT", "GEN", "ACCOUNT", "EXPIRES"
    )?;
    for e in &envs {
        writeln!(
            out,
            "{:<40} {:<9} {:<5} {:<10} {:<4} {:<12} {:<20} {}",
            e.name.as_str(),
            e.status.as_str(),
            e.desired.as_str(),
            e.commit.as_deref().map(|c| &c[..c.len().min(8)]).unwrap_or("-"),
            e.generation,
            e.account.as_deref().unwrap_or("platform"),
            e.expires_at.format("%Y-%m-%dT%H:%M:%SZ"),
            e.preview_url.as_deref().unwrap_or("-"),
        )?;
        if let Some(reason) = &e.status_reason {
            writeln!(out, "    reason: {reason}")?;
        }
    }
    writeln!(out)?;
    writeln!(out, "{:<50} {:<12} STATUS", "STACK", "ACCOUNT")?;
    let mut places = vec![("platform".to_owned(), clients.clone())];
    for t in deploy.routes.all() {
        let sweep = Some((ephemera_aws::sites::SWEEP_TAG, "true"));
        let external_id = deploy.external_id.as_deref();
        let sdk = ephemera_aws::sites::assume_role(clients.sdk(), &t.role_arn, "ephemera-status", sweep, external_id);
        let sdk = sdk.await?;
        places.push((t.account.clone(), Clients::new(&sdk)));
    }
    for (account, clients) in places {
        let mut pages = clients.cloudformation().list_stacks().into_paginator().send();
        while let Some(page) = pages.next().await {
            for s in page?.stack_summaries() {
                let status = s.stack_status().map(|s| s.as_str()).unwrap_or("?");
                let name = s.stack_name().unwrap_or("?");
                if status != "DELETE_COMPLETE" && name.starts_with(ephemera_domain::names::STACK_PREFIX) {
                    writeln!(out, "{name:<50} {account:<12} {status}")?;
                }
            }
        }
    }
    Ok(out)
}
