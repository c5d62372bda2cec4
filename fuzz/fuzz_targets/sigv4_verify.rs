//! SigV4 verification of self-service requests: any method, path, headers and body. Never
//! panics, and never accepts a request it did not see signed with a known secret.
#![no_main]

use ephemera_http::sigv4::LocalIdentities;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let method = lines.next().and_then(|m| Method::from_bytes(m.as_bytes()).ok()).unwrap_or(Method::GET);
    let uri: Uri = lines.next().and_then(|u| u.parse().ok()).unwrap_or_else(|| Uri::from_static("/v1/environments"));
    let mut headers = HeaderMap::new();
    let mut body = String::new();
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.trim().as_bytes()), HeaderValue::from_str(v.trim())) {
                headers.append(k, v);
            }
        }
    }
    for line in lines {
        body.push_str(line);
    }
    let ids = LocalIdentities::parse("AKIAFUZZ fuzz-secret arn:aws:iam::123456789012:user/fuzz\n", "us-east-1").unwrap();
    let now = chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap();
    // The fuzzer cannot know the secret: an HMAC it did not compute is never accepted, except
    // by finding a SHA-256 collision.
    assert!(ids.verify(&method, &uri, &headers, body.as_bytes(), now).is_err());
});
