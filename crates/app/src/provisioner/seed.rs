//! Synthetic fixtures for a new environment's tables.

use ephemera_domain::Environment;
use tracing::{info, warn};

use super::Provisioner;
use crate::ports::{Site, StackView};

impl Provisioner {
    /// Loads `seeds/{owner}/{repo}/<Table>.jsonl` (else `seeds/default/`) into the table the
    /// stack outputs as `<Table>TableName`: JSON lines, one item each. Synthetic data only:
    /// production data is never copied into an environment.
    pub(super) async fn seed(&self, site: &Site, env: &Environment, view: Option<&StackView>) -> Result<(), String> {
        let Some(view) = view else { return Ok(()) };
        let bucket = &self.settings.bucket;
        let mut prefixes = Vec::new();
        if let Some(repo) = &env.repository {
            prefixes.push(format!("seeds/{}/{}/", repo.owner(), repo.name()));
        }
        prefixes.push("seeds/default/".to_owned());
        for prefix in prefixes {
            let keys: Vec<String> = self
                .store
                .list_keys(bucket, &prefix)
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter(|k| k.ends_with(".jsonl"))
                .collect();
            if keys.is_empty() {
                continue;
            }
            for key in keys {
                let logical = key.trim_start_matches(prefix.as_str()).trim_end_matches(".jsonl");
                let Some(table) = view.outputs.get(&format!("{logical}TableName")) else {
                    warn!(%key, "no {logical}TableName output for this seed file; skipped");
                    continue;
                };
                let text = self.store.get_text(bucket, &key).await.map_err(|e| e.to_string())?.unwrap_or_default();
                let mut items = Vec::new();
                for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                    match serde_json::from_str::<serde_json::Value>(line) {
                        Ok(serde_json::Value::Object(m)) => items.push(m),
                        _ => return Err(format!("{key} line {}: not a JSON object", i + 1)),
                    }
                }
                let n = site.seeder.put_items(table, &items).await.map_err(|e| e.to_string())?;
                info!(%key, %table, items = n, "seeded");
            }
            return Ok(());
        }
        Ok(())
    }
}
