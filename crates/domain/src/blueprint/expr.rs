//! What a template value can evaluate to, without evaluating it: each intrinsic function is
//! flattened into the pieces it joins (literal text, the stack's name, one of the template's own
//! resources, a pseudo parameter, or something the checker cannot see through).

use serde_json::{Map, Value as Json};

/// One piece of a string a value evaluates to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Lit(String),
    /// `${AWS::StackName}`.
    Stack,
    /// A `Ref` or `GetAtt` of a resource in the template (its logical id).
    Own(String),
    /// A `GetAtt` of one of the template's resources' ARNs (`Arn`, `...Arn`).
    OwnArn(String),
    /// `AWS::Region`, `AWS::AccountId`, `AWS::Partition`, `AWS::URLSuffix`.
    Pseudo(&'static str),
    /// A template parameter: its value is the author's (a default) unless the platform fills it.
    Param(String),
    /// An import, a mapping, a list function: the checker cannot tell what it names.
    Unknown(String),
}

/// Types whose `Ref` is an ARN, URL or id AWS makes, or a name the policy checks.
const REF_IS_GENERATED: &[&str] = &[
    "AWS::DynamoDB::Table",
    "AWS::S3::Bucket",
    "AWS::IAM::Role",
    "AWS::IAM::ManagedPolicy",
    "AWS::AppSync::GraphQLApi",
    "AWS::AppSync::ApiKey",
    "AWS::AppSync::DataSource",
    "AWS::AppSync::Resolver",
    "AWS::AppSync::FunctionConfiguration",
    "AWS::Lambda::Function",
    "AWS::Logs::LogGroup",
    "AWS::SQS::Queue",
    "AWS::SNS::Topic",
    "AWS::SNS::Subscription",
    "AWS::SecretsManager::Secret",
    "AWS::Cognito::UserPool",
    "AWS::Cognito::UserPoolClient",
    "AWS::Cognito::IdentityPool",
];

/// Beyond this many alternatives (`Fn::If` inside `Fn::Join`...) a value counts as unknown.
const MAX_ALTERNATIVES: usize = 32;
/// Nesting deeper than this counts as unknown (and keeps hostile input from overflowing the stack).
const MAX_DEPTH: usize = 24;

/// The template's names: its resources (logical id to type) and parameters.
pub struct Scope<'a> {
    pub resources: &'a Map<String, Json>,
    pub parameters: Option<&'a Map<String, Json>>,
}

impl Scope<'_> {
    pub fn type_of(&self, logical: &str) -> Option<&str> {
        self.resources.get(logical)?.get("Type")?.as_str()
    }

    fn name(&self, name: &str) -> Part {
        match name {
            "AWS::StackName" => Part::Stack,
            "AWS::Region" => Part::Pseudo("AWS::Region"),
            "AWS::AccountId" => Part::Pseudo("AWS::AccountId"),
            "AWS::Partition" => Part::Pseudo("AWS::Partition"),
            "AWS::URLSuffix" => Part::Pseudo("AWS::URLSuffix"),
            _ if self.type_of(name).is_some_and(|ty| REF_IS_GENERATED.contains(&ty)) => Part::Own(name.to_owned()),
            _ if self.resources.contains_key(name) => Part::Unknown(format!(
                "Ref {name}, whose value for a {} the checker does not know to be the stack's",
                self.type_of(name).unwrap_or("resource without a type")
            )),
            _ if self.parameters.is_some_and(|p| p.contains_key(name)) => Part::Param(name.to_owned()),
            _ => Part::Unknown(format!("{name}, which is neither a resource nor a parameter of this template")),
        }
    }

    /// Whether `v` is, whatever it evaluates to, one of the template's resources of type `ty`.
    pub fn is_own(&self, v: &Json, ty: &str) -> bool {
        let alts = self.alternatives(v);
        !alts.is_empty() && alts.iter().all(|alt| matches!(target(alt), Target::Own(l) if self.type_of(&l) == Some(ty)))
    }

    /// Every string `v` may evaluate to, as pieces. `AWS::NoValue` gives no alternative at all.
    pub fn alternatives(&self, v: &Json) -> Vec<Vec<Part>> {
        self.walk(v, 0)
    }

    fn walk(&self, v: &Json, depth: usize) -> Vec<Vec<Part>> {
        if depth > MAX_DEPTH {
            return vec![vec![Part::Unknown("a value nested too deeply".into())]];
        }
        match v {
            Json::String(s) => vec![vec![Part::Lit(s.clone())]],
            Json::Number(n) => vec![vec![Part::Lit(n.to_string())]],
            Json::Bool(b) => vec![vec![Part::Lit(b.to_string())]],
            Json::Object(m) if m.len() == 1 => {
                let (f, arg) = m.iter().next().expect("one entry");
                self.function(f, arg, depth + 1)
            }
            _ => vec![vec![Part::Unknown("a list or map where one value was expected".into())]],
        }
    }

    fn function(&self, f: &str, arg: &Json, depth: usize) -> Vec<Vec<Part>> {
        match (f, arg) {
            ("Ref", Json::String(name)) if name == "AWS::NoValue" => vec![],
            ("Ref", Json::String(name)) => vec![vec![self.name(name)]],
            ("Fn::GetAtt", _) => vec![vec![self.get_att(arg)]],
            ("Fn::Sub", Json::String(s)) => self.sub(s, &Map::new(), depth),
            ("Fn::Sub", Json::Array(a)) if a.len() == 2 => match (&a[0], &a[1]) {
                (Json::String(s), Json::Object(vars)) => self.sub(s, vars, depth),
                _ => vec![vec![Part::Unknown("a Fn::Sub whose form the checker does not read".into())]],
            },
            ("Fn::Join", Json::Array(a)) if a.len() == 2 => match (&a[0], &a[1]) {
                (Json::String(sep), Json::Array(items)) => self.join(sep, items, depth),
                _ => vec![vec![Part::Unknown("a Fn::Join over a computed list".into())]],
            },
            ("Fn::If", Json::Array(a)) if a.len() == 3 => {
                let mut both = self.walk(&a[1], depth);
                both.extend(self.walk(&a[2], depth));
                cap(both)
            }
            ("Fn::Select", Json::Array(a)) if a.len() == 2 => match &a[1] {
                Json::Array(items) => cap(items.iter().flat_map(|i| self.walk(i, depth)).collect()),
                _ => vec![vec![Part::Unknown("a Fn::Select from a computed list".into())]],
            },
            ("Fn::ImportValue", _) => vec![vec![Part::Unknown("a value imported from another stack".into())]],
            ("Fn::FindInMap", _) => vec![vec![Part::Unknown("a value from Mappings".into())]],
            ("Fn::Transform", _) => vec![vec![Part::Unknown("a macro's output".into())]],
            _ => vec![vec![Part::Unknown("a value the checker cannot see through".into())]],
        }
    }

    fn get_att(&self, arg: &Json) -> Part {
        let (logical, attribute) = match arg {
            Json::Array(a) => (a.first().and_then(Json::as_str), a.get(1).and_then(Json::as_str)),
            Json::String(s) => s.split_once('.').map(|(l, a)| (Some(l), Some(a))).unwrap_or((None, None)),
            _ => (None, None),
        };
        match logical.map(str::to_owned) {
            Some(l) if self.resources.contains_key(&l) && !attribute.is_some_and(generated) => Part::Unknown(format!(
                "{l}.{}, an attribute whose value the template's author writes",
                attribute.unwrap_or("?")
            )),
            Some(l) if self.resources.contains_key(&l) && attribute.is_some_and(|a| a.ends_with("Arn")) => {
                Part::OwnArn(l)
            }
            Some(l) if self.resources.contains_key(&l) => Part::Own(l),
            _ => Part::Unknown(format!(
                "{}.{}, which is not a resource of this template",
                logical.unwrap_or("?"),
                attribute.unwrap_or("?")
            )),
        }
    }

    fn sub(&self, s: &str, vars: &Map<String, Json>, depth: usize) -> Vec<Vec<Part>> {
        let mut out: Vec<Vec<Part>> = vec![vec![]];
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            push_lit(&mut out, &rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                push_lit(&mut out, &rest[start..]);
                return out;
            };
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                push_lit(&mut out, &format!("${{{literal}}}"));
            } else if let Some(v) = vars.get(name) {
                out = product(out, self.walk(v, depth));
            } else if name.contains('.') {
                let part = self.get_att(&Json::String(name.to_owned()));
                out.iter_mut().for_each(|alt| alt.push(part.clone()));
            } else {
                let part = self.name(name);
                out.iter_mut().for_each(|alt| alt.push(part.clone()));
            }
            rest = &after[end + 1..];
        }
        push_lit(&mut out, rest);
        out
    }

    fn join(&self, sep: &str, items: &[Json], depth: usize) -> Vec<Vec<Part>> {
        let mut out: Vec<Vec<Part>> = vec![vec![]];
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                push_lit(&mut out, sep);
            }
            out = product(out, self.walk(item, depth));
        }
        out
    }
}

/// Attributes AWS makes (ARNs, ids, endpoints), or names the policy has checked: only these of a
/// template's own resources count as its own. A client's `Name`, say, is whatever the author wrote.
fn generated(attribute: &str) -> bool {
    ["Arn", "Id", "Url", "URL", "Dns"].iter().any(|end| attribute.ends_with(end))
        || matches!(
            attribute,
            "DomainName"
                | "RegionalDomainName"
                | "DualStackDomainName"
                | "ProviderName"
                | "ApiKey"
                | "QueueName"
                | "TopicName"
        )
}

fn push_lit(out: &mut [Vec<Part>], s: &str) {
    if s.is_empty() {
        return;
    }
    for alt in out.iter_mut() {
        match alt.last_mut() {
            Some(Part::Lit(prev)) => prev.push_str(s),
            _ => alt.push(Part::Lit(s.to_owned())),
        }
    }
}

fn product(prefixes: Vec<Vec<Part>>, suffixes: Vec<Vec<Part>>) -> Vec<Vec<Part>> {
    if prefixes.len() * suffixes.len().max(1) > MAX_ALTERNATIVES {
        return vec![vec![Part::Unknown("a value with too many alternatives".into())]];
    }
    if suffixes.is_empty() {
        return prefixes;
    }
    let mut out = Vec::with_capacity(prefixes.len() * suffixes.len());
    for p in &prefixes {
        for s in &suffixes {
            let mut alt = p.clone();
            for part in s {
                match (alt.last_mut(), part) {
                    (Some(Part::Lit(prev)), Part::Lit(next)) => prev.push_str(next),
                    _ => alt.push(part.clone()),
                }
            }
            out.push(alt);
        }
    }
    out
}

fn cap(alts: Vec<Vec<Part>>) -> Vec<Vec<Part>> {
    if alts.len() > MAX_ALTERNATIVES {
        vec![vec![Part::Unknown("a value with too many alternatives".into())]]
    } else {
        alts
    }
}

/// Where a name or ARN points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One of the template's own resources.
    Own(String),
    /// A name under `${AWS::StackName}`.
    Namespaced,
    /// `*`, or a wildcard before the stack's name.
    Wildcard,
    /// Anything else, with what it is.
    Outside(String),
}

/// Placeholders for what is not literal text, so a value can be read as one string.
const STACK: char = '\u{1}';
const OWN: char = '\u{2}';
const PSEUDO: char = '\u{3}';
const OTHER: char = '\u{4}';
const OWN_ARN: char = '\u{5}';

/// Log-group and similar names AWS services choose, before the part the environment names.
const SERVICE_PREFIXES: &[&str] = &["/aws/lambda/", "/aws/appsync/apis/", "/aws/vendedlogs/", "/aws/cognito/"];

/// Where one alternative of a name or ARN points.
pub fn target(parts: &[Part]) -> Target {
    if let [Part::Own(l) | Part::OwnArn(l), ..] = parts {
        return Target::Own(l.clone());
    }
    if let Some(Part::Param(p)) = parts.iter().find(|p| matches!(p, Part::Param(_))) {
        return Target::Outside(format!("parameter {p}, whose value the template's author chooses"));
    }
    if let Some(Part::Unknown(what)) = parts.iter().find(|p| matches!(p, Part::Unknown(_))) {
        return Target::Outside(what.clone());
    }
    let text = flatten(parts);
    let name = match text.strip_prefix("arn:") {
        Some(arn) => match arn_resource(arn) {
            Ok(resource) => resource,
            Err(why) => return Target::Outside(why),
        },
        None => strip_service_prefix(&text),
    };
    named(name, &text, parts)
}

fn named(name: &str, text: &str, parts: &[Part]) -> Target {
    let start = name.find([STACK, OWN, PSEUDO, OTHER, OWN_ARN, '*', '?']);
    let shown = || show(parts);
    match start.map(|i| (i, name[i..].chars().next().expect("found"))) {
        Some((0, STACK)) => {
            // The stack's name must end where a separator follows: `${AWS::StackName}x` or
            // `${AWS::StackName}*` would also name other environments' stacks.
            match name[STACK.len_utf8()..].chars().next() {
                None | Some('-' | '_' | '.' | '/' | ':') => Target::Namespaced,
                _ => Target::Outside(format!("{} (nothing may follow the stack's name but a separator)", shown())),
            }
        }
        Some((0, OWN)) => Target::Own(
            parts.iter().find_map(|p| if let Part::Own(l) = p { Some(l.clone()) } else { None }).unwrap_or_default(),
        ),
        Some((_, OWN_ARN)) => Target::Outside(format!("{} (an ARN inside an ARN)", shown())),
        Some((_, '*' | '?')) => Target::Wildcard,
        _ if text == "*" => Target::Wildcard,
        _ => Target::Outside(shown()),
    }
}

/// The resource part of `arn:<partition>:<service>:<region>:<account>:<resource>`, after its
/// type (`table/`, `role/`, `function:`...). Another account's ARN is outside.
fn arn_resource(arn: &str) -> Result<&str, String> {
    let fields: Vec<&str> = arn.splitn(5, ':').collect();
    let [_, service, _, account, resource] = fields.as_slice() else {
        return Err("an incomplete ARN".into());
    };
    // Buckets, queues and topics are named right after the account: no type to skip.
    let untyped = matches!(*service, "s3" | "sqs" | "sns");
    match *account {
        "" => {}
        a if a.chars().all(|c| c == PSEUDO) => {}
        "aws" => return Err("an AWS-managed resource".into()),
        a => return Err(format!("account {}", a.replace(OTHER, "?"))),
    }
    if untyped {
        return Ok(resource);
    }
    // Skip the resource type: `table/`, `role/`, `log-group:`, `apis/`...
    let typed = resource
        .find([':', '/'])
        .filter(|&i| resource[..i].chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .map(|i| &resource[i + 1..])
        .unwrap_or(resource);
    Ok(strip_service_prefix(typed))
}

fn strip_service_prefix(name: &str) -> &str {
    SERVICE_PREFIXES.iter().find_map(|p| name.strip_prefix(p)).unwrap_or(name)
}

fn flatten(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|p| match p {
            // Literal text can never pass for a placeholder.
            Part::Lit(s) => s.replace([STACK, OWN, PSEUDO, OTHER, OWN_ARN], "\u{fffd}"),
            Part::Stack => STACK.to_string(),
            Part::Own(_) => OWN.to_string(),
            Part::OwnArn(_) => OWN_ARN.to_string(),
            Part::Pseudo(_) => PSEUDO.to_string(),
            Part::Param(_) | Part::Unknown(_) => OTHER.to_string(),
        })
        .collect()
}

/// A value as the author wrote it, near enough: `arn:aws:iam::123456789012:role/prod`.
pub fn show(parts: &[Part]) -> String {
    let s: String = parts
        .iter()
        .map(|p| match p {
            Part::Lit(s) => s.clone(),
            Part::Stack => "${AWS::StackName}".into(),
            Part::Own(l) => format!("${{{l}}}"),
            Part::OwnArn(l) => format!("${{{l}.Arn}}"),
            Part::Pseudo(n) => format!("${{{n}}}"),
            Part::Param(n) => format!("${{{n}}}"),
            Part::Unknown(_) => "${?}".into(),
        })
        .collect();
    let mut shown: String = s.chars().take(120).collect();
    if shown.len() < s.len() {
        shown.push('…');
    }
    format!("\"{shown}\"")
}
