//! `ephemera`: your own ephemeral environments, from the terminal.
//!
//! Requests are signed (SigV4, service `execute-api`) with your usual AWS credentials: profiles,
//! environment variables, SSO, whatever the standard chain finds.
//!
//! Exit codes: 0 done; 1 other errors; 2 bad usage; 3 not allowed (403, or no credentials);
//! 4 no such environment (404); 5 quota reached (429); 6 conflict or not ready (409);
//! 7 the service is unavailable; 8 `--wait` ended with the environment FAILED.

mod blueprint;
mod state;

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
    /// One environment (each command's ENV defaults to the one `env use` chose here).
    Show { env: Option<String> },
    /// Give it more time.
    Extend {
        env: Option<String>,
        /// How much more, e.g. 4h, 1d.
        #[arg(long, default_value = "8h", value_parser = parse_hours)]
        by: i64,
    },
    /// Keep it from being reaped (--off to allow it again).
    Preserve {
        env: Option<String>,
        #[arg(long)]
        off: bool,
    },
    /// Delete it and everything in it (and stop using it here, if it is the one in use).
    Destroy { env: Option<String> },
    /// Deploy your own template to it, or only a new GraphQL schema for its current template
    /// (the blueprint policy checks it first; a refused one changes nothing).
    #[command(group = clap::ArgGroup::new("what").required(true).args(["template", "schema"]))]
    Deploy {
        env: Option<String>,
        /// A CloudFormation template, YAML or JSON.
        #[arg(long)]
        template: Option<std::path::PathBuf>,
        /// A GraphQL schema (e.g. schema.graphql) for the template's one AppSync schema.
        #[arg(long)]
        schema: Option<std::path::PathBuf>,
        /// Show progress until it is ready (or failed).
        #[arg(long)]
        wait: bool,
    },
    /// Use ENV in this checkout: remember it in .ephemera/environment.json and write its
    /// client config.
    Use {
        env: String,
        /// Where the client config goes (`.json` for JSON, else an aws-exports.js module);
        /// default: the path used before, else src/aws-exports.js.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// The environment in use in this checkout, and how it is.
    Status,
    /// Hand an environment to a principal (admins; for environments whose owner was
    /// recorded as a bare login before owners were whole principals).
    Adopt {
        env: Option<String>,
        /// The new owner's IAM user ARN or role session ARN.
        #[arg(long)]
        owner: String,
    },
    /// The client config: region, GraphQL endpoint, API key.
    Config {
        env: Option<String>,
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
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.send(method, path, body, "application/json").await
    }

    /// A signed request with a text body of `content_type`.
    async fn send(&self, method: &str, path: &str, body: String, content_type: &str) -> Result<(u16, String), Failure> {
        let url = format!("{}{path}", self.base);
        let mut request = http::Request::builder().method(method).uri(&url);
        let host = url.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or_default().to_owned();
        request = request.header("host", host).header("content-type", content_type);
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
            let error = serde_json::from_str::<Value>(&text).ok().map(|v| v["error"].clone()).unwrap_or_default();
            let mut message =
                error["message"].as_str().map(str::to_owned).unwrap_or_else(|| text.chars().take(300).collect());
            for v in error["violations"].as_array().into_iter().flatten() {
                message.push_str(&format!("\n  {}", v.as_str().unwrap_or_default()));
            }
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
    let here = std::env::current_dir().context("no current directory")?;
    let root = state::root(&here);
    let api = Api::new(&cli).await?;
    let env = |given: &Option<String>| state::environment(given.as_deref(), &root).map_err(|e| Failure(2, e));
    match cmd {
        EnvCommand::Create { name, ttl, wait } => create(&cli, &api, name.as_deref(), *ttl, *wait).await?,
        EnvCommand::List { all } => {
            let envs = list_all(&api, *all).await?;
            if cli.json {
                println!("{:#}", json!({ "environments": envs }));
            } else {
                table(&envs);
            }
        }
        EnvCommand::Show { env: e } => {
            print_env(&cli, &api.json("GET", &format!("/v1/environments/{}", env(e)?), None).await?)
        }
        EnvCommand::Extend { env: e, by } => print_env(
            &cli,
            &api.json("POST", &format!("/v1/environments/{}/extend", env(e)?), Some(json!({ "hours": by }))).await?,
        ),
        EnvCommand::Preserve { env: e, off } => {
            let method = if *off { "DELETE" } else { "PUT" };
            print_env(&cli, &api.json(method, &format!("/v1/environments/{}/preserve", env(e)?), None).await?)
        }
        EnvCommand::Destroy { env: e } => destroy(&cli, &api, &env(e)?, &root).await?,
        EnvCommand::Deploy { env: e, template, schema, wait } => {
            deploy(&cli, &api, &env(e)?, template.as_deref(), schema.as_deref(), *wait).await?
        }
        EnvCommand::Use { env, out } => {
            // A path given here is relative to where the command runs; it is kept relative to
            // the checkout's root when it is inside it.
            let out = match out {
                Some(o) => Some(inside(&here.join(o), &root)?),
                None => None,
            };
            use_environment(&api, env, out.as_deref(), &root).await?
        }
        EnvCommand::Status => status(&cli, &api, &root).await?,
        EnvCommand::Adopt { env: e, owner } => print_env(
            &cli,
            &api.json("PUT", &format!("/v1/environments/{}/owner", env(e)?), Some(json!({ "owner": owner }))).await?,
        ),
        EnvCommand::Config { env: e, format, out } => {
            let format = match format {
                Format::Json => "json",
                Format::Js => "js",
            };
            let text = client_config(&api, &env(e)?, format).await?;
            match out {
                Some(file) => write_file(file, &text)?,
                None => {
                    let _ = std::io::stdout().write_all(text.as_bytes());
                }
            }
        }
    }
    Ok(())
}

async fn create(cli: &Cli, api: &Api, name: Option<&str>, ttl: Option<i64>, wait: bool) -> Result<(), Failure> {
    let mut body = json!({});
    if let Some(n) = name {
        body["name"] = json!(n);
    }
    if let Some(h) = ttl {
        body["ttl_hours"] = json!(h);
    }
    let mut env = api.json("POST", "/v1/environments", Some(body)).await?;
    if let Some(p) = env["queue_position"].as_u64() {
        eprintln!("{} is queued (position {p}): it starts when capacity frees.", env["name"].as_str().unwrap_or("?"));
    }
    if wait {
        env = wait_until_settled(api, env["name"].as_str().unwrap_or_default()).await?;
    }
    finish(cli, &env)
}

/// Prints the environment; a FAILED one is exit code 8.
fn finish(cli: &Cli, env: &Value) -> Result<(), Failure> {
    print_env(cli, env);
    if env["status"] == "FAILED" {
        return Err(Failure(8, anyhow!("{} failed: {}", env["name"], env["reason"])));
    }
    Ok(())
}

async fn destroy(cli: &Cli, api: &Api, env: &str, root: &std::path::Path) -> Result<(), Failure> {
    let v = api.json("DELETE", &format!("/v1/environments/{env}"), None).await?;
    if state::read(root)?.is_some_and(|s| s.environment == env) {
        state::clear(root)?;
        eprintln!("{env} is no longer in use here.");
    }
    if cli.json {
        println!("{v:#}");
    } else {
        println!("{env} is being destroyed.");
    }
    Ok(())
}

async fn deploy(
    cli: &Cli,
    api: &Api,
    env: &str,
    template: Option<&std::path::Path>,
    schema: Option<&std::path::Path>,
    wait: bool,
) -> Result<(), Failure> {
    let (what, file) = match (template, schema) {
        (Some(t), _) => ("template", t),
        (None, Some(s)) => ("schema", s),
        (None, None) => return Err(Failure(2, anyhow!("give --template FILE or --schema FILE"))),
    };
    let body = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let content_type = if what == "schema" { "application/graphql" } else { "application/yaml" };
    let (_, text) = api.send("PUT", &format!("/v1/environments/{env}/{what}"), body, content_type).await?;
    let mut view: Value = serde_json::from_str(&text).context("the API's answer is not JSON")?;
    eprintln!("{env}: {what} {} accepted; the stack is being updated.", file.display());
    if wait {
        view = wait_until_settled(api, env).await?;
    }
    finish(cli, &view)
}

async fn client_config(api: &Api, env: &str, format: &str) -> Result<String, Failure> {
    let path = match format {
        "js" => format!("/v1/environments/{env}/config?format=js"),
        _ => format!("/v1/environments/{env}/config"),
    };
    Ok(api.call("GET", &path, None).await?.1)
}

fn write_file(file: &std::path::Path, text: &str) -> Result<(), Failure> {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(file, text).with_context(|| format!("writing {}", file.display()))?;
    eprintln!("wrote {}", file.display());
    Ok(())
}

/// `path` relative to the checkout's root, which it must be inside.
fn inside(path: &std::path::Path, root: &std::path::Path) -> Result<std::path::PathBuf, Failure> {
    let normal = path.components().all(|c| !matches!(c, std::path::Component::ParentDir));
    match path.strip_prefix(root) {
        Ok(p) if normal && !p.as_os_str().is_empty() => Ok(p.to_path_buf()),
        _ => Err(Failure(
            2,
            anyhow!("--out {} must be a file inside this checkout ({})", path.display(), root.display()),
        )),
    }
}

/// Remembers `env` for this checkout and writes its client config (if it is ready yet).
async fn use_environment(
    api: &Api,
    env: &str,
    out: Option<&std::path::Path>,
    root: &std::path::Path,
) -> Result<(), Failure> {
    // It must exist and be the caller's to use.
    api.json("GET", &format!("/v1/environments/{env}"), None).await?;
    let previous = state::read(root).ok().flatten().map(|s| s.client_config);
    let file = out.map(|p| p.to_path_buf()).or(previous).unwrap_or_else(|| state::DEFAULT_CONFIG.into());
    let state = state::State { environment: env.to_owned(), client_config: file };
    state::write(root, &state)?;
    eprintln!("using {env} in {}", root.display());
    match client_config(api, env, state.config_format()).await {
        Ok(text) => write_file(&root.join(&state.client_config), &text),
        Err(Failure(6, e)) => {
            eprintln!("the client config is not written yet ({e:#}); run `ephemera env use {env}` once it is ready");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

async fn status(cli: &Cli, api: &Api, root: &std::path::Path) -> Result<(), Failure> {
    let Some(state) = state::read(root)? else {
        println!("no environment in use in {} (run `ephemera env use ENV`)", root.display());
        return Ok(());
    };
    let view = api.json("GET", &format!("/v1/environments/{}", state.environment), None).await?;
    if cli.json {
        println!("{:#}", json!({ "in_use": state, "environment": view }));
    } else {
        println!("in use here: {} (client config: {})", state.environment, state.client_config.display());
        table(std::slice::from_ref(&view));
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

/// Every page of the list, following `next`.
async fn list_all(api: &Api, all: bool) -> Result<Vec<Value>, Failure> {
    let mut envs = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if all {
            query.append_pair("all", "true");
        }
        if let Some(a) = &after {
            query.append_pair("after", a);
        }
        let page = api.json("GET", &format!("/v1/environments?{}", query.finish()), None).await?;
        envs.extend(page["environments"].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return Ok(envs),
        }
    }
}

fn table(envs: &[Value]) {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    println!(
        "{:<36} {:<9} {:<12} {:<20} {:<9} {:<9} PREVIEW",
        "NAME", "STATUS", "ACCOUNT", "EXPIRES", "PRESERVED", "COST"
    );
    for e in envs {
        let cost = e["cost_accrued_usd"].as_f64().map(|c| format!("${c:.2}")).unwrap_or_else(|| "-".into());
        let soon = e["expires_soon"].as_bool() == Some(true);
        println!(
            "{:<36} {:<9} {:<12} {:<20} {:<9} {:<9} {}",
            s(&e["name"]),
            s(&e["status"]),
            e["account"].as_str().unwrap_or("platform"),
            if soon { format!("{}!", s(&e["expires_at"])) } else { s(&e["expires_at"]) },
            if e["preserved"].as_bool() == Some(true) { "yes" } else { "no" },
            cost,
            s(&e["preview_url"]),
        );
    }
    for e in envs.iter().filter(|e| e["expires_soon"].as_bool() == Some(true)) {
        let name = s(&e["name"]);
        println!("! {name} expires soon, at {}: `ephemera env extend {name} --by 1d` keeps it", s(&e["expires_at"]));
    }
}
