//! Bindings of the OPC UA server (softplc-opcua). The public API is
//! `softplc.io.opcua_server`.

use std::path::PathBuf;
use std::time::Duration;

use pyo3::prelude::*;
use softplc_io::config::{EndpointUrl, Loc, OpcuaConfig, OpcuaUser, Role};

use crate::driver::NativeDriver;
use crate::errors;
use crate::modbus::{wrap, IoMonitor};

fn role(what: &str, text: &str) -> PyResult<Role> {
    Role::parse(text).ok_or_else(|| {
        errors::ConfigError::new_err(format!(
            "{what}: unknown role {text:?} (expected viewer, operator or engineer)"
        ))
    })
}

/// An OPC UA server: `endpoint` as `opc.tcp://HOST:PORT`, users as
/// `(name, password, role)`, `anonymous` a role or None (refused).
#[pyfunction]
#[pyo3(signature = (endpoint, *, pki_dir=None, users=Vec::new(), anonymous=Some("operator".to_string()), expose=Vec::new(), sampling_ms=100, trust_client_certs=false, max_sessions=20))]
#[allow(clippy::too_many_arguments)]
fn io_opcua_server(
    endpoint: &str,
    pki_dir: Option<PathBuf>,
    users: Vec<(String, String, String)>,
    anonymous: Option<String>,
    expose: Vec<String>,
    sampling_ms: u64,
    trust_client_certs: bool,
    max_sessions: usize,
) -> PyResult<(NativeDriver, IoMonitor)> {
    let url = EndpointUrl::parse(endpoint).map_err(errors::ConfigError::new_err)?;
    let loc = Loc {
        file: std::sync::Arc::from("<arguments>"),
        line: 0,
        col: 0,
    };
    let mut cfg = OpcuaConfig::new(url, loc);
    cfg.pki_dir = pki_dir;
    cfg.anonymous = anonymous.map(|a| role("anonymous", &a)).transpose()?;
    for (name, password, r) in users {
        let role = role(&format!("user {name:?}"), &r)?;
        cfg.users.push(OpcuaUser {
            name,
            password,
            role,
        });
    }
    cfg.expose = expose;
    cfg.sampling = Duration::from_millis(sampling_ms);
    cfg.trust_client_certs = trust_client_certs;
    cfg.max_sessions = max_sessions;
    cfg.check().map_err(|(key, msg)| {
        errors::ConfigError::new_err(format!("opcua server: {key}: {msg}"))
    })?;
    wrap(softplc_opcua::driver(cfg))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(io_opcua_server, m)?)?;
    Ok(())
}
