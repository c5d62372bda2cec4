//! Budget and quotas: whether a new environment must wait (decided by
//! [`ephemera_domain::admission`]), and which waiting one goes next.

use ephemera_domain::admission::{needs_registry, wait_reason};
use ephemera_domain::{Environment, Status};
use tracing::{info, warn};

use super::Provisioner;
use crate::events::PlatformEvent;
use crate::ports::PortError;

impl Provisioner {
    /// Why `env` must wait, if it must.
    pub(super) async fn over_budget(&self, env: &Environment, monthly: f64) -> Result<Option<String>, PortError> {
        let budget = self.settings.monthly_budget_usd;
        if !needs_registry(env, budget) {
            return Ok(None);
        }
        let all = self.registry.list().await?;
        Ok(wait_reason(env, &all, self.settings.dev_quotas, budget, monthly))
    }

    /// Nudges the oldest queued environment, now that one is gone.
    pub(super) async fn start_next_queued(&self) {
        let next = match self.registry.list().await {
            Ok(all) => all.into_iter().filter(|e| e.status == Status::Queued).min_by_key(|e| e.created_at),
            Err(e) => return warn!(error = %e, "could not look for queued environments"),
        };
        if let Some(env) = next {
            info!(next = %env.name, "starting the oldest queued environment");
            self.publish(PlatformEvent::requested(&env)).await;
        }
    }
}
