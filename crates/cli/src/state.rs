//! The environment this checkout uses: `.ephemera/environment.json` at the checkout's root
//! (the nearest directory up with `.ephemera/` or `.git`), the role Amplify's
//! `team-provider-info.json` plays. Commands that name no environment use it.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use serde::{Deserialize, Serialize};

pub const DIR: &str = ".ephemera";
pub const FILE: &str = "environment.json";
/// Where the client config goes unless `env use --out` says otherwise (Amplify's place).
pub const DEFAULT_CONFIG: &str = "src/aws-exports.js";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub environment: String,
    /// The client config file, relative to the checkout's root.
    pub client_config: PathBuf,
}

impl State {
    /// `json` for a `.json` file, else an `aws-exports.js` module.
    pub fn config_format(&self) -> &'static str {
        match self.client_config.extension().and_then(|e| e.to_str()) {
            Some("json") => "json",
            _ => "js",
        }
    }
}

/// The checkout `from` is in: the nearest directory up with `.ephemera/` or `.git`, else `from`.
pub fn root(from: &Path) -> PathBuf {
    from.ancestors().find(|d| d.join(DIR).is_dir() || d.join(".git").exists()).unwrap_or(from).to_path_buf()
}

pub fn path(root: &Path) -> PathBuf {
    root.join(DIR).join(FILE)
}

/// A state file may come with a checkout (it can be committed): what it names is checked
/// before it is used, so it cannot send a request to another path or write outside the checkout.
fn checked(state: State) -> anyhow::Result<State> {
    ephemera_domain::EnvironmentName::parse(&state.environment)?;
    let escapes = state.client_config.components().any(|c| !matches!(c, std::path::Component::Normal(_)));
    if escapes || state.client_config.as_os_str().is_empty() {
        anyhow::bail!(
            "client_config {:?} must be a path inside the checkout, without `..`",
            state.client_config.display().to_string()
        );
    }
    Ok(state)
}

pub fn read(root: &Path) -> anyhow::Result<Option<State>> {
    let file = path(root);
    match std::fs::read_to_string(&file) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(anyhow::Error::from)
            .and_then(checked)
            .map(Some)
            .with_context(|| format!("{} is not valid; run `ephemera env use ENV` again", file.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", file.display())),
    }
}

pub fn write(root: &Path, state: &State) -> anyhow::Result<()> {
    let file = path(root);
    std::fs::create_dir_all(root.join(DIR)).with_context(|| format!("creating {}", root.join(DIR).display()))?;
    let text = serde_json::to_string_pretty(state).expect("state serializes") + "\n";
    std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))
}

/// Forgets the environment in use (the client config is left as it is).
pub fn clear(root: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path(root)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path(root).display()))
        }
        _ => Ok(()),
    }
}

/// The environment a command acts on: the one it names, else the one in use here.
pub fn environment(given: Option<&str>, root: &Path) -> anyhow::Result<String> {
    if let Some(env) = given {
        return Ok(env.to_owned());
    }
    read(root)?.map(|s| s.environment).ok_or_else(|| {
        anyhow!("no environment given, and none in use in {}: name one, or run `ephemera env use ENV`", root.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_kept_at_the_checkouts_root_and_cleared() {
        let dir = std::env::temp_dir().join(format!("ephemera-state-{}", std::process::id()));
        let nested = dir.join("src/components");
        std::fs::create_dir_all(&nested).unwrap();
        std::fs::create_dir_all(dir.join(".git")).unwrap();
        assert_eq!(root(&nested), dir);
        assert!(environment(None, &dir).unwrap_err().to_string().contains("ephemera env use ENV"));
        let state = State { environment: "dev-kyle".into(), client_config: DEFAULT_CONFIG.into() };
        write(&dir, &state).unwrap();
        assert_eq!(read(&root(&nested)).unwrap(), Some(state.clone()));
        assert_eq!(environment(None, &dir).unwrap(), "dev-kyle");
        assert_eq!(environment(Some("dev-kyle-api"), &dir).unwrap(), "dev-kyle-api");
        assert_eq!(state.config_format(), "js");
        assert_eq!(State { client_config: "config.json".into(), ..state }.config_format(), "json");
        clear(&dir).unwrap();
        clear(&dir).unwrap();
        assert_eq!(read(&dir).unwrap(), None);
        std::fs::write(path(&dir), "{").unwrap();
        assert!(read(&dir).unwrap_err().to_string().contains("env use ENV"));
        for bad in [
            r#"{"environment": "dev-kyle", "client_config": "../../.bashrc"}"#,
            r#"{"environment": "dev-kyle", "client_config": "/etc/passwd"}"#,
            r#"{"environment": "dev-kyle/../../v1", "client_config": "src/aws-exports.js"}"#,
        ] {
            std::fs::write(path(&dir), bad).unwrap();
            let err = format!("{:#}", read(&dir).unwrap_err());
            assert!(err.contains("env use ENV"), "{bad}: {err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
