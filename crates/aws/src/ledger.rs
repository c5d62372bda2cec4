//! The running totals admission decides on, in the registry's table: one `TOTALS` item with a
//! number per counter, and one `CLAIM#<name>` item per environment holding a claim. A claim is
//! taken in one transaction: the claim item (only if the environment holds none) and an `ADD`
//! to every counter, conditioned on each limited counter staying within its limit; so 20
//! concurrent creates for the last slot admit exactly one. Releasing deletes the claim item and
//! subtracts what it took, in one transaction too.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue as AV, Delete, Put, TransactWriteItem, Update};
use ephemera_app::ports::{Admit, Ledger};
use ephemera_app::PortError;
use ephemera_domain::admission::{overflow, Claim, Take};
use ephemera_domain::EnvironmentName;
use tracing::instrument;

use crate::error::port_error;
use crate::DynamoRegistry;

const CONDITION_FAILED: &str = "ConditionalCheckFailed";
const CLAIMS: &str = "CLAIMS";

fn key(pk: String, sk: &str) -> HashMap<String, AV> {
    HashMap::from([("pk".to_owned(), AV::S(pk)), ("sk".to_owned(), AV::S(sk.to_owned()))])
}

fn totals_key() -> HashMap<String, AV> {
    key("TOTALS".into(), "TOTALS")
}

fn claim_key(env: &EnvironmentName) -> HashMap<String, AV> {
    key(format!("CLAIM#{env}"), "CLAIM")
}

fn claim_item(env: &EnvironmentName, claim: &Claim) -> HashMap<String, AV> {
    let takes = claim
        .takes
        .iter()
        .map(|t| {
            AV::M(HashMap::from([
                ("counter".into(), AV::S(t.counter.clone())),
                ("amount".into(), AV::N(t.amount.to_string())),
            ]))
        })
        .collect();
    let mut item = claim_key(env);
    item.insert("takes".into(), AV::L(takes));
    // In the by-kind index under CLAIMS, so the sweep can list the holders without a scan.
    item.insert("gsi1pk".into(), AV::S(CLAIMS.into()));
    item.insert("gsi1sk".into(), AV::S(env.to_string()));
    if let Some(account) = &claim.account {
        item.insert("account".into(), AV::S(account.clone()));
    }
    item
}

fn read_claim(item: &HashMap<String, AV>) -> Claim {
    let take = |m: &HashMap<String, AV>| {
        let counter = m.get("counter")?.as_s().ok()?.clone();
        let amount = m.get("amount")?.as_n().ok()?.parse().ok()?;
        Some(Take { counter, amount, limit: None })
    };
    let takes = item
        .get("takes")
        .and_then(|v| v.as_l().ok())
        .map(|l| l.iter().filter_map(|v| v.as_m().ok().and_then(take)).collect())
        .unwrap_or_default();
    Claim { takes, account: item.get("account").and_then(|v| v.as_s().ok()).cloned() }
}

/// A transaction cancelled for another reason than a condition (conflicts that outlasted the
/// retries): worth trying again.
fn conflict(operation: &'static str, reasons: &[String]) -> PortError {
    PortError::Retryable { operation, message: format!("transaction cancelled: {reasons:?}") }
}

/// `ADD` each take's amount (negated to give it back), conditioned on every limit when taking.
fn totals_update(table: &str, takes: &[Take], sign: i64) -> Update {
    let mut adds = Vec::new();
    let mut conditions = Vec::new();
    let mut names = HashMap::new();
    let mut values = HashMap::new();
    for (i, t) in takes.iter().enumerate() {
        names.insert(format!("#c{i}"), t.counter.clone());
        values.insert(format!(":a{i}"), AV::N((sign * t.amount).to_string()));
        adds.push(format!("#c{i} :a{i}"));
        if let (Some(limit), 1) = (t.limit, sign) {
            values.insert(format!(":m{i}"), AV::N((limit - t.amount).to_string()));
            conditions.push(format!("(attribute_not_exists(#c{i}) OR #c{i} <= :m{i})"));
        }
    }
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(totals_key()))
        .update_expression(format!("ADD {}", adds.join(", ")))
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values));
    let update = if conditions.is_empty() { update } else { update.condition_expression(conditions.join(" AND ")) };
    update.build().expect("table, key and expression are set")
}

#[async_trait]
impl Ledger for DynamoRegistry {
    #[instrument(skip(self))]
    async fn totals(&self) -> Result<BTreeMap<String, i64>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(totals_key()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error("read totals", e))?;
        let number = |v: &AV| v.as_n().ok().and_then(|n| n.parse().ok());
        Ok(out
            .item
            .unwrap_or_default()
            .iter()
            .filter(|(k, _)| *k != "pk" && *k != "sk")
            .filter_map(|(k, v)| Some((k.clone(), number(v)?)))
            .collect())
    }

    #[instrument(skip(self, claim))]
    async fn claim(&self, env: &EnvironmentName, claim: &Claim) -> Result<Admit, PortError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(claim_item(env, claim)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .expect("table and item are set");
        let items = vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(totals_update(&self.table, &claim.takes, 1)).build(),
        ];
        let Some(reasons) = self.transact_items(items, "take claim").await? else {
            return Ok(Admit::Admitted(claim.clone()));
        };
        if reasons.first().map(String::as_str) == Some(CONDITION_FAILED) {
            if let Some(held) = self.held(env).await? {
                return Ok(Admit::Admitted(held));
            }
        }
        if reasons.get(1).map(String::as_str) != Some(CONDITION_FAILED) {
            return Err(conflict("take claim", &reasons));
        }
        let totals = self.totals().await?;
        match overflow(claim, &totals) {
            Some(full) => Ok(Admit::Refused { full: full.clone(), totals }),
            // The totals moved between the refusal and the read, or the claim was just released.
            None => Err(PortError::Retryable {
                operation: "take claim",
                message: format!("refused ({reasons:?}) but within every limit now; try again"),
            }),
        }
    }

    #[instrument(skip(self))]
    async fn release(&self, env: &EnvironmentName) -> Result<bool, PortError> {
        let Some(held) = self.held(env).await? else { return Ok(false) };
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(claim_key(env)))
            .condition_expression("attribute_exists(pk)")
            .build()
            .expect("table and key are set");
        let mut items = vec![TransactWriteItem::builder().delete(delete).build()];
        if !held.takes.is_empty() {
            items.push(TransactWriteItem::builder().update(totals_update(&self.table, &held.takes, -1)).build());
        }
        match self.transact_items(items, "release claim").await? {
            None => Ok(true),
            // The claim was released meanwhile: nothing left to give back.
            Some(reasons) if reasons.first().map(String::as_str) == Some(CONDITION_FAILED) => Ok(false),
            Some(reasons) => Err(conflict("release claim", &reasons)),
        }
    }

    #[instrument(skip(self))]
    async fn held(&self, env: &EnvironmentName) -> Result<Option<Claim>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(claim_key(env)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error("read claim", e))?;
        Ok(out.item.as_ref().map(read_claim))
    }

    #[instrument(skip(self))]
    async fn holders(&self) -> Result<Vec<EnvironmentName>, PortError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(crate::registry::KIND_INDEX)
            .key_condition_expression("gsi1pk = :k")
            .expression_attribute_values(":k", AV::S(CLAIMS.into()))
            .projection_expression("gsi1sk")
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| port_error("list claims", e))?;
            let names = page.items().iter().filter_map(|i| i.get("gsi1sk")?.as_s().ok().cloned());
            out.extend(names.filter_map(|n| EnvironmentName::parse(&n).ok()));
        }
        Ok(out)
    }
}
