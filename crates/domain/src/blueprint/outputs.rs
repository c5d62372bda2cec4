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

/// A URL whose host comes from one of the stack's resources (or is a host the operator allows).
fn from_own_resource(alt: &[Part], policy: &Policy) -> bool {
    if matches!(alt, [Part::Own(_) | Part::OwnArn(_), ..]) {
        return true;
    }
    let Some(Part::Lit(first)) = alt.first() else { return false };
    let Some(rest) = first.strip_prefix("https://").or_else(|| first.strip_prefix("http://")) else {
        return false;
    };
    // The host runs to the first '/', ':' or end of the literal; a resource part inside it
    // (`https://${Api}.execute-api...`) makes it the stack's own.
    let literal_host_ends = rest.find(['/', ':', '?', '#']);
    match literal_host_ends {
        Some(end) => policy.literal_preview_hosts.contains(&rest[..end]),
        None if alt.len() > 1 => rest.is_empty() && matches!(alt[1], Part::Own(_) | Part::OwnArn(_)),
        None => policy.literal_preview_hosts.contains(rest),
    }
}
