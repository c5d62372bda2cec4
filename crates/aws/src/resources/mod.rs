//! Resources outside CloudFormation: finding what may be an environment's (the Tagging API,
//! and each kind's own listing where it does not reach), and deleting one completely, as the
//! resource catalogue ([`ephemera_domain::catalogue`]) says.

use aws_config::SdkConfig;

mod cleaner;
mod finder;
mod iam;

/// The clients the finders and the deletes use, all from one configuration.
#[derive(Debug, Clone)]
pub struct AwsResources {
    tagging: aws_sdk_resourcegroupstagging::Client,
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
    sts: aws_sdk_sts::Client,
    region: String,
    account: tokio::sync::OnceCell<String>,
}

impl AwsResources {
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            tagging: aws_sdk_resourcegroupstagging::Client::new(sdk),
            appsync: aws_sdk_appsync::Client::new(sdk),
            cognito_idp: aws_sdk_cognitoidentityprovider::Client::new(sdk),
            cognito_identity: aws_sdk_cognitoidentity::Client::new(sdk),
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            iam: aws_sdk_iam::Client::new(sdk),
            lambda: aws_sdk_lambda::Client::new(sdk),
            logs: aws_sdk_cloudwatchlogs::Client::new(sdk),
            s3: crate::s3_client(sdk),
            secrets: aws_sdk_secretsmanager::Client::new(sdk),
            sns: aws_sdk_sns::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            sts: aws_sdk_sts::Client::new(sdk),
            region: sdk.region().map(|r| r.to_string()).unwrap_or_default(),
            account: tokio::sync::OnceCell::new(),
        }
    }
}
