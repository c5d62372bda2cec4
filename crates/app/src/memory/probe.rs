//! Smoke checks and load tests in memory: the preview answers what the test set.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use ephemera_domain::perf::{LoadPlan, Sample, Scenario, SmokeCheck, SmokeResult};

use super::{lock, Faults};
use crate::ports::{PortError, Prober};

#[derive(Debug, Default)]
struct State {
    /// Status by path; a path not set answers what its check expects.
    answers: HashMap<String, u16>,
    /// Each request's latency (ms) in a load test; by default 20 requests of 50 ms.
    latencies: Option<Vec<f64>>,
    smoke_calls: Vec<String>,
    load_calls: Vec<String>,
    /// Each load test's scenario and whether it came with an API key.
    scenarios: Vec<(Scenario, Option<String>)>,
}

/// Operation names for [`Faults`]: `smoke`, `load`.
#[derive(Debug, Default)]
pub struct MemoryProber {
    state: Mutex<State>,
    pub faults: Faults,
}

impl MemoryProber {
    pub fn new() -> Self {
        Self::default()
    }

    /// `path` answers `status` from now on.
    pub fn answer(&self, path: &str, status: u16) {
        lock(&self.state).answers.insert(path.to_owned(), status);
    }

    /// A load test's requests take these times (ms) from now on.
    pub fn latencies(&self, millis: &[f64]) {
        lock(&self.state).latencies = Some(millis.to_vec());
    }

    /// The preview URLs smoke-checked, in order.
    pub fn smoke_calls(&self) -> Vec<String> {
        lock(&self.state).smoke_calls.clone()
    }

    /// The preview URLs load-tested, in order.
    pub fn load_calls(&self) -> Vec<String> {
        lock(&self.state).load_calls.clone()
    }

    /// Each load test's scenario, with the API key it was given.
    pub fn scenarios(&self) -> Vec<(Scenario, Option<String>)> {
        lock(&self.state).scenarios.clone()
    }
}

#[async_trait]
impl Prober for MemoryProber {
    async fn smoke(&self, preview_url: &str, checks: &[SmokeCheck]) -> Result<Vec<SmokeResult>, PortError> {
        self.faults.check("smoke")?;
        let mut state = lock(&self.state);
        state.smoke_calls.push(preview_url.to_owned());
        let answer = |c: &SmokeCheck| state.answers.get(&c.path).copied().unwrap_or(c.expect);
        Ok(checks
            .iter()
            .map(|c| SmokeResult { path: c.path.clone(), expect: c.expect, got: Some(answer(c)), error: None })
            .collect())
    }

    async fn load(
        &self,
        preview_url: &str,
        _plan: &LoadPlan,
        scenario: &Scenario,
        api_key: Option<&str>,
    ) -> Result<Vec<Sample>, PortError> {
        self.faults.check("load")?;
        // As the HTTP prober: a scenario that sends the key needs one.
        scenario.check_key(api_key).map_err(|m| crate::memory::permanent("load-test preview", &m))?;
        let mut state = lock(&self.state);
        state.load_calls.push(preview_url.to_owned());
        state.scenarios.push((scenario.clone(), api_key.map(str::to_owned)));
        let millis = state.latencies.clone().unwrap_or_else(|| vec![50.0; 20]);
        Ok(millis.into_iter().map(|millis| Sample { millis, failed: false }).collect())
    }
}
