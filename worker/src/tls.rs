//! TLS for the worker's HTTPS (its API on AWS is an `https://` execute-api URL): rustls
//! on ring, the process's one crypto provider, installed before the first client is built.
//! Roots are the platform's (Debian's `ca-certificates` in the worker image);
//! `SSL_CERT_FILE` names another bundle (a deployment's own CA, the tests' CA).

/// Installs ring as the process's rustls provider; later calls (and a provider some other
/// part of the process installed first) leave it as it is.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
