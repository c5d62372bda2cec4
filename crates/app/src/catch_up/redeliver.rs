//! Failed deliveries, asked of GitHub again.

use ephemera_domain::catch_up::{redelivery_window, to_redeliver, Budget, DeliveryAttempt};
use tracing::{info, warn};

use super::{CatchUp, CatchUpReport};
use crate::ports::{Answer, Hook};

/// At most this many pages (a hundred attempts each) of one hook.
const MAX_PAGES: u32 = 50;

impl CatchUp {
    pub(super) async fn redeliver(&self, budget: &mut Budget, dry_run: bool, r: &mut CatchUpReport) {
        for hook in self.github.hooks() {
            let attempts = self.attempts(&hook, budget, r).await;
            for attempt in to_redeliver(&attempts, self.clock.now()) {
                if !budget.may_ask() {
                    return;
                }
                let what = format!("{} {}", attempt.event, attempt.guid);
                if dry_run {
                    r.redelivered.push(what);
                    continue;
                }
                match self.github.redeliver(&hook, attempt.id).await {
                    Ok(read) => {
                        budget.spent(read.remaining);
                        match read.answer {
                            Answer::Fresh { .. } | Answer::NotModified => {
                                info!(%hook, delivery = %attempt.guid, event = %attempt.event, "asked GitHub to deliver again");
                                r.redelivered.push(what);
                            }
                            Answer::Inaccessible(why) => r.errors.push(format!("redelivering {what}: {why}")),
                            Answer::Limited(why) => budget.stop(why),
                        }
                    }
                    Err(e) => r.errors.push(format!("redelivering {what}: {e}")),
                }
            }
        }
    }

    /// The hook's delivery attempts within GitHub's window, newest first, as far as the budget
    /// reaches: a redelivery is listed after its original, so what is read tells what was.
    async fn attempts(&self, hook: &Hook, budget: &mut Budget, r: &mut CatchUpReport) -> Vec<DeliveryAttempt> {
        let oldest = self.clock.now() - redelivery_window();
        let (mut attempts, mut cursor) = (Vec::new(), None::<String>);
        for _ in 0..MAX_PAGES {
            if !budget.may_ask() {
                break;
            }
            let read = match self.github.deliveries(hook, cursor.as_deref()).await {
                Ok(read) => read,
                Err(e) => {
                    r.errors.push(format!("listing {hook}'s deliveries: {e}"));
                    break;
                }
            };
            budget.spent(read.remaining);
            let page = match read.answer {
                Answer::Fresh { value, .. } => value,
                Answer::Inaccessible(why) => {
                    r.inaccessible(format!("{hook}: {why}"));
                    break;
                }
                Answer::Limited(why) => {
                    budget.stop(why);
                    break;
                }
                Answer::NotModified => break,
            };
            let past = page.attempts.last().is_some_and(|a| a.delivered_at < oldest);
            attempts.extend(page.attempts);
            match page.next {
                Some(next) if !past => cursor = Some(next),
                _ => return attempts,
            }
        }
        if budget.may_ask() {
            warn!(%hook, "more than {MAX_PAGES} pages of deliveries in GitHub's window; the rest are not read");
        }
        attempts
    }
}
