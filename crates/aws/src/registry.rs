//! The registry in DynamoDB: one item per environment, one per seen webhook delivery.
//!
//! | item | pk | sk | notes |
//! |---|---|---|---|
//! | environment | `ENV#<name>` | `ENV` | `gsi1pk` = `KIND#<kind>`, `gsi1sk` = name (index `by-kind`) |
//! | delivery | `DELIVERY#<id>` | `DELIVERY` | `ttl` (epoch seconds) expires it after 7 days |
//! | claim | `CLAIM#<name>` | `CLAIM` | what the environment takes from the totals (see [`crate::ledger`]) |
//! | totals | `TOTALS` | `TOTALS` | one number per counter |

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue as AV, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use ephemera_app::intake::PR_MERGED;
use ephemera_app::ports::{
    Change, ChangeOutcome, CostLog, DesiredState, Environments, GoDown, Lease, NotifiedLog, Page, Progress,
    Reconciliation, StackStatusLog, StackStatusUpdate, Stamp, Sweeping,
};
use ephemera_app::retry::draw;
use ephemera_app::PortError;
use ephemera_domain::{
    CommitSource, Desired, Environment, EnvironmentKind, EnvironmentName, EventOrder, RepoName, Reported, RetryPolicy,
    Status,
};
use tracing::{instrument, warn};

use crate::error::{code, port_error};

pub const KIND_INDEX: &str = "by-kind";
const DELIVERY_TTL_DAYS: i64 = 7;

#[derive(Debug, Clone)]
pub struct DynamoRegistry {
    pub(crate) client: Client,
    pub(crate) table: String,
}

fn env_key(name: &EnvironmentName) -> HashMap<String, AV> {
    HashMap::from([("pk".to_owned(), AV::S(format!("ENV#{name}"))), ("sk".to_owned(), AV::S("ENV".to_owned()))])
}

fn s(v: impl Into<String>) -> AV {
    AV::S(v.into())
}
fn n(v: impl ToString) -> AV {
    AV::N(v.to_string())
}
fn ts(t: DateTime<Utc>) -> AV {
    AV::S(t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

impl DynamoRegistry {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    async fn delivery_seen(&self, delivery: &str) -> Result<bool, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("DELIVERY#{delivery}")))
            .key("sk", s("DELIVERY"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error("read delivery", e))?;
        Ok(out.item.is_some())
    }

    /// One conditional update; false when the condition does not hold.
    async fn conditional(
        &self,
        name: &EnvironmentName,
        update: &str,
        condition: &str,
        values: Vec<(&str, AV)>,
        operation: &'static str,
    ) -> Result<bool, PortError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(env_key(name)))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
        if update.contains("#status") {
            req = req.expression_attribute_names("#status", "status");
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if code(&e) == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(port_error(operation, e)),
        }
    }

    /// The `by-kind` index's environments of one kind, in name order.
    fn kind_query(&self, kind: EnvironmentKind) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(KIND_INDEX)
            .key_condition_expression("gsi1pk = :k")
            .expression_attribute_values(":k", s(format!("KIND#{}", kind.as_str())))
    }

    /// Every environment of one kind, following pagination.
    #[instrument(skip(self))]
    pub async fn list_kind(&self, kind: EnvironmentKind) -> Result<Vec<Environment>, PortError> {
        let mut out = Vec::new();
        let mut pages = self.kind_query(kind).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| port_error("list environments", e))?;
            for item in page.items.unwrap_or_default() {
                match from_item(&item) {
                    Ok(env) => out.push(env),
                    Err(e) => warn!(error = %e, "skipping unreadable registry item"),
                }
            }
        }
        Ok(out)
    }
}

impl DynamoRegistry {
    /// The delivery's mark: written only if this delivery was never seen.
    fn delivery_mark(&self, delivery: &str, change: &Change) -> Put {
        Put::builder()
            .table_name(&self.table)
            .item("pk", s(format!("DELIVERY#{delivery}")))
            .item("sk", s("DELIVERY"))
            .item("environment", s(change.name.as_str()))
            .item("received_at", ts(change.at))
            .item("ttl", n(change.at.timestamp() + DELIVERY_TTL_DAYS * 86_400))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .expect("pk, item and table are set")
    }

    /// The environment's update for `change`: written only if the event is later than the
    /// recorded one and the name is not another repository's.
    fn change_update(&self, change: &Change) -> Update {
        let mut sets = vec![
            "#name = :name",
            "kind = :kind",
            "#owner = :owner",
            "desired = :desired",
            "#status = :pending",
            "generation = if_not_exists(generation, :zero) + :one",
            "observed_generation = if_not_exists(observed_generation, :zero)",
            "event_at = :at",
            "event_rank = :rank",
            "created_at = if_not_exists(created_at, :now)",
            "updated_at = :now",
            "status_at = :now_ms",
            "expires_at = :expires",
            "preserved = if_not_exists(preserved, :false)",
            "merged = :merged",
            "gsi1pk = :gsi1pk",
            "gsi1sk = :name",
        ];
        let mut values: HashMap<String, AV> = HashMap::from([
            (":name".into(), s(change.name.as_str())),
            (":kind".into(), s(change.kind.as_str())),
            (":owner".into(), s(&change.owner)),
            (":desired".into(), s(change.desired.as_str())),
            (":pending".into(), s(Status::Pending.as_str())),
            (":zero".into(), n(0)),
            (":one".into(), n(1)),
            (":at".into(), n(change.order.at)),
            (":rank".into(), n(change.order.rank)),
            (":now".into(), ts(change.at)),
            (":now_ms".into(), n(change.at.timestamp_millis())),
            (":expires".into(), ts(change.expires_at)),
            (":false".into(), AV::Bool(false)),
            (":merged".into(), AV::Bool(change.merged)),
            (":gsi1pk".into(), s(format!("KIND#{}", change.kind.as_str()))),
        ]);
        let mut condition =
            "(attribute_not_exists(pk) OR event_at < :at OR (event_at = :at AND event_rank < :rank))".to_owned();
        match change.expected_generation {
            None => {}
            Some(0) => condition.push_str(" AND attribute_not_exists(pk)"),
            Some(g) => {
                condition.push_str(" AND generation = :expected");
                values.insert(":expected".into(), n(g));
            }
        }
        if let Some(repo) = &change.repository {
            sets.push("repository = :repo");
            values.insert(":repo".into(), s(repo.full_name()));
            // Two repositories whose names hash alike never share an environment.
            condition.push_str(" AND (attribute_not_exists(repository) OR repository = :repo)");
        }
        let mut names: HashMap<String, String> = [("#name", "name"), ("#owner", "owner"), ("#status", "status")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        // (assignment, value placeholder, value, attribute-name alias a reserved word needs)
        let optional = [
            ("pull_request = :pr", ":pr", change.pull_request.map(n), None),
            ("#commit = :commit", ":commit", change.commit.clone().map(s), Some("commit")),
            ("head_ref = :ref", ":ref", change.head_ref.clone().map(s), None),
            ("head_commit = :head", ":head", change.head_commit.clone().map(s), None),
            ("base_ref = :base", ":base", change.base_ref.clone().map(s), None),
            ("#source = :source", ":source", change.source.map(|k| s(k.as_str())), Some("source")),
            ("status_reason = :reason", ":reason", change.reason.as_deref().map(|r| s(truncate(r, 2000))), None),
        ];
        for (set, key, value, alias) in optional {
            let Some(v) = value else { continue };
            sets.push(set);
            values.insert(key.into(), v);
            if let Some(name) = alias {
                names.insert(format!("#{name}"), name.to_owned());
            }
        }
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(env_key(&change.name)))
            // A new expiry gets its own notice.
            .update_expression(match change.reason {
                Some(_) => format!("SET {} REMOVE expiry_notice_at", sets.join(", ")),
                None => format!("SET {} REMOVE status_reason, expiry_notice_at", sets.join(", ")),
            })
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .expect("key, expression and table are set")
    }

    /// Writes the mark and the update in one transaction. `Some(codes)` when it was cancelled
    /// (one cancellation code per item; empty when DynamoDB did not say).
    async fn transact(&self, mark: Put, update: Update) -> Result<Option<Vec<String>>, PortError> {
        let items =
            vec![TransactWriteItem::builder().put(mark).build(), TransactWriteItem::builder().update(update).build()];
        self.transact_items(items, "record change").await
    }

    /// Writes `items` in one transaction: None if it was made, else each item's cancellation
    /// reason code (`None` for an item that was not the cause). Cancellations caused by a
    /// concurrent transaction on the same items are retried.
    pub(crate) async fn transact_items(
        &self,
        items: Vec<TransactWriteItem>,
        operation: &'static str,
    ) -> Result<Option<Vec<String>>, PortError> {
        // Concurrent transactions on one item are cancelled with TransactionConflict: retry those.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.client.transact_write_items().set_transact_items(Some(items.clone())).send().await;
            let err = match result {
                Ok(_) => return Ok(None),
                Err(e) => e,
            };
            if code(&err) != Some("TransactionCanceledException") {
                return Err(port_error(operation, err));
            }
            let reasons: Vec<String> = err
                .as_service_error()
                .and_then(|e| match e {
                    TransactWriteItemsError::TransactionCanceledException(t) => Some(t),
                    _ => None,
                })
                .map(|t| t.cancellation_reasons().iter().filter_map(|r| r.code().map(str::to_owned)).collect())
                .unwrap_or_default();
            if reasons.iter().any(|c| c == "TransactionConflict") {
                if let Some(wait) = RetryPolicy::CONFLICT.backoff(attempt, draw()) {
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            return Ok(Some(reasons));
        }
    }

    /// Why a cancelled change was refused: a delivery seen before, a name taken by another
    /// repository, or a later event already recorded.
    async fn refusal(&self, delivery: &str, change: &Change, reasons: &[String]) -> Result<ChangeOutcome, PortError> {
        // Which condition failed: item 0 is the delivery mark, item 1 the environment.
        let failed = |i: usize| reasons.get(i).is_some_and(|c| c == "ConditionalCheckFailed");
        let seen = if reasons.is_empty() { self.delivery_seen(delivery).await? } else { failed(0) };
        if seen {
            return Ok(ChangeOutcome::Duplicate);
        }
        if let Some(existing) = self.get(&change.name).await? {
            if existing.repository.is_some() && existing.repository != change.repository {
                return Ok(ChangeOutcome::Conflict(format!(
                    "{} already belongs to {}",
                    change.name,
                    existing.repository.map(|r| r.full_name()).unwrap_or_default()
                )));
            }
        }
        Ok(ChangeOutcome::Stale)
    }
}

#[async_trait]
impl Environments for DynamoRegistry {
    #[instrument(skip(self))]
    async fn get(&self, name: &EnvironmentName) -> Result<Option<Environment>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(env_key(name)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error("read environment", e))?;
        out.item
            .map(|item| {
                from_item(&item).map_err(|m| PortError::Permanent { operation: "read environment", message: m })
            })
            .transpose()
    }

    async fn list(&self) -> Result<Vec<Environment>, PortError> {
        let mut all = Vec::new();
        for kind in EnvironmentKind::ALL {
            all.extend(self.list_kind(kind).await?);
        }
        Ok(all)
    }

    /// Kind after kind in name order, one query of the `by-kind` index each, from `after`.
    #[instrument(skip(self))]
    async fn page(
        &self,
        kind: Option<EnvironmentKind>,
        after: Option<&EnvironmentName>,
        limit: usize,
    ) -> Result<Page, PortError> {
        let limit = limit.max(1);
        let from = after.and_then(|a| EnvironmentKind::of_name(a.as_str()));
        let kinds = EnvironmentKind::BY_NAME.into_iter().filter(|k| kind.is_none_or(|only| only == *k));
        let kinds: Vec<EnvironmentKind> = kinds.skip_while(|k| from.is_some_and(|f| f != *k)).collect();
        let mut environments = Vec::new();
        for (i, k) in kinds.iter().enumerate() {
            let mut start = after.filter(|a| EnvironmentKind::of_name(a.as_str()) == Some(*k)).cloned();
            // A query may stop short of the limit (1 MB a response): go on from where it stopped.
            loop {
                let (mut found, stopped) = self.query_kind(*k, start.as_ref(), limit - environments.len()).await?;
                environments.append(&mut found);
                if environments.len() >= limit {
                    let later = stopped.is_some() || i + 1 < kinds.len();
                    let next = environments.last().map(|e| e.name.clone()).filter(|_| later);
                    return Ok(Page { next, environments });
                }
                match stopped {
                    Some(at) => start = Some(at),
                    None => break,
                }
            }
        }
        Ok(Page { environments, next: None })
    }
}

impl DynamoRegistry {
    /// Up to `limit` environments of `kind` after `after`, and where the query stopped if there
    /// may be more.
    async fn query_kind(
        &self,
        kind: EnvironmentKind,
        after: Option<&EnvironmentName>,
        limit: usize,
    ) -> Result<(Vec<Environment>, Option<EnvironmentName>), PortError> {
        let start = after.map(|a| {
            let mut key = env_key(a);
            key.insert("gsi1pk".into(), s(format!("KIND#{}", kind.as_str())));
            key.insert("gsi1sk".into(), s(a.as_str()));
            key
        });
        let out = self
            .kind_query(kind)
            .set_exclusive_start_key(start)
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(|e| port_error("list environments", e))?;
        let found = out.items.unwrap_or_default().iter().filter_map(|i| from_item(i).ok()).collect();
        let stopped = out.last_evaluated_key.as_ref().and_then(|k| k.get("gsi1sk")?.as_s().ok().cloned());
        Ok((found, stopped.and_then(|name| EnvironmentName::parse(&name).ok())))
    }
}

#[async_trait]
impl DesiredState for DynamoRegistry {
    #[instrument(skip(self, change), fields(environment = %change.name))]
    async fn apply_change(&self, delivery: &str, change: &Change) -> Result<ChangeOutcome, PortError> {
        let mark = self.delivery_mark(delivery, change);
        let update = self.change_update(change);
        if let Some(reasons) = self.transact(mark, update).await? {
            return self.refusal(delivery, change, &reasons).await;
        }
        let env = self.get(&change.name).await?.ok_or(PortError::Retryable {
            operation: "record change",
            message: "environment not readable after write".into(),
        })?;
        Ok(ChangeOutcome::Accepted { generation: env.generation })
    }

    async fn set_preserved(
        &self,
        name: &EnvironmentName,
        preserved: bool,
        until: Option<DateTime<Utc>>,
    ) -> Result<bool, PortError> {
        let (update, mut values) = match until {
            Some(t) => ("SET preserved = :p, preserved_until = :u", vec![(":u", ts(t))]),
            None => ("SET preserved = :p REMOVE preserved_until", vec![]),
        };
        values.push((":p", AV::Bool(preserved)));
        self.conditional(name, update, "attribute_exists(pk)", values, "preserve").await
    }

    #[instrument(skip(self))]
    async fn mark_delivery(&self, delivery: &str, about: &str, at: DateTime<Utc>) -> Result<bool, PortError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("DELIVERY#{delivery}")))
            .item("sk", s("DELIVERY"))
            .item("environment", s(about))
            .item("received_at", ts(at))
            .item("ttl", n(at.timestamp() + DELIVERY_TTL_DAYS * 86_400))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) if code(&e) == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(port_error("mark delivery", e)),
        }
    }

    #[instrument(skip(self))]
    async fn unmark_delivery(&self, delivery: &str) -> Result<(), PortError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("DELIVERY#{delivery}")))
            .key("sk", s("DELIVERY"))
            .send()
            .await
            .map_err(|e| port_error("unmark delivery", e))?;
        Ok(())
    }

    #[instrument(skip(self))]
    async fn set_expiry(&self, name: &EnvironmentName, expires_at: DateTime<Utc>) -> Result<bool, PortError> {
        let update = "SET expires_at = :e REMOVE expiry_notice_at";
        self.conditional(name, update, "attribute_exists(pk)", vec![(":e", ts(expires_at))], "set expiry").await
    }
}

#[async_trait]
impl CostLog for DynamoRegistry {
    async fn record_cost(&self, name: &EnvironmentName, monthly_usd: f64, accrued_usd: f64) -> Result<(), PortError> {
        self.conditional(
            name,
            "SET cost_monthly_usd = :m, cost_accrued_usd = :a",
            "attribute_exists(pk)",
            vec![(":m", n(monthly_usd)), (":a", n(accrued_usd))],
            "record cost",
        )
        .await
        .map(|_| ())
    }
}

#[async_trait]
impl Reconciliation for DynamoRegistry {
    #[instrument(skip(self))]
    async fn try_lease(&self, name: &EnvironmentName, lease: &Lease) -> Result<bool, PortError> {
        let Lease { holder, now, until } = lease;
        let (holder, now, until) = (holder.as_str(), *now, *until);
        let taken = self
            .conditional(
                name,
                "SET lease_holder = :h, lease_until = :until",
                // Our own holder id matches when the SDK retried a take whose answer was lost.
                "attribute_exists(pk) AND (attribute_not_exists(lease_until) OR lease_until < :now OR lease_holder = :h)",
                vec![(":h", s(holder)), (":until", n(until.timestamp())), (":now", n(now.timestamp()))],
                "take lease",
            )
            .await?;
        // No row at all is not contention: the reconcile finds nothing to do.
        Ok(taken || self.get(name).await?.is_none())
    }

    #[instrument(skip(self))]
    async fn release_lease(&self, name: &EnvironmentName, holder: &str) -> Result<(), PortError> {
        // Someone else's lease (ours expired and was taken) is theirs to release.
        self.conditional(
            name,
            "REMOVE lease_holder, lease_until",
            "lease_holder = :h",
            vec![(":h", s(holder))],
            "release lease",
        )
        .await
        .map(|_| ())
    }

    #[instrument(skip(self, p))]
    async fn record_progress(&self, name: &EnvironmentName, stamp: Stamp, p: &Progress) -> Result<bool, PortError> {
        let Stamp { generation, at } = stamp;
        let mut sets = vec!["updated_at = :now".to_owned()];
        let mut removes = Vec::new();
        let mut values = HashMap::from([(":now".to_owned(), ts(at)), (":g".to_owned(), n(generation))]);
        let mut names = HashMap::new();
        if let Some(status) = p.status {
            sets.push("#status = :status".into());
            sets.push("status_at = :now_ms".into());
            names.insert("#status".to_owned(), "status".to_owned());
            values.insert(":status".into(), s(status.as_str()));
            values.insert(":now_ms".into(), n(at.timestamp_millis()));
            match &p.reason {
                Some(r) => {
                    sets.push("status_reason = :reason".into());
                    values.insert(":reason".into(), s(truncate(r, 2000)));
                }
                None => removes.push("status_reason"),
            }
        }
        if let Some(id) = &p.stack_id {
            sets.push("stack_id = :stack".into());
            values.insert(":stack".into(), s(id));
        }
        if let Some(outputs) = &p.outputs {
            sets.push("outputs = :outputs".into());
            values.insert(":outputs".into(), AV::M(outputs.iter().map(|(k, v)| (k.clone(), s(v))).collect()));
        }
        match &p.preview_url {
            Some(u) => {
                sets.push("preview_url = :url".into());
                values.insert(":url".into(), s(u));
            }
            None if p.settled => removes.push("preview_url"),
            None => {}
        }
        if p.settled {
            sets.push("observed_generation = :g".into());
        }
        if let Some(place) = &p.placement {
            sets.push("#region = :region".into());
            names.insert("#region".to_owned(), "region".to_owned());
            values.insert(":region".into(), s(&place.region));
            match &place.account {
                Some(a) => {
                    sets.push("account = :account".into());
                    values.insert(":account".into(), s(a));
                }
                None => removes.push("account"),
            }
        }
        let mut expr = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expr.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(env_key(name)))
            .update_expression(expr)
            .condition_expression("generation = :g")
            .set_expression_attribute_names((!names.is_empty()).then_some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if code(&e) == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(port_error("record p", e)),
        }
    }
}

#[async_trait]
impl Sweeping for DynamoRegistry {
    #[instrument(skip(self))]
    async fn go_down(&self, name: &EnvironmentName, stamp: Stamp, how: GoDown, why: &str) -> Result<bool, PortError> {
        let Stamp { generation, at } = stamp;
        let (update, status, operation) = match how {
            GoDown::Retire => (
                "SET desired = :down, #status = :status, status_reason = :reason, generation = :next, \
                 observed_generation = :next, updated_at = :now REMOVE preview_url",
                Status::Deleted,
                "retire",
            ),
            GoDown::Request => (
                "SET desired = :down, #status = :status, status_reason = :reason, generation = :next, updated_at = :now",
                Status::Pending,
                "request down",
            ),
        };
        let values = vec![
            (":down", s("down")),
            (":status", s(status.as_str())),
            (":reason", s(why)),
            (":next", n(generation + 1)),
            (":now", ts(at)),
            (":g", n(generation)),
        ];
        self.conditional(name, update, "generation = :g", values, operation).await
    }

    async fn record_notice(
        &self,
        name: &EnvironmentName,
        at: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        // Times are written alike (`%Y-%m-%dT%H:%M:%SZ`), so strings compare as times.
        self.conditional(
            name,
            "SET expiry_notice_at = :t",
            "attribute_exists(pk) AND (attribute_not_exists(expiry_notice_at) OR expiry_notice_at < :since)",
            vec![(":t", ts(at)), (":since", ts(since))],
            "record notice",
        )
        .await
    }
}

#[async_trait]
impl StackStatusLog for DynamoRegistry {
    #[instrument(skip(self, update), fields(status = update.status.as_str(), at_ms = update.at_ms))]
    async fn record_stack_status(&self, name: &EnvironmentName, update: &StackStatusUpdate) -> Result<bool, PortError> {
        self.stack_status(name, update).await
    }
}

#[async_trait]
impl NotifiedLog for DynamoRegistry {
    async fn record_notified(&self, name: &EnvironmentName, reported: &Reported) -> Result<(), PortError> {
        let key = s(reported.to_string());
        self.conditional(name, "SET notified = :k", "attribute_exists(pk)", vec![(":k", key)], "record notified")
            .await
            .map(|_| ())
    }
}

impl DynamoRegistry {
    async fn stack_status(&self, name: &EnvironmentName, u: &StackStatusUpdate) -> Result<bool, PortError> {
        let mut sets = vec!["#status = :status", "status_at = :t", "stack_id = :sid", "updated_at = :now"];
        let mut removes = Vec::new();
        let mut values = vec![
            (":status", s(u.status.as_str())),
            (":t", n(u.at_ms)),
            (":sid", s(&u.stack_id)),
            (":now", ts(Utc::now())),
        ];
        match &u.reason {
            Some(r) => {
                sets.push("status_reason = :reason");
                values.push((":reason", s(truncate(r, 2000))));
            }
            None => removes.push("status_reason"),
        }
        if let Some(outputs) = &u.outputs {
            sets.push("outputs = :outputs");
            values.push((":outputs", AV::M(outputs.iter().map(|(k, v)| (k.clone(), s(v))).collect())));
        }
        match &u.preview_url {
            Some(url) => {
                sets.push("preview_url = :url");
                values.push((":url", s(url)));
            }
            None if u.status == Status::Deleted => removes.push("preview_url"),
            None => {}
        }
        let mut update = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            update.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        self.conditional(
            name,
            &update,
            "attribute_exists(pk) AND (attribute_not_exists(status_at) OR status_at < :t) \
             AND (attribute_not_exists(stack_id) OR stack_id = :sid)",
            values,
            "record stack status",
        )
        .await
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Reads an environment item. Err names the attribute that is missing or malformed.
pub fn from_item(item: &HashMap<String, AV>) -> Result<Environment, String> {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let req = |k: &str| text(k).ok_or_else(|| format!("registry item lacks {k}"));
    let num = |k: &str| item.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok());
    let time = |k: &str| -> Result<DateTime<Utc>, String> {
        DateTime::parse_from_rfc3339(&req(k)?).map(|t| t.to_utc()).map_err(|e| format!("{k}: {e}"))
    };
    let optional_time = |k: &str| text(k).and_then(|t| DateTime::parse_from_rfc3339(&t).ok()).map(|t| t.to_utc());
    let name = EnvironmentName::parse(&req("name")?).map_err(|e| e.to_string())?;
    let kind = EnvironmentKind::parse(&req("kind")?).ok_or("bad kind")?;
    let desired = Desired::parse(&req("desired")?).ok_or("bad desired")?;
    let status = Status::parse(&req("status")?).ok_or("bad status")?;
    let repository = text("repository").map(|r| RepoName::parse(&r)).transpose().map_err(|e| e.to_string())?;
    let outputs: BTreeMap<String, String> = item
        .get("outputs")
        .and_then(|v| v.as_m().ok())
        .map(|m| m.iter().filter_map(|(k, v)| v.as_s().ok().map(|s| (k.clone(), s.clone()))).collect())
        .unwrap_or_default();
    Ok(Environment {
        name,
        kind,
        repository,
        pull_request: num("pull_request").map(|n| n as u64),
        owner: req("owner")?,
        commit: text("commit"),
        head_ref: text("head_ref"),
        head_commit: text("head_commit"),
        base_ref: text("base_ref"),
        source: text("source").as_deref().and_then(CommitSource::parse),
        // Rows written before the flag had only the close's reason to say it.
        merged: item.get("merged").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false)
            || text("status_reason").as_deref() == Some(PR_MERGED),
        desired,
        status,
        status_reason: text("status_reason"),
        status_at: num("status_at"),
        notified: text("notified").as_deref().and_then(Reported::parse),
        generation: num("generation").unwrap_or(0) as u64,
        observed_generation: num("observed_generation").unwrap_or(0) as u64,
        last_event: num("event_at").map(|at| EventOrder::new(at, num("event_rank").unwrap_or(0) as u8)),
        stack_id: text("stack_id"),
        outputs,
        preview_url: text("preview_url"),
        preserved: item.get("preserved").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
        preserved_until: optional_time("preserved_until"),
        account: text("account"),
        region: text("region"),
        cost_monthly_usd: item.get("cost_monthly_usd").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()),
        cost_accrued_usd: item.get("cost_accrued_usd").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()),
        expiry_notice_at: optional_time("expiry_notice_at"),
        created_at: time("created_at")?,
        updated_at: time("updated_at")?,
        expires_at: time("expires_at")?,
    })
}
