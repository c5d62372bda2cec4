//! The places environments live, in memory: the platform's own account and a separate set of
//! fakes per deploy account, made on first use. An account can be made unreachable, as one
//! whose role does not trust the platform is.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ephemera_domain::placement::Target;
use ephemera_domain::EnvironmentName;

use super::{lock, MemoryApiKeys, MemoryResources, MemorySeeder, MemoryStacks, MemoryStore};
use crate::ports::{PortError, Site, Sites};

/// One account's fakes.
#[derive(Clone, Default)]
pub struct MemoryPlace {
    pub stacks: Arc<MemoryStacks>,
    pub store: Arc<MemoryStore>,
    pub seeder: Arc<MemorySeeder>,
    pub resources: Arc<MemoryResources>,
    pub keys: Arc<MemoryApiKeys>,
}

impl MemoryPlace {
    /// Empty fakes.
    pub fn new() -> Self {
        Self {
            stacks: Arc::new(MemoryStacks::new()),
            store: Arc::new(MemoryStore::new()),
            seeder: Arc::new(MemorySeeder::new()),
            resources: Arc::new(MemoryResources::new()),
            keys: Arc::new(MemoryApiKeys::new()),
        }
    }

    pub fn site(&self) -> Site {
        Site {
            stacks: self.stacks.clone(),
            store: self.store.clone(),
            seeder: self.seeder.clone(),
            inventory: self.resources.clone(),
            cleaner: self.resources.clone(),
            keys: self.keys.clone(),
        }
    }
}

type Make = Box<dyn Fn() -> MemoryPlace + Send + Sync>;

pub struct MemorySites {
    home: Site,
    make: Make,
    accounts: Mutex<BTreeMap<String, MemoryPlace>>,
    unreachable: Mutex<BTreeSet<String>>,
}

impl MemorySites {
    /// `home` for the platform's own account; `make` builds each deploy account's fakes.
    pub fn new(home: Site, make: impl Fn() -> MemoryPlace + Send + Sync + 'static) -> Self {
        Self { home, make: Box::new(make), accounts: Mutex::default(), unreachable: Mutex::default() }
    }

    /// The fakes of `account` (made now if it was never reached).
    pub fn account(&self, account: &str) -> MemoryPlace {
        lock(&self.accounts).entry(account.to_owned()).or_insert_with(|| (self.make)()).clone()
    }

    /// From now on, assuming `account`'s role is refused.
    pub fn refuse(&self, account: &str) {
        lock(&self.unreachable).insert(account.to_owned());
    }

    fn at(&self, target: Option<&Target>) -> Result<Site, PortError> {
        let Some(t) = target else { return Ok(self.home.clone()) };
        if lock(&self.unreachable).contains(&t.account) {
            return Err(PortError::Permanent {
                operation: "assume the deploy role",
                message: format!("AccessDenied: not authorized to perform sts:AssumeRole on {}", t.role_arn),
            });
        }
        Ok(self.account(&t.account).site())
    }
}

#[async_trait]
impl Sites for MemorySites {
    async fn for_environment(&self, target: Option<&Target>, _: &EnvironmentName) -> Result<Site, PortError> {
        self.at(target)
    }

    async fn for_sweep(&self, target: Option<&Target>) -> Result<Site, PortError> {
        self.at(target)
    }

    async fn own_account(&self) -> Result<String, PortError> {
        Ok(super::stacks::ACCOUNT.to_owned())
    }
}
