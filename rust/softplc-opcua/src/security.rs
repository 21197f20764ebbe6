//! Endpoints and the server's certificate.
//!
//! Without a certificate directory the server offers one endpoint, security policy
//! None with anonymous access, and only on a loopback address (the configuration
//! refuses anything else). With users it adds a Basic256Sha256 Sign&Encrypt endpoint
//! on which they log in with their password; on any other address that is the only
//! endpoint. The server's certificate and private key are created on first start in
//! the directory the user names (`own/cert.der`, `private/private.pem`), and clients'
//! certificates are trusted by moving them from `rejected/` to `trusted/` (or, while
//! commissioning, with `trust_client_certs`).
//!
//! async-opcua does its cryptography with the RustCrypto crates; its `rsa` dependency
//! carries advisory RUSTSEC-2023-0071 (the Marvin timing side channel: an attacker who
//! can time many RSA decryptions over the network may recover a plaintext, in theory
//! the key). See docs/opcua.md for what that means for a deployment.

use std::path::Path;

use opcua::crypto::{CertificateStore, X509Data};
use opcua::server::{ServerEndpoint, ANONYMOUS_USER_TOKEN_ID};
use opcua::types::ApplicationDescription;
use softplc_io::config::OpcuaConfig;

/// The endpoints of a configuration: `(id, endpoint)`.
pub fn endpoints(cfg: &OpcuaConfig) -> Vec<(String, ServerEndpoint)> {
    let path = cfg.endpoint.path.as_str();
    let mut out = Vec::new();
    if cfg.anonymous.is_some() && cfg.endpoint.is_loopback() {
        out.push((
            "none".to_string(),
            ServerEndpoint::new_none(path, &[ANONYMOUS_USER_TOKEN_ID.to_string()]),
        ));
    }
    if !cfg.users.is_empty() {
        let ids: Vec<String> = cfg.users.iter().map(|u| u.name.clone()).collect();
        out.push((
            "basic256sha256".to_string(),
            ServerEndpoint::new_basic256sha256_sign_encrypt(path, &ids),
        ));
    }
    out
}

/// `policy/mode` of each endpoint, for the status.
pub fn describe(endpoints: &[(String, ServerEndpoint)]) -> Vec<String> {
    endpoints
        .iter()
        .map(|(_, e)| format!("{}/{}", e.security_policy, e.security_mode))
        .collect()
}

/// Makes sure `dir` holds the server's certificate and key, creating them (and the
/// directory) on first start. The error says what failed, naming the directory.
pub fn prepare_pki(
    dir: &Path,
    app: ApplicationDescription,
    hosts: Vec<String>,
) -> Result<(), String> {
    let shown = dir.display();
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the certificate directory {shown}: {e}"))?;
    // Creating the directory can succeed where writing in it does not (a read-only
    // mount): try a file before anything else.
    let probe = dir.join(".softplc-write-test");
    std::fs::write(&probe, b"")
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|e| format!("the certificate directory {shown} is not writable: {e}"))?;
    let store = CertificateStore::new(dir);
    store
        .ensure_pki_path()
        .map_err(|e| format!("cannot prepare the certificate directory {shown}: {e}"))?;
    if store.read_own_cert().is_ok() && store.read_own_pkey().is_ok() {
        return Ok(());
    }
    let mut data = X509Data::from((app, Some(hosts)));
    // A controller's certificate should outlive a maintenance interval.
    data.certificate_duration_days = 3650;
    store
        .create_and_store_application_instance_cert(&data, false)
        .map(|_| ())
        .map_err(|e| format!("cannot create the server certificate in {shown}: {e}"))
}
