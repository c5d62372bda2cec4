//! `ephemera-local`: the platform on a laptop.
//!
//! - `ephemera-local [serve]`: starts the AWS emulator (moto server) unless `AWS_ENDPOINT_URL`
//!   names one, creates the platform's resources there, and serves.
//! - `ephemera-local status`: environments in the registry and live stacks, at
//!   `AWS_ENDPOINT_URL` (default: the emulator `serve` starts).
//! - `ephemera-local reap [--dry-run] [--light]`: one sweep of the reaper there; prints its summary.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use ephemera_aws::{emulator_config, sdk_config};
use ephemera_wiring::config::DeployConfig;
use ephemera_wiring::{platform, Clients, Config, GitHubConfig, ReaperConfig, SharedConfig, WebhookConfig};

const DEFAULT_SECRET: &str = "ephemera-local-secret";

fn main() -> anyhow::Result<()> {
    platform::init_tracing(false);
    // Local defaults; anything set in the environment wins. Set before any other thread exists.
    for (k, v) in [
        ("EPHEMERA_GITHUB_WEBHOOK_SECRET", DEFAULT_SECRET),
        ("EPHEMERA_BUCKET", "ephemera-local"),
        ("EPHEMERA_STACK_POLL_MILLIS", "250"),
        ("EPHEMERA_STACK_WAIT_SECONDS", "60"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ] {
        if std::env::var_os(k).is_none() {
            std::env::set_var(k, v);
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => runtime.block_on(run()),
        Some("status") => runtime.block_on(status()),
        Some("reap") => {
            let args: Vec<String> = std::env::args().skip(2).collect();
            let mut opts = ephemera_app::reaper::SweepOptions::default();
            for a in &args {
                match a.as_str() {
                    "--dry-run" => opts.dry_run = true,
                    "--light" => opts.light = true,
                    other => bail!("unknown option {other:?} for reap; expected --dry-run and/or --light"),
                }
            }
            runtime.block_on(reap(opts))
        }
        Some(other) => bail!("unknown command {other:?}; expected `serve`, `status` or `reap`"),
    }
}

async fn status() -> anyhow::Result<()> {
    let (config, reaper) = (SharedConfig::from_env()?, ReaperConfig::from_env()?);
    let endpoint =
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| format!("http://127.0.0.1:{}", emulator_port()));
    let region = std::env::var("AWS_REGION").unwrap_or_default();
    let clients = Clients::new(&emulator_config(&endpoint, &region).await);
    let deploy = DeployConfig { routes: reaper.settings.routes, external_id: reaper.external_id };
    let status = ephemera_local::status(&config, &deploy, &clients).await;
    print!("{}", status.with_context(|| format!("reading {endpoint}"))?);
    Ok(())
}

/// One sweep of the reaper against the local emulator; prints the JSON summary.
async fn reap(opts: ephemera_app::reaper::SweepOptions) -> anyhow::Result<()> {
    let (shared, config) = (SharedConfig::from_env()?, ReaperConfig::from_env()?);
    let endpoint =
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| format!("http://127.0.0.1:{}", emulator_port()));
    let region = std::env::var("AWS_REGION").unwrap_or_default();
    let clients = Clients::new(&emulator_config(&endpoint, &region).await);
    let (github, webhook) = (GitHubConfig::from_env()?, WebhookConfig::from_env()?);
    let mut reaper = platform::reaper(&shared, &config, &clients, platform::clock());
    reaper.catch_up = platform::catch_up(&shared, &config, &github, &webhook, &clients).await?;
    let summary = reaper.sweep(opts).await?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

/// A default identity: access key id, secret, principal ARN.
type DefaultIdentity = Option<(&'static str, &'static str, &'static str)>;

/// The local identities: from the file `EPHEMERA_LOCAL_IDENTITIES` names, else one default
/// developer (returned, to be printed).
fn local_identities(region: &str) -> anyhow::Result<(ephemera_http::sigv4::LocalIdentities, DefaultIdentity)> {
    const DEFAULT: (&str, &str, &str) =
        ("AKIAEPHEMERALOCALDEV", "ephemera-local-developer-secret", "arn:aws:iam::123456789012:user/developer");
    match std::env::var("EPHEMERA_LOCAL_IDENTITIES") {
        Ok(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading EPHEMERA_LOCAL_IDENTITIES ({path})"))?;
            let ids = ephemera_http::sigv4::LocalIdentities::parse(&text, region)
                .map_err(|e| anyhow::anyhow!("EPHEMERA_LOCAL_IDENTITIES ({path}): {e}"))?;
            Ok((ids, None))
        }
        Err(_) => {
            let line = format!("{} {} {}", DEFAULT.0, DEFAULT.1, DEFAULT.2);
            let ids = ephemera_http::sigv4::LocalIdentities::parse(&line, region).map_err(|e| anyhow::anyhow!(e))?;
            Ok((ids, Some(DEFAULT)))
        }
    }
}

fn emulator_port() -> u16 {
    std::env::var("EPHEMERA_EMULATOR_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(5050)
}

async fn run() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    // Kept alive until the end: dropping it stops the emulator.
    let (_emulator, sdk, endpoint) = match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) => {
            println!("Using the AWS endpoint at {url}");
            (None, sdk_config().await, url)
        }
        Err(_) => {
            let (child, url) = start_emulator().await?;
            let region = std::env::var("AWS_REGION").unwrap_or_default();
            (Some(child), emulator_config(&url, &region).await, url)
        }
    };
    let clients = Clients::new(&sdk);
    let listen: SocketAddr = std::env::var("EPHEMERA_LISTEN")
        .unwrap_or_else(|_| "127.0.0.1:3000".into())
        .parse()
        .context("EPHEMERA_LISTEN must be an address such as 127.0.0.1:3000")?;
    let (identities, default_identity) = local_identities(&config.shared.region)?;
    let running = ephemera_local::start(
        &config,
        &ephemera_local::Functions::shared(&clients),
        listen,
        ephemera_local::WORK_QUEUE,
        identities,
    )
    .await?;

    let secret = std::env::var("EPHEMERA_GITHUB_WEBHOOK_SECRET").unwrap_or_default();
    println!();
    println!("  Ephemera is running locally.");
    println!("  Webhook URL:     {}", running.webhook_url());
    println!(
        "  Webhook secret:  {secret}{}",
        if secret == DEFAULT_SECRET { "  (local default; set EPHEMERA_GITHUB_WEBHOOK_SECRET to change)" } else { "" }
    );
    println!("  AWS endpoint:    {endpoint}");
    println!("  Send an event:   scripts/send-event events/github/pull_request.opened.json");
    println!("  See the result:  make status, or the dashboard at http://{}/", running.addr);
    println!(
        "  Self-service:    http://{}/v1/environments (SigV4, service execute-api, region {})",
        running.addr, config.shared.region
    );
    if let Some((key, secret, arn)) = default_identity {
        println!("  Local identity:  {arn}");
        println!("                   AWS_ACCESS_KEY_ID={key} AWS_SECRET_ACCESS_KEY={secret}");
        println!("                   (set EPHEMERA_LOCAL_IDENTITIES to a file of KEY SECRET ARN lines for others)");
    }
    println!("  Ctrl-C stops everything this started.");
    println!();

    tokio::signal::ctrl_c().await?;
    println!("Stopping...");
    running.stop().await;
    Ok(())
}

/// Starts the emulator (`tools/emulator.py`, moto server, with the venv in `EPHEMERA_VENV`,
/// default `.venv`) on `EPHEMERA_EMULATOR_PORT` (default 5050); returns it with its URL.
async fn start_emulator() -> anyhow::Result<(tokio::process::Child, String)> {
    let venv = std::env::var("EPHEMERA_VENV").unwrap_or_else(|_| ".venv".into());
    let bin = format!("{venv}/bin/python");
    let port = emulator_port();
    let child = tokio::process::Command::new(&bin)
        .args(["tools/emulator.py", "-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting the emulator {bin} (run `make venv`, or set AWS_ENDPOINT_URL)"))?;
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            println!("Started the AWS emulator (moto server) at {url}");
            return Ok((child, url));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the emulator did not start listening on port {port} within 10 s")
}
