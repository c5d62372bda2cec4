//! Reading variables: values trimmed, empty ones unset, every error naming the variable.

use super::ConfigError;

/// The environment as the sections read it.
pub(crate) struct Vars<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Vars<'a> {
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self { lookup }
    }

    /// The value, trimmed; `None` if unset or empty.
    pub fn get(&self, k: &str) -> Option<String> {
        (self.lookup)(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    pub fn text(&self, k: &'static str, default: &str) -> String {
        self.get(k).unwrap_or_else(|| default.to_owned())
    }

    /// Comma-separated values, each trimmed; empty ones dropped.
    pub fn list(&self, k: &str) -> Vec<String> {
        self.get(k)
            .map(|v| v.split(',').map(|x| x.trim().to_owned()).filter(|x| !x.is_empty()).collect())
            .unwrap_or_default()
    }

    /// A positive whole number.
    pub fn number(&self, k: &'static str, default: u64) -> Result<u64, ConfigError> {
        match self.get(k) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| invalid(k, format!("expected a positive whole number, got {v:?}"))),
        }
    }

    pub fn hours(&self, k: &'static str, default: u64) -> Result<chrono::Duration, ConfigError> {
        Ok(chrono::Duration::hours(self.number(k, default)? as i64))
    }

    pub fn minutes(&self, k: &'static str, default: u64) -> Result<chrono::Duration, ConfigError> {
        Ok(chrono::Duration::minutes(self.number(k, default)? as i64))
    }

    /// A positive whole number no greater than `max`.
    pub fn bounded(&self, k: &'static str, default: u64, max: u32) -> Result<u32, ConfigError> {
        let v = self.number(k, default)?;
        u32::try_from(v)
            .ok()
            .filter(|v| *v <= max)
            .ok_or_else(|| invalid(k, format!("{v} is above the limit of {max}")))
    }

    /// A finite number that `accept` takes; else `expected` names what was wanted.
    pub fn real(
        &self,
        k: &'static str,
        expected: &str,
        accept: impl Fn(f64) -> bool,
    ) -> Result<Option<f64>, ConfigError> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => Ok(Some(
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && accept(*x))
                    .ok_or_else(|| invalid(k, format!("expected {expected}, got {v:?}")))?,
            )),
        }
    }

    /// A percentage, as a fraction (`20` is 0.2).
    pub fn percent(&self, k: &'static str, default: f64) -> Result<f64, ConfigError> {
        Ok(self.real(k, "a percentage", |x| x >= 0.0)?.unwrap_or(default) / 100.0)
    }

    /// `true`/`1`/`yes` or `false`/`0`/`no`.
    pub fn flag(&self, k: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(k).as_deref() {
            None => Ok(default),
            Some("false" | "0" | "no") => Ok(false),
            Some("true" | "1" | "yes") => Ok(true),
            Some(v) => Err(invalid(k, format!("expected true or false, got {v:?}"))),
        }
    }

    /// The value (or `default`) through `parse`, whose error becomes the message.
    pub fn parsed<T, E: ToString>(
        &self,
        k: &'static str,
        default: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, ConfigError> {
        parse(&self.text(k, default)).map_err(|e| invalid(k, e.to_string()))
    }
}

pub(crate) fn invalid(var: &'static str, message: String) -> ConfigError {
    ConfigError::Invalid { var, message }
}
