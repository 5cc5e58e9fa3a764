//! TLS for every HTTP client irctl builds: one crypto provider and one root set.
//!
//! reqwest is built without a crypto provider so that `ring` is used instead
//! of aws-lc-rs (which needs cmake and several minutes of C on a small
//! machine). Certificates are checked against the bundled Mozilla roots, as
//! before reqwest 0.13, merged with the system's trust store, so a host
//! without CA certificates still works and a corporate CA is honoured.

use std::sync::OnceLock;

/// A client builder with irctl's TLS setup; every `reqwest::Client` starts here.
pub fn client_builder() -> reqwest::ClientBuilder {
    // An error means a provider is already installed for the process, which
    // is all that is needed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().tls_certs_merge(bundled_roots().iter().cloned())
}

/// The bundled roots, parsed once per process.
fn bundled_roots() -> &'static [reqwest::Certificate] {
    static ROOTS: OnceLock<Vec<reqwest::Certificate>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .filter_map(|der| reqwest::Certificate::from_der(der).ok())
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_build_with_the_bundled_roots() {
        assert!(bundled_roots().len() > 100, "{}", bundled_roots().len());
        assert!(client_builder().build().is_ok());
        // A second client finds the provider already installed.
        assert!(client_builder().build().is_ok());
    }
}
