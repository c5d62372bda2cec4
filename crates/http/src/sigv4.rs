//! SigV4 verification for local mode. In AWS, API Gateway's IAM authorization does this and
//! hands the caller's ARN to the function; locally the runner checks signatures itself against
//! identities read from a file (`EPHEMERA_LOCAL_IDENTITIES`: one line each, access key id,
//! secret access key, principal ARN).

use std::collections::HashMap;

use axum::http::{HeaderMap, Method, Uri};
use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// How far a request's `x-amz-date` may be from now.
pub const MAX_SKEW_SECONDS: i64 = 300;

#[derive(Debug, Clone)]
pub struct LocalIdentity {
    pub secret: String,
    pub arn: String,
}

#[derive(Debug, Clone, Default)]
pub struct LocalIdentities {
    by_key: HashMap<String, LocalIdentity>,
    pub region: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SigV4Error {
    #[error("the request is not signed (no AWS4-HMAC-SHA256 Authorization header)")]
    Unsigned,
    #[error("the Authorization header is malformed")]
    Malformed,
    #[error("unknown access key")]
    UnknownKey,
    #[error("the signature is for {0}, not this API")]
    WrongScope(String),
    #[error("the request is older or newer than 5 minutes (x-amz-date)")]
    Stale,
    #[error("the signature does not match")]
    Mismatch,
}

impl LocalIdentities {
    /// Parses the identities file: `ACCESS_KEY_ID SECRET_ACCESS_KEY PRINCIPAL_ARN` per line;
    /// `#` starts a comment.
    pub fn parse(text: &str, region: &str) -> Result<Self, String> {
        let mut by_key = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [key, secret, arn] = parts[..] else {
                return Err(format!("line {}: expected ACCESS_KEY_ID SECRET_ACCESS_KEY PRINCIPAL_ARN", i + 1));
            };
            by_key.insert(key.to_owned(), LocalIdentity { secret: secret.to_owned(), arn: arn.to_owned() });
        }
        Ok(Self { by_key, region: region.to_owned() })
    }

    /// The caller's principal ARN, if the request is signed by a known identity for
    /// `execute-api` in this region, within 5 minutes of `now`.
    pub fn verify(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<String, SigV4Error> {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).ok_or(SigV4Error::Unsigned)?;
        let (credential, signed_headers, signature) = authorization_parts(auth)?;
        let scope_parts: Vec<&str> = credential.split('/').collect();
        let [key, date, region, service, terminator] = scope_parts[..] else { return Err(SigV4Error::Malformed) };
        if terminator != "aws4_request" {
            return Err(SigV4Error::Malformed);
        }
        if service != "execute-api" || region != self.region {
            return Err(SigV4Error::WrongScope(format!("{service} in {region}")));
        }
        let identity = self.by_key.get(key).ok_or(SigV4Error::UnknownKey)?;
        let amz_date = headers.get("x-amz-date").and_then(|v| v.to_str().ok()).ok_or(SigV4Error::Malformed)?;
        let at =
            NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ").map_err(|_| SigV4Error::Malformed)?.and_utc();
        if (now - at).num_seconds().abs() > MAX_SKEW_SECONDS || !amz_date.starts_with(date) {
            return Err(SigV4Error::Stale);
        }
        let names: Vec<&str> = signed_headers.split(';').collect();
        if !names.contains(&"host") || !names.contains(&"x-amz-date") {
            return Err(SigV4Error::Malformed);
        }
        let canonical_headers = canonical_headers(&names, headers)?;
        let canonical = [
            method.as_str().to_owned(),
            canonical_path(uri.path()),
            canonical_query(uri.query().unwrap_or("")),
            canonical_headers,
            signed_headers.to_owned(),
            hex::encode(Sha256::digest(body)),
        ]
        .join("\n");
        let scope = format!("{date}/{region}/{service}/aws4_request");
        let to_sign =
            format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical.as_bytes())));
        let mut k = hmac(format!("AWS4{}", identity.secret).as_bytes(), date.as_bytes());
        for part in [region, service, "aws4_request"] {
            k = hmac(&k, part.as_bytes());
        }
        let expected = hex::encode(hmac(&k, to_sign.as_bytes()));
        if expected.as_bytes().ct_eq(signature.as_bytes()).into() {
            Ok(identity.arn.clone())
        } else {
            Err(SigV4Error::Mismatch)
        }
    }
}

/// `Credential`, `SignedHeaders` and `Signature` of an `Authorization` header.
fn authorization_parts(auth: &str) -> Result<(&str, &str, &str), SigV4Error> {
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256 ").ok_or(SigV4Error::Unsigned)?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',').map(str::trim) {
        match part.split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed_headers = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => return Err(SigV4Error::Malformed),
        }
    }
    match (credential, signed_headers, signature) {
        (Some(c), Some(h), Some(s)) => Ok((c, h, s)),
        _ => Err(SigV4Error::Malformed),
    }
}

/// The signed headers, canonicalized: `name:value[,value]` lines, whitespace folded.
fn canonical_headers(names: &[&str], headers: &HeaderMap) -> Result<String, SigV4Error> {
    let mut out = String::new();
    for name in names {
        let values: Vec<String> = headers
            .get_all(*name)
            .iter()
            .map(|v| v.to_str().map(|s| s.split_whitespace().collect::<Vec<_>>().join(" ")))
            .collect::<Result<_, _>>()
            .map_err(|_| SigV4Error::Malformed)?;
        if values.is_empty() {
            return Err(SigV4Error::Malformed);
        }
        out.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    Ok(out)
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any size");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Percent-encodes as SigV4 does: everything but unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Each segment encoded twice over its decoded form, as for every service but S3.
fn canonical_path(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.split('/')
        .map(|seg| {
            let decoded = percent_decode(seg);
            encode(&encode(&decoded))
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(&percent_decode(k)), encode(&percent_decode(v)))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            // On bytes: a `%` followed by a multi-byte character is not an escape.
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;

    use super::*;

    const ARN: &str = "arn:aws:iam::123456789012:user/alice";

    fn identities() -> LocalIdentities {
        LocalIdentities::parse(&format!("AKIDALICE alice-secret {ARN}\n# a comment\n"), "eu-west-1").unwrap()
    }

    /// A request signed by aws-sigv4, as the CLI and the AWS SDKs sign it.
    fn signed(
        method: &str,
        url: &str,
        body: &str,
        (key, secret): (&str, &str),
        (region, service): (&str, &str),
        at: SystemTime,
    ) -> (Method, Uri, HeaderMap) {
        let host = url.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap().to_owned();
        let mut request = http::Request::builder()
            .method(method)
            .uri(url)
            .header("host", host)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .unwrap();
        let identity = Credentials::new(key, secret, None, None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(service)
            .time(at)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let headers = request.headers().iter().map(|(k, v)| (k.as_str(), v.to_str().unwrap()));
        let signable = SignableRequest::new(method, url, headers, SignableBody::Bytes(body.as_bytes())).unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        instructions.apply_to_request_http1x(&mut request);
        let (parts, _) = request.into_parts();
        (parts.method, parts.uri, parts.headers)
    }

    const ALICE: (&str, &str) = ("AKIDALICE", "alice-secret");
    const API: (&str, &str) = ("eu-west-1", "execute-api");

    #[test]
    fn requests_signed_by_the_reference_signer_verify() {
        let now = SystemTime::now();
        let cases = [
            ("GET", "http://127.0.0.1:3000/v1/environments", ""),
            ("GET", "http://127.0.0.1:3000/v1/environments?status=READY&kind=dev&q=a%20b%2Fc", ""),
            ("POST", "http://localhost:3000/v1/environments", r#"{"name":"alice","ttl_hours":8}"#),
            ("POST", "http://localhost:3000/v1/environments/dev-alice/extend", r#"{"hours":4}"#),
            ("DELETE", "http://localhost:3000/v1/environments/dev-alice%20two", ""),
        ];
        for (method, url, body) in cases {
            let (m, uri, headers) = signed(method, url, body, ALICE, API, now);
            let who = identities().verify(&m, &uri, &headers, body.as_bytes(), now.into());
            assert_eq!(who.as_deref(), Ok(ARN), "{method} {url}");
        }
    }

    #[test]
    fn a_changed_body_path_or_query_does_not_verify() {
        let now = SystemTime::now();
        let body = r#"{"hours":4}"#;
        let url = "http://localhost:3000/v1/environments/dev-alice/extend?x=1";
        let (m, uri, headers) = signed("POST", url, body, ALICE, API, now);
        let ids = identities();
        assert_eq!(ids.verify(&m, &uri, &headers, body.as_bytes(), now.into()).as_deref(), Ok(ARN));
        assert_eq!(ids.verify(&m, &uri, &headers, br#"{"hours":400}"#, now.into()), Err(SigV4Error::Mismatch));
        let other: Uri = "http://localhost:3000/v1/environments/dev-bob/extend?x=1".parse().unwrap();
        assert_eq!(ids.verify(&m, &other, &headers, body.as_bytes(), now.into()), Err(SigV4Error::Mismatch));
        let query: Uri = "http://localhost:3000/v1/environments/dev-alice/extend?x=2".parse().unwrap();
        assert_eq!(ids.verify(&m, &query, &headers, body.as_bytes(), now.into()), Err(SigV4Error::Mismatch));
        assert_eq!(ids.verify(&Method::DELETE, &uri, &headers, body.as_bytes(), now.into()), Err(SigV4Error::Mismatch));
    }

    #[test]
    fn wrong_keys_scopes_and_times_are_refused_by_name() {
        let now = SystemTime::now();
        let url = "http://localhost:3000/v1/environments";
        let ids = identities();
        let check = |(m, uri, headers): (Method, Uri, HeaderMap), at: SystemTime| {
            ids.verify(&m, &uri, &headers, b"", at.into())
        };

        assert_eq!(check(signed("GET", url, "", ("AKIDALICE", "guessed"), API, now), now), Err(SigV4Error::Mismatch));
        assert_eq!(check(signed("GET", url, "", ("AKIDMALLORY", "x"), API, now), now), Err(SigV4Error::UnknownKey));
        assert_eq!(
            check(signed("GET", url, "", ALICE, ("eu-west-1", "lambda"), now), now),
            Err(SigV4Error::WrongScope("lambda in eu-west-1".into()))
        );
        assert_eq!(
            check(signed("GET", url, "", ALICE, ("us-east-1", "execute-api"), now), now),
            Err(SigV4Error::WrongScope("execute-api in us-east-1".into()))
        );
        let six_minutes = Duration::from_secs(360);
        assert_eq!(check(signed("GET", url, "", ALICE, API, now - six_minutes), now), Err(SigV4Error::Stale));
        assert_eq!(check(signed("GET", url, "", ALICE, API, now + six_minutes), now), Err(SigV4Error::Stale));
        let four_minutes = Duration::from_secs(240);
        assert_eq!(check(signed("GET", url, "", ALICE, API, now - four_minutes), now).as_deref(), Ok(ARN));

        let (m, uri, mut headers) = signed("GET", url, "", ALICE, API, now);
        headers.remove("authorization");
        assert_eq!(ids.verify(&m, &uri, &headers, b"", now.into()), Err(SigV4Error::Unsigned));
        let (m, uri, mut headers) = signed("GET", url, "", ALICE, API, now);
        headers.remove("x-amz-date");
        assert_eq!(ids.verify(&m, &uri, &headers, b"", now.into()), Err(SigV4Error::Malformed));
    }

    #[test]
    fn percent_decoding_leaves_what_is_not_an_escape() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%aé"), "%aé");
    }

    #[test]
    fn the_identities_file_names_its_bad_line() {
        let err = LocalIdentities::parse("AKID secret arn\nAKID2 only-two\n", "eu-west-1").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
    }
}
