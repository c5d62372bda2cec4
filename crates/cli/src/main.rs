//! `ephemera`: your own ephemeral environments, from the terminal.
//!
//! Requests are signed (SigV4, service `execute-api`) with your usual AWS credentials: profiles,
//! environment variables, SSO, whatever the standard chain finds.
//!
//! Exit codes: 0 done; 1 other errors; 2 bad usage; 3 not allowed (403, or no credentials);
//! 4 no such environment (404); 5 quota reached (429); 6 conflict or not ready (409);
//! 7 the service is unavailable; 8 `--wait` ended with the environment FAILED.

mod blueprint;

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Context};
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(name = "ephemera", version, about = "Your own ephemeral AWS environments.", after_help = EXIT_CODES)]
struct Cli {
    /// The self-service API (locally http://127.0.0.1:3000). When not given, the deployed
    /// stack's SelfServiceUrl output is used.
    #[arg(long, env = "EPHEMERA_URL", global = true)]
    endpoint: Option<String>,
    /// The deployed platform's CloudFormation stack, to find the endpoint in its outputs.
    #[arg(long, env = "EPHEMERA_STACK", default_value = "ephemera", global = true)]
    stack: String,
    /// The API's region (for signing).
    #[arg(long, env = "AWS_REGION", global = true)]
    region: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Top,
}

const EXIT_CODES: &str = "Exit codes: 0 done, 1 error, 2 usage, 3 not allowed, 4 not found, 5 quota reached, \
6 conflict or not ready, 7 service unavailable, 8 environment failed (--wait).";

#[derive(Subcommand)]
enum Top {
    /// Developer environments.
    #[command(subcommand)]
    Env(EnvCommand),
    /// Blueprints (offline: nothing is sent anywhere).
    #[command(subcommand)]
    Blueprint(BlueprintCommand),
}

#[derive(Subcommand)]
enum BlueprintCommand {
    /// Check a template against the blueprint policy the platform applies before creating
    /// anything. Exit code 1 lists every violation.
    Check {
        file: std::path::PathBuf,
        /// A resource type your platform's operator allows besides the defaults (repeatable).
        #[arg(long = "allow-type")]
        allow_types: Vec<String>,
        /// A host your platform allows a preview URL to name literally (repeatable).
        #[arg(long = "preview-host")]
        preview_hosts: Vec<String>,
    },
}

#[derive(Subcommand)]
enum EnvCommand {
    /// Create dev-<you> (or dev-<you>-<NAME>).
    Create {
        name: Option<String>,
        /// Lifetime, e.g. 8h, 2d (default: the platform's, 8 hours).
        #[arg(long, value_parser = parse_hours)]
        ttl: Option<i64>,
        /// Show progress until it is ready (or failed).
        #[arg(long)]
        wait: bool,
    },
    /// Your environments (--all: everyone's, for admins).
    List {
        #[arg(long)]
        all: bool,
    },
    /// One environment.
    Show { env: String },
    /// Give it more time.
    Extend {
        env: String,
        /// How much more, e.g. 4h, 1d.
        #[arg(long, default_value = "8h", value_parser = parse_hours)]
        by: i64,
    },
    /// Keep it from being reaped (--off to allow it again).
    Preserve {
        env: String,
        #[arg(long)]
        off: bool,
    },
    /// Delete it and everything in it.
    Destroy { env: String },
    /// Hand an environment to a principal (admins; for environments whose owner was
    /// recorded as a bare login before owners were whole principals).
    Adopt {
        env: String,
        /// The new owner's IAM user ARN or role session ARN.
        #[arg(long)]
        owner: String,
    },
    /// The client config: region, GraphQL endpoint, API key.
    Config {
        env: String,
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
        /// Write it to this file (e.g. src/aws-exports.js) instead of printing it.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Js,
}

fn parse_hours(s: &str) -> Result<i64, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = n.parse().map_err(|_| format!("{s:?} is not a duration like 8h or 2d"))?;
    match unit {
        "" | "h" => Ok(n),
        "d" => Ok(n * 24),
        _ => Err(format!("{s:?} is not a duration like 8h or 2d")),
    }
}

/// An error with the exit code it maps to.
struct Failure(u8, anyhow::Error);

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure(1, e)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, e)) => {
            eprintln!("ephemera: {e:#}");
            ExitCode::from(code)
        }
    }
}

struct Api {
    base: String,
    region: String,
    credentials: aws_credential_types::Credentials,
    http: reqwest::Client,
}

impl Api {
    async fn new(cli: &Cli) -> Result<Self, Failure> {
        let config = ephemera_aws::sdk_config().await;
        let base = match &cli.endpoint {
            Some(url) => url.clone(),
            None => endpoint_from_stack(&config, &cli.stack)
                .await
                .map_err(|e| Failure(2, anyhow!("no endpoint: give --endpoint or set EPHEMERA_URL ({e:#})")))?,
        };
        let region = cli
            .region
            .clone()
            .or_else(|| config.region().map(|r| r.to_string()))
            .ok_or_else(|| Failure(2, anyhow!("no region: give --region or set AWS_REGION")))?;
        let provider = config
            .credentials_provider()
            .ok_or_else(|| Failure(3, anyhow!("no AWS credentials found (profile, environment, SSO)")))?;
        let credentials = provider.provide_credentials().await.map_err(|e| {
            Failure(3, anyhow!("could not get AWS credentials: {e} (expired SSO session? try `aws sso login`)"))
        })?;
        Ok(Self { base: base.trim_end_matches('/').to_owned(), region, credentials, http: reqwest::Client::new() })
    }

    /// A signed request; the JSON (or text) answer, or a failure with its exit code.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<(u16, String), Failure> {
        let url = format!("{}{path}", self.base);
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut request = http::Request::builder().method(method).uri(&url);
        let host = url.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or_default().to_owned();
        request = request.header("host", host).header("content-type", "application/json");
        let mut request = request.body(body.clone()).map_err(|e| Failure(1, e.into()))?;
        let identity = self.credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("execute-api")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| Failure(1, e.into()))?
            .into();
        let headers = request.headers().iter().map(|(k, v)| (k.as_str(), v.to_str().unwrap_or_default()));
        let signable = SignableRequest::new(method, &url, headers, SignableBody::Bytes(body.as_bytes()))
            .map_err(|e| Failure(1, anyhow!("signing: {e}")))?;
        let (instructions, _) = sign(signable, &params).map_err(|e| Failure(1, anyhow!("signing: {e}")))?.into_parts();
        instructions.apply_to_request_http1x(&mut request);
        let request = reqwest::Request::try_from(request).map_err(|e| Failure(1, e.into()))?;
        let res = self.http.execute(request).await.map_err(|e| Failure(7, anyhow!("{url}: {e}")))?;
        let status = res.status().as_u16();
        let text = res.text().await.map_err(|e| Failure(7, e.into()))?;
        if status >= 400 {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| text.chars().take(300).collect());
            let code = match status {
                401 | 403 => 3,
                404 => 4,
                429 => 5,
                409 => 6,
                s if s >= 500 => 7,
                _ => 1,
            };
            return Err(Failure(code, anyhow!("{message} (HTTP {status})")));
        }
        Ok((status, text))
    }

    async fn json(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Failure> {
        let (_, text) = self.call(method, path, body).await?;
        serde_json::from_str(&text).context("the API's answer is not JSON").map_err(Failure::from)
    }
}

/// The `SelfServiceUrl` output of the deployed platform stack.
async fn endpoint_from_stack(config: &aws_config::SdkConfig, stack: &str) -> anyhow::Result<String> {
    let out = aws_sdk_cloudformation::Client::new(config)
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .with_context(|| format!("could not read the outputs of stack {stack:?}"))?;
    out.stacks()
        .first()
        .and_then(|s| s.outputs().iter().find(|o| o.output_key() == Some("SelfServiceUrl")))
        .and_then(|o| o.output_value().map(str::to_owned))
        .ok_or_else(|| anyhow!("stack {stack:?} has no SelfServiceUrl output"))
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let cmd = match &cli.command {
        Top::Env(cmd) => cmd,
        Top::Blueprint(BlueprintCommand::Check { file, allow_types, preview_hosts }) => {
            return blueprint::run(file, allow_types, preview_hosts, cli.json);
        }
    };
    let api = Api::new(&cli).await?;
    match cmd {
        EnvCommand::Create { name, ttl, wait } => {
            let mut body = json!({});
            if let Some(n) = name {
                body["name"] = json!(n);
            }
            if let Some(h) = ttl {
                body["ttl_hours"] = json!(h);
            }
            let mut env = api.json("POST", "/v1/environments", Some(body)).await?;
            if let Some(p) = env["queue_position"].as_u64() {
                eprintln!(
                    "{} is queued (position {p}): it starts when capacity frees.",
                    env["name"].as_str().unwrap_or("?")
                );
            }
            if *wait {
                env = wait_until_settled(&api, env["name"].as_str().unwrap_or_default()).await?;
            }
            print_env(&cli, &env);
            if env["status"] == "FAILED" {
                return Err(Failure(8, anyhow!("{} failed: {}", env["name"], env["reason"])));
            }
        }
        EnvCommand::List { all } => {
            let path = if *all { "/v1/environments?all=true" } else { "/v1/environments" };
            let envs = api.json("GET", path, None).await?;
            if cli.json {
                println!("{envs:#}");
            } else {
                table(envs["environments"].as_array().map(Vec::as_slice).unwrap_or(&[]));
            }
        }
        EnvCommand::Show { env } => print_env(&cli, &api.json("GET", &format!("/v1/environments/{env}"), None).await?),
        EnvCommand::Extend { env, by } => print_env(
            &cli,
            &api.json("POST", &format!("/v1/environments/{env}/extend"), Some(json!({ "hours": by }))).await?,
        ),
        EnvCommand::Preserve { env, off } => {
            let method = if *off { "DELETE" } else { "PUT" };
            print_env(&cli, &api.json(method, &format!("/v1/environments/{env}/preserve"), None).await?)
        }
        EnvCommand::Destroy { env } => {
            let v = api.json("DELETE", &format!("/v1/environments/{env}"), None).await?;
            if cli.json {
                println!("{v:#}");
            } else {
                println!("{env} is being destroyed.");
            }
        }
        EnvCommand::Adopt { env, owner } => print_env(
            &cli,
            &api.json("PUT", &format!("/v1/environments/{env}/owner"), Some(json!({ "owner": owner }))).await?,
        ),
        EnvCommand::Config { env, format, out } => {
            let path = match format {
                Format::Json => format!("/v1/environments/{env}/config"),
                Format::Js => format!("/v1/environments/{env}/config?format=js"),
            };
            let (_, text) = api.call("GET", &path, None).await?;
            match out {
                Some(file) => {
                    std::fs::write(file, &text).with_context(|| format!("writing {}", file.display()))?;
                    eprintln!("wrote {}", file.display());
                }
                None => {
                    let _ = std::io::stdout().write_all(text.as_bytes());
                }
            }
        }
    }
    Ok(())
}

/// Polls until the environment is READY, FAILED or DELETED, showing each change.
async fn wait_until_settled(api: &Api, name: &str) -> Result<Value, Failure> {
    let mut last = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30 * 60);
    loop {
        let env = api.json("GET", &format!("/v1/environments/{name}"), None).await?;
        let status = env["status"].as_str().unwrap_or("?").to_owned();
        if status != last {
            eprintln!("{name}: {status}{}", env["reason"].as_str().map(|r| format!(" ({r})")).unwrap_or_default());
            last = status.clone();
        }
        if matches!(status.as_str(), "READY" | "FAILED" | "DELETED") {
            return Ok(env);
        }
        if std::time::Instant::now() > deadline {
            return Err(Failure(1, anyhow!("{name} is still {status} after 30 minutes")));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn print_env(cli: &Cli, env: &Value) {
    if cli.json {
        println!("{env:#}");
    } else {
        table(std::slice::from_ref(env));
    }
}

fn table(envs: &[Value]) {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    println!("{:<36} {:<9} {:<20} {:<9} {:<9} PREVIEW", "NAME", "STATUS", "EXPIRES", "PRESERVED", "COST");
    for e in envs {
        let cost = e["cost_accrued_usd"].as_f64().map(|c| format!("${c:.2}")).unwrap_or_else(|| "-".into());
        println!(
            "{:<36} {:<9} {:<20} {:<9} {:<9} {}",
            s(&e["name"]),
            s(&e["status"]),
            s(&e["expires_at"]),
            if e["preserved"].as_bool() == Some(true) { "yes" } else { "no" },
            cost,
            s(&e["preview_url"]),
        );
    }
}
