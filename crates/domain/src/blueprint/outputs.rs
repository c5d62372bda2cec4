//! Outputs the platform acts on: the preview URL it posts and probes, the API it mints keys on,
//! the tables it seeds.

use serde_json::{Map, Value as Json};

use super::expr::{show, target, Part, Scope, Target};
use super::{Policy, Report, Rule};

/// Outputs naming the URL reviewers open (and the load test targets).
const URLS: &[&str] = &["PreviewUrl", "GraphQLUrl"];
/// Outputs naming a resource the platform writes to or mints keys on.
fn names_a_resource(name: &str) -> bool {
    matches!(name, "GraphQLApiArn" | "GraphQLApiId" | "StorageBucketName") || name.ends_with("TableName")
}

pub(super) fn check(outputs: &Map<String, Json>, scope: &Scope, policy: &Policy, report: &mut Report) {
    for (name, output) in outputs {
        if let Some(export) = output.get("Export").and_then(|e| e.get("Name")) {
            let ours = scope.alternatives(export).iter().all(|alt| matches!(target(alt), Target::Namespaced));
            if !ours {
                report.refuse(
                    name,
                    "Output",
                    Rule::PhysicalName,
                    "an export's Name must start with the stack's name: !Sub \"${AWS::StackName}-<name>\"",
                );
            }
        }
        let Some(value) = output.get("Value") else { continue };
        for alt in scope.alternatives(value) {
            if URLS.contains(&name.as_str()) {
                if !from_own_resource(&alt, policy) {
                    report.refuse(
                        name,
                        "Output",
                        Rule::PreviewUrl,
                        format!("{} must come from a resource of this stack (!GetAtt <Api>.GraphQLUrl, !GetAtt <FunctionUrl>.FunctionUrl, or !Sub \"https://${{<Distribution>.DomainName}}/\"), never a literal host", show(&alt)),
                    );
                    break;
                }
            } else if names_a_resource(name) && !matches!(target(&alt), Target::Own(_) | Target::Namespaced) {
                report.refuse(
                    name,
                    "Output",
                    Rule::Output,
                    format!("{} is not a resource of this stack, and the platform writes to what this output names: use !Ref or !GetAtt of a resource in this template", show(&alt)),
                );
                break;
            }
        }
    }
}

/// Domains a preview's host may end in after the stack's own part: AWS's endpoints.
const AWS_DOMAINS: &[&str] = &[".amazonaws.com", ".amazonaws.com.cn", ".on.aws", ".cloudfront.net", ".amplifyapp.com"];

/// A URL whose host is one of the stack's resources (a whole `GetAtt` URL, or its own part
/// followed by an AWS domain), or a host the operator allows.
fn from_own_resource(alt: &[Part], policy: &Policy) -> bool {
    if matches!(alt, [Part::Own(_) | Part::OwnArn(_), ..]) {
        return true;
    }
    let Some(Part::Lit(first)) = alt.first() else { return false };
    let Some(rest) = first.strip_prefix("https://").or_else(|| first.strip_prefix("http://")) else {
        return false;
    };
    if !rest.is_empty() {
        // A literal host: only one the operator lists.
        let host = &rest[..rest.find(['/', ':', '?', '#']).unwrap_or(rest.len())];
        return !host.contains('@') && policy.literal_preview_hosts.contains(host);
    }
    // `https://${Api.GraphQLDns}/...` or `https://${Api.ApiId}.appsync-api.${AWS::Region}.amazonaws.com/...`
    if !matches!(alt.get(1), Some(Part::Own(_))) {
        return false;
    }
    let mut host = String::new();
    for part in &alt[2..] {
        match part {
            Part::Lit(s) => match s.find(['/', ':', '?', '#']) {
                Some(end) => {
                    host.push_str(&s[..end]);
                    break;
                }
                None => host.push_str(s),
            },
            Part::Pseudo("AWS::Region") => host.push_str("region"),
            Part::Pseudo("AWS::URLSuffix") => host.push_str("amazonaws.com"),
            _ => return false,
        }
    }
    !host.contains('@') && (host.is_empty() || AWS_DOMAINS.iter().any(|d| host.ends_with(d)))
}
