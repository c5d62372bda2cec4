//! The AWS clients of one process, from one `SdkConfig`. Each is built the first time something
//! asks for it, so a function builds only the clients its services use (and the operations of
//! the others are not linked into its binary).

use std::sync::{Arc, OnceLock};

use aws_config::SdkConfig;

/// Shared by clones: a client built through one clone is the one every clone gets.
#[derive(Clone, Debug)]
pub struct Clients {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    sdk: SdkConfig,
    appsync: OnceLock<aws_sdk_appsync::Client>,
    cloudformation: OnceLock<aws_sdk_cloudformation::Client>,
    dynamodb: OnceLock<aws_sdk_dynamodb::Client>,
    eventbridge: OnceLock<aws_sdk_eventbridge::Client>,
    s3: OnceLock<aws_sdk_s3::Client>,
    secretsmanager: OnceLock<aws_sdk_secretsmanager::Client>,
    sqs: OnceLock<aws_sdk_sqs::Client>,
    tagging: OnceLock<aws_sdk_resourcegroupstagging::Client>,
}

impl Clients {
    /// Builds no client yet.
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                sdk: sdk.clone(),
                appsync: OnceLock::new(),
                cloudformation: OnceLock::new(),
                dynamodb: OnceLock::new(),
                eventbridge: OnceLock::new(),
                s3: OnceLock::new(),
                secretsmanager: OnceLock::new(),
                sqs: OnceLock::new(),
                tagging: OnceLock::new(),
            }),
        }
    }

    /// For a Lambda function: AWS's own endpoints, trusting only Amazon's roots
    /// ([`ephemera_aws::lambda_sdk_config`]).
    pub async fn for_lambda() -> Self {
        Self::new(&ephemera_aws::lambda_sdk_config().await)
    }

    /// The configuration the clients are built from (for a client this process does not use).
    pub fn sdk(&self) -> &SdkConfig {
        &self.inner.sdk
    }

    pub fn appsync(&self) -> &aws_sdk_appsync::Client {
        self.inner.appsync.get_or_init(|| aws_sdk_appsync::Client::new(&self.inner.sdk))
    }

    pub fn cloudformation(&self) -> &aws_sdk_cloudformation::Client {
        self.inner.cloudformation.get_or_init(|| aws_sdk_cloudformation::Client::new(&self.inner.sdk))
    }

    pub fn dynamodb(&self) -> &aws_sdk_dynamodb::Client {
        self.inner.dynamodb.get_or_init(|| aws_sdk_dynamodb::Client::new(&self.inner.sdk))
    }

    pub fn eventbridge(&self) -> &aws_sdk_eventbridge::Client {
        self.inner.eventbridge.get_or_init(|| aws_sdk_eventbridge::Client::new(&self.inner.sdk))
    }

    pub fn s3(&self) -> &aws_sdk_s3::Client {
        self.inner.s3.get_or_init(|| ephemera_aws::s3_client(&self.inner.sdk))
    }

    pub fn secretsmanager(&self) -> &aws_sdk_secretsmanager::Client {
        self.inner.secretsmanager.get_or_init(|| aws_sdk_secretsmanager::Client::new(&self.inner.sdk))
    }

    pub fn sqs(&self) -> &aws_sdk_sqs::Client {
        self.inner.sqs.get_or_init(|| aws_sdk_sqs::Client::new(&self.inner.sdk))
    }

    /// The Resource Groups Tagging API.
    pub fn tagging(&self) -> &aws_sdk_resourcegroupstagging::Client {
        self.inner.tagging.get_or_init(|| aws_sdk_resourcegroupstagging::Client::new(&self.inner.sdk))
    }

    /// The clients creating the platform's own resources takes (local runner and tests).
    pub fn bootstrap(&self) -> ephemera_aws::bootstrap::Bootstrap {
        ephemera_aws::bootstrap::Bootstrap {
            dynamodb: self.dynamodb().clone(),
            s3: self.s3().clone(),
            eventbridge: self.eventbridge().clone(),
            sqs: self.sqs().clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn clients_are_built_on_first_use_and_shared_by_clones() {
        let clients = Clients::new(&ephemera_aws::emulator_config("http://127.0.0.1:9", "us-east-1").await);
        assert!(clients.inner.dynamodb.get().is_none() && clients.inner.s3.get().is_none());
        let clone = clients.clone();
        clone.dynamodb();
        assert!(clients.inner.dynamodb.get().is_some());
        assert!(clients.inner.s3.get().is_none() && clients.inner.secretsmanager.get().is_none());
    }
}
