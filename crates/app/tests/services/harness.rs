//! A world of fakes, and the services wired to it as the Lambda functions wire them to AWS.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ephemera_app::feedback::{FeedbackSettings, Notifier};
use ephemera_app::intake::{Delivery, Intake, IntakeError, IntakeSettings, Reply};
use ephemera_app::memory::*;
use ephemera_app::provisioner::{Provisioner, ProvisionerSettings};
use ephemera_app::reaper::{Reaper, ReaperSettings};
use ephemera_app::selfservice::{SelfService, SelfServiceSettings};
use ephemera_app::stack_events::StackEvents;
use ephemera_app::Clock;
use ephemera_domain::perf::{Gate, LoadPlan, SmokeCheck};
use ephemera_domain::{Environment, EnvironmentName, TagSet};
use ephemera_github_webhook::WebhookSecrets;

pub const BUCKET: &str = "ephemera-test";
pub const SECRET: &str = "test-webhook-secret";
/// The environment of the pull request fixtures (acme/todo-app#7).
pub const PR: &str = fixtures::ENVIRONMENT;
pub use fixtures::{HEAD_FORK, HEAD_OPENED, HEAD_SYNCHRONIZED};

pub use ephemera_app::memory::fixtures;

/// The default blueprint: a bucket and a table ($0.60 a month at the default prices).
pub const BLUEPRINT: &str = "Resources:
  Files:
    Type: AWS::S3::Bucket
  Todo:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
";

pub fn name(s: &str) -> EnvironmentName {
    EnvironmentName::parse(s).unwrap()
}

pub fn time(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
}

pub use ephemera_app::memory::fixtures::edit;

pub struct World {
    pub clock: Arc<FixedClock>,
    pub registry: Arc<MemoryRegistry>,
    pub stacks: Arc<MemoryStacks>,
    pub store: Arc<MemoryStore>,
    pub seeder: Arc<MemorySeeder>,
    pub bus: Arc<MemoryBus>,
    pub resources: Arc<MemoryResources>,
    pub github: Arc<MemoryGitHub>,
    /// GitHub as the sweep's catch-up reads it.
    pub pulls: Arc<MemoryPulls>,
    pub prober: Arc<MemoryProber>,
    pub keys: Arc<MemoryApiKeys>,
    /// The platform's account (the fakes above) and each deploy account's own.
    pub sites: Arc<MemorySites>,
}

impl World {
    /// Half a minute after the pull request fixture was opened, with the default blueprint.
    pub fn new() -> Self {
        let clock = Arc::new(FixedClock::at("2026-11-20T09:00:30Z"));
        let outputs = [("PreviewUrl", "https://preview.example.com"), ("TodoTableName", "ephemera-todo-fake")];
        let home = MemoryPlace {
            stacks: Arc::new(MemoryStacks::with_clock(clock.clone()).with_outputs(&outputs)),
            store: Arc::new(MemoryStore::new()),
            seeder: Arc::new(MemorySeeder::new()),
            resources: Arc::new(MemoryResources::new()),
            keys: Arc::new(MemoryApiKeys::new()),
        };
        let account_clock = clock.clone();
        let sites = Arc::new(MemorySites::new(home.site(), move || MemoryPlace {
            stacks: Arc::new(MemoryStacks::with_clock(account_clock.clone()).with_outputs(&outputs)),
            store: Arc::new(MemoryStore::new()),
            seeder: Arc::new(MemorySeeder::new()),
            resources: Arc::new(MemoryResources::new()),
            keys: Arc::new(MemoryApiKeys::new()),
        }));
        let w = Self {
            registry: Arc::new(MemoryRegistry::with_clock(clock.clone())),
            stacks: home.stacks,
            clock,
            store: home.store,
            seeder: home.seeder,
            bus: Arc::new(MemoryBus::new()),
            resources: home.resources,
            sites,
            github: Arc::new(MemoryGitHub::new()),
            pulls: Arc::new(MemoryPulls::new()),
            prober: Arc::new(MemoryProber::new()),
            keys: home.keys,
        };
        w.store.put(BUCKET, "blueprints/default.yaml", BLUEPRINT);
        w
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn env(&self, s: &str) -> Environment {
        self.registry.snapshot(&name(s)).unwrap_or_else(|| panic!("{s} is not recorded"))
    }

    pub fn intake_settings() -> IntakeSettings {
        IntakeSettings {
            secrets: WebhookSecrets::new(SECRET, None),
            allowed_repositories: vec![],
            deploy_forks: false,
            labels: Default::default(),
            expiry: Default::default(),
            pr_ttl_by_repository: Default::default(),
            branches: ephemera_domain::branch::BranchPatterns::parse("feature/*").unwrap(),
        }
    }

    /// The intake, asking (fake) GitHub about mergeability and approvers.
    pub fn intake(&self) -> Intake {
        self.intake_with(Self::intake_settings())
    }

    pub fn intake_with(&self, settings: IntakeSettings) -> Intake {
        Intake::new(self.registry.clone(), self.bus.clone(), self.clock.clone(), settings)
            .with_github(self.github.clone())
            .with_repo_files(ephemera_app::intake::RepoFiles { store: self.store.clone(), bucket: BUCKET.into() })
    }

    pub fn provisioner_settings() -> ProvisionerSettings {
        ProvisionerSettings {
            bucket: BUCKET.into(),
            cost_tags: TagSet::parse_cost_tags("CostCenter=platform").unwrap(),
            role_boundary_arn: None,
            blueprint_policy: Default::default(),
            wait: Duration::from_millis(200),
            poll: Duration::from_millis(1),
            monthly_budget_usd: None,
            prices: Default::default(),
            dev_quotas: Default::default(),
            routes: Default::default(),
            region: "us-east-1".into(),
        }
    }

    pub fn provisioner(&self) -> Provisioner {
        self.provisioner_with(Self::provisioner_settings())
    }

    pub fn provisioner_with(&self, settings: ProvisionerSettings) -> Provisioner {
        Provisioner {
            registry: self.registry.clone(),
            ledger: self.registry.clone(),
            sites: self.sites.clone(),
            store: self.store.clone(),
            bus: self.bus.clone(),
            history: self.registry.clone(),
            clock: self.clock.clone(),
            settings,
        }
    }

    /// The provisioner with `stacks` as the platform account's CloudFormation.
    pub fn provisioner_with_stacks(&self, stacks: Arc<dyn ephemera_app::ports::Stacks>) -> Provisioner {
        let home = ephemera_app::ports::Site { stacks, ..self.home().site() };
        Provisioner { sites: Arc::new(MemorySites::new(home, MemoryPlace::new)), ..self.provisioner() }
    }

    /// The platform account's fakes.
    pub fn home(&self) -> MemoryPlace {
        MemoryPlace {
            stacks: self.stacks.clone(),
            store: self.store.clone(),
            seeder: self.seeder.clone(),
            resources: self.resources.clone(),
            keys: self.keys.clone(),
        }
    }

    pub fn reaper_settings() -> ReaperSettings {
        ReaperSettings {
            stuck_after: chrono::Duration::hours(2),
            grace: chrono::Duration::minutes(10),
            notice_before: chrono::Duration::hours(24),
            allowed_accounts: vec![],
            allowed_regions: vec![],
            calls_per_second: 10_000.0,
            prices: Default::default(),
            repair_wait: Duration::from_secs(1),
            routes: Default::default(),
        }
    }

    pub fn reaper(&self) -> Reaper {
        Reaper {
            registry: self.registry.clone(),
            ledger: self.registry.clone(),
            sites: self.sites.clone(),
            bus: self.bus.clone(),
            clock: self.clock.clone(),
            settings: Self::reaper_settings(),
            catch_up: None,
        }
    }

    /// The reaper, catching up with (fake) GitHub first; a light sweep may make `light` requests.
    pub fn reaper_catching_up(&self, light: u64) -> Reaper {
        let intake = Intake::new(
            self.registry.clone(),
            self.bus.clone(),
            self.clock.clone(),
            IntakeSettings { secrets: None, ..Self::intake_settings() },
        )
        .with_github(self.github.clone())
        .with_repo_files(ephemera_app::intake::RepoFiles { store: self.store.clone(), bucket: BUCKET.into() });
        let catch_up = ephemera_app::catch_up::CatchUp {
            github: self.pulls.clone(),
            intake: Arc::new(intake),
            store: self.store.clone(),
            clock: self.clock.clone(),
            settings: ephemera_app::catch_up::CatchUpSettings {
                reserve: 10,
                light_requests: light,
                deploy_forks: false,
                bucket: BUCKET.into(),
            },
        };
        Reaper { catch_up: Some(Arc::new(catch_up)), ..self.reaper() }
    }

    pub fn stack_events(&self) -> StackEvents {
        StackEvents { registry: self.registry.clone(), stacks: self.stacks.clone(), bus: self.bus.clone() }
    }

    pub fn feedback_settings() -> FeedbackSettings {
        FeedbackSettings {
            bucket: BUCKET.into(),
            smoke: vec![SmokeCheck { path: "/".into(), expect: 200 }],
            load: Some(LoadPlan { rate: 10, duration_secs: 2, concurrency: 2 }),
            scenario: ephemera_domain::perf::Scenario::graphql(),
            gate: Gate::default(),
            dashboard_url: Some("https://dashboard.example.com/".into()),
            routes: Default::default(),
        }
    }

    pub fn notifier(&self) -> Notifier {
        self.notifier_with(Self::feedback_settings())
    }

    pub fn notifier_with(&self, settings: FeedbackSettings) -> Notifier {
        let (github, prober) = (self.github.clone(), self.prober.clone());
        Notifier {
            registry: self.registry.clone(),
            github,
            prober,
            sites: self.sites.clone(),
            store: self.store.clone(),
            clock: self.clock.clone(),
            settings,
        }
    }

    pub fn selfservice_settings() -> SelfServiceSettings {
        SelfServiceSettings {
            quotas: Default::default(),
            admins: vec![ephemera_domain::developer::Admin::parse(ADMIN).unwrap()],
            expiry: Default::default(),
            max_ttl: chrono::Duration::hours(168),
            max_preserve: chrono::Duration::days(30),
            region: "us-east-1".into(),
            bucket: BUCKET.into(),
            blueprint_policy: Default::default(),
            routes: Default::default(),
        }
    }

    pub fn selfservice_with(&self, settings: SelfServiceSettings) -> SelfService {
        let (registry, bus, sites, clock) =
            (self.registry.clone(), self.bus.clone(), self.sites.clone(), self.clock.clone());
        SelfService { registry, ledger: self.registry.clone(), bus, sites, store: self.store.clone(), clock, settings }
    }

    /// Delivers a pull request fixture, signed, to a fresh intake.
    pub async fn deliver(&self, event: &str, id: &str, body: &[u8]) -> Result<Reply, IntakeError> {
        deliver(&self.intake(), event, id, body).await
    }

    /// acme/todo-app#7 opened, and its stack created: READY at generation 1.
    pub async fn ready_pr(&self) -> Environment {
        self.deliver("pull_request", "d-opened", fixtures::OPENED).await.unwrap();
        let outcome = self.provisioner().reconcile(&name(PR)).await.unwrap();
        assert_eq!(outcome, ephemera_app::provisioner::Outcome::Settled(ephemera_domain::Status::Ready));
        self.env(PR)
    }
}

pub const ADMIN: &str = "arn:aws:iam::123456789012:user/platform-admin";
pub const KYLE: &str = "arn:aws:iam::123456789012:user/kyle";
pub const ALICE: &str = "arn:aws:sts::123456789012:assumed-role/Developer/alice";

pub async fn deliver(intake: &Intake, event: &str, id: &str, body: &[u8]) -> Result<Reply, IntakeError> {
    let signature = WebhookSecrets::new(SECRET, None).unwrap().sign(body);
    let d = Delivery { event: Some(event), id: Some(id), signature: Some(&signature), body, form_encoded: false };
    intake.handle(d).await
}
