//! A developer pushes their own template, or only a new GraphQL schema, to their environment:
//! checked against the blueprint policy first, kept in the platform bucket as the
//! environment's own template, then deployed as a new generation.

use ephemera_domain::developer::template_version;
use ephemera_domain::Desired;
use tracing::{info, instrument};

use super::{Caller, SelfService, SelfServiceError, View};
use ephemera_domain::{Status, TagSet};

use crate::provisioner::{find_blueprint, known_parameters, own_template_key, BlueprintError};
use crate::template::{check, render, with_schema, CheckError};

/// What a developer pushes.
#[derive(Debug, Clone)]
pub enum Push {
    /// A whole template, YAML or JSON.
    Template(String),
    /// A GraphQL schema for the current template's one `AWS::AppSync::GraphQLSchema`.
    Schema(String),
}

impl SelfService {
    /// Replaces the environment's template (or its schema) and updates its stack. A template
    /// the policy refuses changes nothing: not the kept template, not the stack.
    #[instrument(skip(self, push), fields(owner = %caller.owner()))]
    pub async fn push(&self, caller: &Caller, name: &str, push: Push) -> Result<View, SelfServiceError> {
        let env = self.own_dev(caller, name).await?;
        if env.status == Status::Deleted {
            return Err(SelfServiceError::Conflict(format!(
                "{name} is gone; make it again first: `ephemera env create`"
            )));
        }
        if env.desired != Desired::Up {
            return Err(SelfServiceError::Conflict(format!("{name} is being destroyed; push once it is made again")));
        }
        let body = match push {
            Push::Template(body) => body,
            Push::Schema(schema) => {
                let (key, current) =
                    find_blueprint(self.store.as_ref(), &self.settings.bucket, &env).await.map_err(|e| match e {
                        BlueprintError::Port(e) => SelfServiceError::Unavailable(e),
                        other => SelfServiceError::Conflict(other.to_string()),
                    })?;
                with_schema(&current, &schema)
                    .map_err(|e| SelfServiceError::BadRequest(format!("{e} (the current template is {key})")))?
            }
        };
        let (doc, _) = check(&body, &self.settings.blueprint_policy).map_err(|e| match e {
            CheckError::Refused(report) => {
                SelfServiceError::Refused(report.violations.iter().map(ToString::to_string).collect())
            }
            CheckError::Template(e) => SelfServiceError::BadRequest(e.to_string()),
        })?;
        // Rendered as the provisioner will (tags written in, log groups added), so a template
        // that would come out too large for CloudFormation is refused now, not failed later.
        let now = self.clock.now();
        let tags = TagSet::for_environment(&env, &TagSet::default());
        render(doc, &tags, &known_parameters(&env, &tags, now), None)
            .map_err(|e| SelfServiceError::BadRequest(format!("{e}; make the template smaller")))?;
        self.store.put_text(&self.settings.bucket, &own_template_key(&env.name), &body).await?;
        let mut change = self.change_from(&env, Desired::Up, env.expires_at, now);
        // A developer environment's commit is its template's version: a new one is a change
        // of the stack (its `ephemera:commit` tag), so the provisioner updates it.
        change.commit = Some(template_version(&body));
        let view = View::of(&self.apply(change).await?, now);
        info!(environment = %env.name, bytes = body.len(), "template pushed");
        Ok(view)
    }
}
