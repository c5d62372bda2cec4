//! Cost estimates: a small price table per resource type, times the time an environment has
//! existed. An estimate for showing and budgeting, not a bill.
//!
//! Default monthly prices (USD, us-east-1 list prices for a lightly used development backend):
//!
//! | resource type | per month | basis |
//! |---|---|---|
//! | `AWS::AppSync::GraphQLApi` | 4.00 | a few hundred thousand queries at $4 per million |
//! | `AWS::DynamoDB::Table` | 0.50 | on demand: small storage and request volume |
//! | `AWS::S3::Bucket` | 0.10 | a few GB-days and requests |
//! | `AWS::SQS::Queue` | 0.05 | requests |
//! | `AWS::Lambda::Function` | 0.10 | requests and compute in the free-tier range |
//! | `AWS::SecretsManager::Secret` | 0.40 | one secret |
//! | `AWS::Logs::LogGroup` | 0.03 | a little ingestion and a week's retention |
//! | `AWS::SNS::Topic` | 0.01 | requests |
//! | anything else | 0.00 | IAM roles and policies, Cognito pools at development scale, API keys, ... |
//!
//! The prices live in the resource catalogue ([`crate::catalogue`]), one per entry.
//!
//! `EPHEMERA_PRICE_TABLE` overrides entries: `AWS::AppSync::GraphQLApi=2.5,AWS::S3::Bucket=0.2`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::catalogue::{Kind, CATALOGUE};

/// Average hours in a month (365 × 24 / 12).
pub const HOURS_PER_MONTH: f64 = 730.0;

#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable(BTreeMap<String, f64>);

impl Default for PriceTable {
    /// The catalogue's prices.
    fn default() -> Self {
        Self(CATALOGUE.iter().map(|e| (e.resource_type.to_owned(), e.monthly_usd)).collect())
    }
}

impl PriceTable {
    /// The defaults with `Type=price,...` overrides applied.
    pub fn with_overrides(spec: &str) -> Result<Self, String> {
        let mut t = Self::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| format!("{part:?} is not Type=price"))?;
            let price: f64 = v.trim().parse().map_err(|_| format!("{v:?} is not a price"))?;
            if !(0.0..=100_000.0).contains(&price) || !k.trim().starts_with("AWS::") {
                return Err(format!("{part:?}: expected AWS::Service::Type=price with a price of at least 0"));
            }
            t.0.insert(k.trim().to_owned(), price);
        }
        Ok(t)
    }

    pub fn monthly(&self, resource_type: &str) -> f64 {
        self.0.get(resource_type).copied().unwrap_or(0.0)
    }

    /// The monthly run rate of a set of resource types.
    pub fn monthly_total<'a>(&self, types: impl IntoIterator<Item = &'a str>) -> f64 {
        types.into_iter().map(|t| self.monthly(t)).sum()
    }
}

/// What an environment with that monthly rate has cost from `since` to `until`.
pub fn accrued(monthly: f64, since: DateTime<Utc>, until: DateTime<Utc>) -> f64 {
    let hours = (until - since).num_seconds().max(0) as f64 / 3600.0;
    round_cents(monthly * hours / HOURS_PER_MONTH)
}

/// What an environment has cost at each moment of its timeline (and now): `monthly` while a
/// stack of it stood, from its creation until its deletion, again from a re-creation.
pub fn accrued_over(
    moments: &[(DateTime<Utc>, crate::Status)],
    monthly: f64,
    now: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, f64)> {
    use crate::Status;
    let (mut total, mut since, mut out) = (0.0, None::<DateTime<Utc>>, Vec::new());
    let at_time = |at: DateTime<Utc>, since: Option<DateTime<Utc>>, total: f64| {
        total + since.map_or(0.0, |s| accrued(monthly, s, at.max(s)))
    };
    for (at, status) in moments {
        let so_far = at_time(*at, since, total);
        out.push((*at, round_cents(so_far)));
        match status {
            Status::Creating if since.is_none() => (total, since) = (so_far, Some(*at)),
            Status::Deleted => (total, since) = (so_far, None),
            _ => {}
        }
    }
    out.push((now, round_cents(at_time(now, since, total))));
    out
}

pub fn round_cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The resource type of an ARN, for the types the catalogue knows.
pub fn resource_type_of(arn: &str) -> Option<&'static str> {
    Kind::of_arn(arn).map(Kind::resource_type)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cost_accrues_while_a_stack_stands() {
        use crate::Status;
        let t = |h: i64| DateTime::from_timestamp(1_764_000_000 + h * 3600, 0).unwrap();
        // 730 USD a month is 1 USD an hour.
        let moments = [
            (t(0), Status::Pending),
            (t(1), Status::Creating),
            (t(2), Status::Ready),
            (t(5), Status::Deleted),
            (t(9), Status::Creating),
        ];
        let series = accrued_over(&moments, 730.0, t(10));
        let usd: Vec<f64> = series.iter().map(|(_, c)| *c).collect();
        assert_eq!(usd, [0.0, 0.0, 1.0, 4.0, 4.0, 5.0]);
        assert_eq!(series.last().unwrap().0, t(10));
    }

    use super::*;

    #[test]
    fn default_environment_costs_about_what_the_seed_estimated() {
        let t = PriceTable::default();
        let month = t.monthly_total([
            "AWS::AppSync::GraphQLApi",
            "AWS::DynamoDB::Table",
            "AWS::DynamoDB::Table",
            "AWS::S3::Bucket",
            "AWS::IAM::Role",
        ]);
        assert!((month - 5.10).abs() < 1e-9, "{month}");
        let start = DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z").unwrap().to_utc();
        assert_eq!(accrued(month, start, start + chrono::Duration::hours(73)), 0.51);
        assert_eq!(accrued(month, start, start - chrono::Duration::hours(1)), 0.0);
    }

    #[test]
    fn overrides_and_bad_input() {
        let t = PriceTable::with_overrides("AWS::S3::Bucket=0.25, AWS::IAM::Role=0").unwrap();
        assert_eq!(t.monthly("AWS::S3::Bucket"), 0.25);
        assert_eq!(t.monthly("AWS::AppSync::GraphQLApi"), 4.0);
        for bad in ["S3=1", "AWS::S3::Bucket=cheap", "AWS::S3::Bucket=-1", "AWS::S3::Bucket"] {
            assert!(PriceTable::with_overrides(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resource_types_from_arns() {
        assert_eq!(resource_type_of("arn:aws:s3:::ephemera-pr-1-x"), Some("AWS::S3::Bucket"));
        assert_eq!(
            resource_type_of("arn:aws:dynamodb:us-east-1:1:table/ephemera-pr-1-Task"),
            Some("AWS::DynamoDB::Table")
        );
        assert_eq!(resource_type_of("arn:aws:appsync:us-east-1:1:apis/abc"), Some("AWS::AppSync::GraphQLApi"));
        assert_eq!(resource_type_of("arn:aws:cloudformation:us-east-1:1:stack/x/y"), None);
        assert_eq!(resource_type_of("not an arn"), None);
    }
}
