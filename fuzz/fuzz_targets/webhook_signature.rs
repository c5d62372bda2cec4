//! Webhook signature checking: any header and body. Never panics; accepts exactly the
//! signature made with the secret.
#![no_main]

use ephemera_github_webhook::signature::sign;
use ephemera_github_webhook::WebhookSecrets;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let secrets = WebhookSecrets::new("fuzz-secret", Some(b"fuzz-previous".to_vec())).unwrap();
    let header = String::from_utf8_lossy(header);
    let good = sign(b"fuzz-secret", body);
    let previous = sign(b"fuzz-previous", body);
    let result = secrets.verify(body, Some(&header));
    // The same signature may be written with surrounding space or in upper-case hex; anything
    // else must be refused.
    let canonical = header.trim().strip_prefix("sha256=").map(str::to_ascii_lowercase);
    let ours = [&good, &previous].map(|s| s.strip_prefix("sha256=").unwrap().to_owned());
    if canonical.is_some_and(|c| ours.contains(&c)) {
        assert!(result.is_ok());
    } else {
        assert!(result.is_err(), "accepted a signature that is not ours: {header:?}");
    }
    assert!(secrets.verify(body, Some(&good)).is_ok());
    assert!(secrets.verify(body, None).is_err());
});
