//! Every kind of resource an environment can leave behind, made and listed directly through
//! each service's own API: to seed leftovers, and to check what is left without relying on the
//! platform's own finders (a kind they missed must not read as "nothing found").

use anyhow::Context;
use aws_config::SdkConfig;
use ephemera_domain::catalogue::{Kind, APPSYNC_LOG_PREFIX, LAMBDA_LOG_PREFIX};

/// A resource, by kind and the name it is known by (a log group by its whole name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Named {
    pub kind: Kind,
    pub name: String,
}

/// The SDK clients for every kind.
pub struct Services {
    appsync: aws_sdk_appsync::Client,
    cognito_idp: aws_sdk_cognitoidentityprovider::Client,
    cognito_identity: aws_sdk_cognitoidentity::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    iam: aws_sdk_iam::Client,
    lambda: aws_sdk_lambda::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    s3: aws_sdk_s3::Client,
    secrets: aws_sdk_secretsmanager::Client,
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
}

/// The kinds, each with the name `ephemera-<env>-<suffix>` takes for it.
pub const KINDS: [Kind; 12] = [
    Kind::Function,
    Kind::GraphQlApi,
    Kind::IdentityPool,
    Kind::UserPool,
    Kind::Topic,
    Kind::Queue,
    Kind::Secret,
    Kind::Table,
    Kind::Bucket,
    Kind::Role,
    Kind::ManagedPolicy,
    Kind::LogGroup,
];

fn tag_pairs(environment: Option<&str>) -> Vec<(String, String)> {
    environment
        .map(|e| vec![("ephemera:managed-by".into(), "ephemera".into()), ("ephemera:environment".into(), e.into())])
        .unwrap_or_default()
}

impl Services {
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            appsync: aws_sdk_appsync::Client::new(sdk),
            cognito_idp: aws_sdk_cognitoidentityprovider::Client::new(sdk),
            cognito_identity: aws_sdk_cognitoidentity::Client::new(sdk),
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            iam: aws_sdk_iam::Client::new(sdk),
            lambda: aws_sdk_lambda::Client::new(sdk),
            logs: aws_sdk_cloudwatchlogs::Client::new(sdk),
            s3: ephemera_aws::s3_client(sdk),
            secrets: aws_sdk_secretsmanager::Client::new(sdk),
            sns: aws_sdk_sns::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
        }
    }

    /// Makes one resource of `kind` named `name`, tagged as the platform tags it for
    /// `environment` (untagged if `None`), with the parts that go with it: a function's event
    /// source mapping and runtime log group, a role's inline and attached policies, a topic's
    /// subscription, an API's key, a pool's domain, a bucket's object versions.
    pub async fn make(&self, kind: Kind, name: &str, environment: Option<&str>) -> anyhow::Result<()> {
        let tags = tag_pairs(environment);
        let made = match kind {
            Kind::Function => self.make_function(name, &tags).await,
            Kind::GraphQlApi => self.make_api(name, &tags).await,
            Kind::IdentityPool => {
                let t = tags.iter().cloned().collect();
                let pool = self.cognito_identity.create_identity_pool().identity_pool_name(name);
                pool.allow_unauthenticated_identities(false).set_identity_pool_tags(Some(t)).send().await?;
                Ok(())
            }
            Kind::UserPool => {
                let t = tags.iter().cloned().collect();
                let pool =
                    self.cognito_idp.create_user_pool().pool_name(name).set_user_pool_tags(Some(t)).send().await?;
                let id = pool.user_pool.and_then(|p| p.id).context("no pool id")?;
                let domain = name.to_ascii_lowercase();
                self.cognito_idp.create_user_pool_domain().domain(domain).user_pool_id(id).send().await?;
                Ok(())
            }
            Kind::Topic => self.make_topic(name, &tags).await,
            Kind::Queue => {
                self.sqs.create_queue().queue_name(name).set_tags(Some(tags.iter().cloned().collect())).send().await?;
                Ok(())
            }
            Kind::Secret => {
                let t = tags.iter().map(|(k, v)| aws_sdk_secretsmanager::types::Tag::builder().key(k).value(v).build());
                self.secrets.create_secret().name(name).secret_string("s").set_tags(Some(t.collect())).send().await?;
                Ok(())
            }
            Kind::Table => self.make_table(name, &tags).await,
            Kind::Bucket => self.make_bucket(name, &tags).await,
            Kind::Role => self.make_role(name, &tags).await.map(drop),
            Kind::ManagedPolicy => {
                let policy = self.iam.create_policy().policy_name(name).policy_document(POLICY).send().await?;
                let arn = policy.policy.and_then(|p| p.arn).context("no policy ARN")?;
                self.iam
                    .create_policy_version()
                    .policy_arn(arn)
                    .policy_document(POLICY)
                    .set_as_default(true)
                    .send()
                    .await?;
                Ok(())
            }
            Kind::LogGroup => {
                let t = tags.iter().cloned().collect();
                self.logs.create_log_group().log_group_name(name).set_tags(Some(t)).send().await?;
                Ok(())
            }
        };
        made.with_context(|| format!("making {kind:?} {name}"))
    }

    async fn make_function(&self, name: &str, tags: &[(String, String)]) -> anyhow::Result<()> {
        let role = self.make_role(&format!("{name}-role"), tags).await?;
        // The smallest zip archive: an end-of-central-directory record.
        let zip = [b"PK\x05\x06".as_slice(), &[0u8; 18]].concat();
        let code = aws_sdk_lambda::types::FunctionCode::builder().zip_file(zip.into()).build();
        let function =
            self.lambda.create_function().function_name(name).runtime(aws_sdk_lambda::types::Runtime::Python312);
        let t = tags.iter().cloned().collect();
        function.role(role).handler("index.handler").code(code).set_tags(Some(t)).send().await?;
        let queue = self.sqs.create_queue().queue_name(format!("{name}-source")).send().await?;
        let url = queue.queue_url.context("no queue URL")?;
        let attrs = self.sqs.get_queue_attributes().queue_url(url).attribute_names("QueueArn".into()).send().await?;
        let arn = attrs.attributes.and_then(|a| a.get(&"QueueArn".into()).cloned()).context("no queue ARN")?;
        self.lambda.create_event_source_mapping().function_name(name).event_source_arn(arn).send().await?;
        // What Lambda makes on its own at the first invocation: untagged.
        self.logs.create_log_group().log_group_name(format!("{LAMBDA_LOG_PREFIX}{name}")).send().await?;
        Ok(())
    }

    async fn make_api(&self, name: &str, tags: &[(String, String)]) -> anyhow::Result<()> {
        let auth = aws_sdk_appsync::types::AuthenticationType::ApiKey;
        let t = tags.iter().cloned().collect();
        let api =
            self.appsync.create_graphql_api().name(name).authentication_type(auth).set_tags(Some(t)).send().await?;
        let id = api.graphql_api.and_then(|a| a.api_id).context("no API id")?;
        self.appsync.create_api_key().api_id(&id).send().await?;
        // Its log group, as a blueprint with logging makes it (the check adds it, tagged).
        let group = format!("{APPSYNC_LOG_PREFIX}{id}");
        self.logs
            .create_log_group()
            .log_group_name(group)
            .set_tags(Some(tags.iter().cloned().collect()))
            .send()
            .await?;
        Ok(())
    }

    /// How many GraphQL API log groups there are.
    pub async fn api_log_groups(&self) -> anyhow::Result<usize> {
        let listed = self.logs.describe_log_groups().log_group_name_prefix(APPSYNC_LOG_PREFIX).send().await?;
        Ok(listed.log_groups().len())
    }

    /// Whether the log group of the GraphQL API named `api` is there.
    pub async fn api_log_group_exists(&self, api: &str) -> anyhow::Result<bool> {
        let apis = self.appsync.list_graphql_apis().send().await?.graphql_apis.unwrap_or_default();
        let id = apis.into_iter().find(|a| a.name() == Some(api)).and_then(|a| a.api_id).context("no such API")?;
        let group = format!("{APPSYNC_LOG_PREFIX}{id}");
        let listed = self.logs.describe_log_groups().log_group_name_prefix(&group).send().await?;
        Ok(listed.log_groups().iter().any(|g| g.log_group_name() == Some(group.as_str())))
    }

    async fn make_topic(&self, name: &str, tags: &[(String, String)]) -> anyhow::Result<()> {
        let t = tags.iter().map(|(k, v)| aws_sdk_sns::types::Tag::builder().key(k).value(v).build());
        let topic = self.sns.create_topic().name(name).set_tags(Some(t.collect::<Result<_, _>>()?)).send().await?;
        let arn = topic.topic_arn.context("no topic ARN")?;
        self.sns.subscribe().topic_arn(arn).protocol("email").endpoint("dev@example.com").send().await?;
        Ok(())
    }

    async fn make_table(&self, name: &str, tags: &[(String, String)]) -> anyhow::Result<()> {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, Tag,
        };
        let t = tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build());
        self.dynamodb
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder().attribute_name("id").attribute_type(ScalarAttributeType::S).build()?,
            )
            .key_schema(KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build()?)
            .set_tags(Some(t.collect::<Result<_, _>>()?))
            .send()
            .await?;
        Ok(())
    }

    async fn make_bucket(&self, name: &str, tags: &[(String, String)]) -> anyhow::Result<()> {
        use aws_sdk_s3::types::{BucketVersioningStatus, Tag, Tagging, VersioningConfiguration};
        self.s3.create_bucket().bucket(name).send().await?;
        let versioning = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
        self.s3.put_bucket_versioning().bucket(name).versioning_configuration(versioning).send().await?;
        for body in ["one", "two"] {
            self.s3.put_object().bucket(name).key("uploads/a.txt").body(body.as_bytes().to_vec().into()).send().await?;
        }
        if !tags.is_empty() {
            let t = tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build());
            let tagging = Tagging::builder().set_tag_set(Some(t.collect::<Result<_, _>>()?)).build()?;
            self.s3.put_bucket_tagging().bucket(name).tagging(tagging).send().await?;
        }
        Ok(())
    }

    /// A role with an inline policy, an attached policy and an instance profile; its ARN.
    async fn make_role(&self, name: &str, tags: &[(String, String)]) -> anyhow::Result<String> {
        let t = tags.iter().map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build());
        let role = self
            .iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(TRUST)
            .set_tags(Some(t.collect::<Result<_, _>>()?))
            .send()
            .await?;
        self.iam.put_role_policy().role_name(name).policy_name("inline").policy_document(POLICY).send().await?;
        let attached =
            self.iam.create_policy().policy_name(format!("{name}-attached")).policy_document(POLICY).send().await?;
        let arn = attached.policy.and_then(|p| p.arn).context("no policy ARN")?;
        self.iam.attach_role_policy().role_name(name).policy_arn(arn).send().await?;
        self.iam.create_instance_profile().instance_profile_name(name).send().await?;
        self.iam.add_role_to_instance_profile().instance_profile_name(name).role_name(name).send().await?;
        role.role.map(|r| r.arn).context("no role")
    }
}

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const POLICY: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"logs:CreateLogStream","Resource":"*"}]}"#;

impl Services {
    /// Every resource of every kind whose name starts with `prefix` (log groups also under
    /// `/aws/lambda/`), listed through each service's own API. A listing that fails is an error.
    pub async fn named(&self, prefix: &str) -> anyhow::Result<Vec<Named>> {
        let mut out = Vec::new();
        let mut add = |kind: Kind, name: Option<String>| {
            let under = format!("{LAMBDA_LOG_PREFIX}{prefix}");
            if let Some(name) = name.filter(|n| n.starts_with(prefix) || n.starts_with(&under)) {
                out.push(Named { kind, name });
            }
        };
        let mut pages = self.lambda.list_functions().into_paginator().send();
        while let Some(page) = pages.next().await {
            page?.functions.unwrap_or_default().into_iter().for_each(|f| add(Kind::Function, f.function_name));
        }
        let mut pages = self.appsync.list_graphql_apis().into_paginator().send();
        while let Some(page) = pages.next().await {
            page?.graphql_apis.unwrap_or_default().into_iter().for_each(|a| add(Kind::GraphQlApi, a.name));
        }
        let mut pages = self.cognito_identity.list_identity_pools().max_results(60).into_paginator().send();
        while let Some(page) = pages.next().await {
            let pools = page?.identity_pools.unwrap_or_default();
            pools.into_iter().for_each(|p| add(Kind::IdentityPool, p.identity_pool_name));
        }
        let mut pages = self.cognito_idp.list_user_pools().max_results(60).into_paginator().send();
        while let Some(page) = pages.next().await {
            page?.user_pools.unwrap_or_default().into_iter().for_each(|p| add(Kind::UserPool, p.name));
        }
        let mut pages = self.sns.list_topics().into_paginator().send();
        while let Some(page) = pages.next().await {
            for t in page?.topics.unwrap_or_default() {
                add(Kind::Topic, t.topic_arn.and_then(|a| a.rsplit(':').next().map(str::to_owned)));
            }
        }
        let mut pages = self.sqs.list_queues().into_paginator().send();
        while let Some(page) = pages.next().await {
            for url in page?.queue_urls.unwrap_or_default() {
                add(Kind::Queue, url.rsplit('/').next().map(str::to_owned));
            }
        }
        let mut pages = self.secrets.list_secrets().into_paginator().send();
        while let Some(page) = pages.next().await {
            page?.secret_list.unwrap_or_default().into_iter().for_each(|s| add(Kind::Secret, s.name));
        }
        let mut pages = self.dynamodb.list_tables().into_paginator().send();
        while let Some(page) = pages.next().await {
            page?.table_names.unwrap_or_default().into_iter().for_each(|t| add(Kind::Table, Some(t)));
        }
        let mut pages = self.s3.list_buckets().into_paginator().send();
        while let Some(page) = pages.next().await {
            page?.buckets.unwrap_or_default().into_iter().for_each(|b| add(Kind::Bucket, b.name));
        }
        let mut pages = self.iam.list_roles().into_paginator().send();
        while let Some(page) = pages.next().await {
            page?.roles.into_iter().for_each(|r| add(Kind::Role, Some(r.role_name)));
        }
        let local = aws_sdk_iam::types::PolicyScopeType::Local;
        let mut pages = self.iam.list_policies().scope(local).into_paginator().send();
        while let Some(page) = pages.next().await {
            page?.policies.unwrap_or_default().into_iter().for_each(|p| add(Kind::ManagedPolicy, p.policy_name));
        }
        let mut pages = self.logs.describe_log_groups().into_paginator().send();
        while let Some(page) = pages.next().await {
            page?.log_groups.unwrap_or_default().into_iter().for_each(|g| add(Kind::LogGroup, g.log_group_name));
        }
        Ok(out)
    }

    /// Whether a resource of `kind` named `name` exists.
    pub async fn exists(&self, kind: Kind, name: &str) -> anyhow::Result<bool> {
        Ok(self.named(name).await?.iter().any(|n| n.kind == kind && n.name == name))
    }

    /// Event source mappings of the function `name` (deleting a function leaves them behind).
    pub async fn mappings(&self, function: &str) -> anyhow::Result<usize> {
        let arn_end = format!(":function:{function}");
        let mut count = 0;
        let mut pages = self.lambda.list_event_source_mappings().into_paginator().send();
        while let Some(page) = pages.next().await {
            let mappings = page?.event_source_mappings.unwrap_or_default();
            count +=
                mappings.iter().filter(|m| m.function_arn.as_deref().is_some_and(|a| a.ends_with(&arn_end))).count();
        }
        Ok(count)
    }

    /// Subscriptions of topics named `topic`.
    pub async fn subscriptions(&self, topic: &str) -> anyhow::Result<usize> {
        let arn_end = format!(":{topic}");
        let mut count = 0;
        let mut pages = self.sns.list_subscriptions().into_paginator().send();
        while let Some(page) = pages.next().await {
            let all = page?.subscriptions.unwrap_or_default();
            count += all.iter().filter(|s| s.topic_arn.as_deref().is_some_and(|a| a.ends_with(&arn_end))).count();
        }
        Ok(count)
    }
}
