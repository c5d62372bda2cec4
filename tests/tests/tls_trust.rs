//! The GitHub and probe clients verify the servers they talk to. They trust Mozilla's roots
//! compiled in (`ephemera_github::tls_config`), not the system's bundle: this shows that the
//! configuration still checks certificates. A local HTTPS server with a self-signed certificate
//! (`tests/fixtures/self-signed.pem`, for 127.0.0.1, test-only key) is refused by that
//! configuration and by the GitHub client, and accepted by a client told to trust it, which
//! shows the refusal is about trust and not about the server.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CERT: &[u8] = include_bytes!("../fixtures/self-signed.pem");
const KEY: &[u8] = include_bytes!("../fixtures/self-signed.key");

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// An HTTPS server on loopback answering every request with 200 and `{}`.
async fn https_server() -> String {
    let cert = CertificateDer::from_pem_slice(CERT).unwrap();
    let key = PrivateKeyDer::from_pem_slice(KEY).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A refused handshake ends here; that is the case under test.
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut buf = vec![0u8; 8192];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let body = "{}";
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    url
}

fn trusting_the_test_certificate() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(CERT).unwrap()).unwrap();
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

fn is_certificate_error(e: &reqwest::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if s.to_string().to_lowercase().contains("certificate") {
            return true;
        }
        source = s.source();
    }
    false
}

#[tokio::test]
async fn a_server_outside_the_trusted_roots_is_refused() {
    let url = https_server().await;

    let trusting = ephemera_probe::client(Duration::from_secs(5), trusting_the_test_certificate());
    let ok = trusting.get(&url).send().await.expect("a client trusting the test certificate connects");
    assert_eq!(ok.status(), 200);

    let platform = ephemera_probe::client(Duration::from_secs(5), ephemera_github::tls_config());
    let refused =
        platform.get(&url).send().await.expect_err("the platform's roots do not include a self-signed certificate");
    assert!(is_certificate_error(&refused), "refused for its certificate: {refused:?}");
}

#[tokio::test]
async fn the_github_client_verifies_the_server_certificate() {
    let url = https_server().await;
    let github =
        ephemera_github::Client::new(&url, "token").unwrap().with_retry(ephemera_github::client::RetryPolicy {
            attempts: 1,
            ..ephemera_github::client::RetryPolicy::GITHUB
        });
    let err = github.permission("octo", "app", "someone").await.expect_err("a self-signed server is not GitHub");
    assert!(matches!(err, ephemera_github::ClientError::Transport(_)), "a transport error: {err}");
    assert!(err.to_string().to_lowercase().contains("certificate"), "it names the certificate: {err}");
}
