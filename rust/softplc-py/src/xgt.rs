//! Bindings of the XGT server driver (softplc-io). The public API is `softplc.io`; the
//! XGT client is built from an I/O configuration file (`io_load_config`).

use pyo3::prelude::*;
use softplc_io::xgt::{Cpu, Device};

use crate::driver::NativeDriver;
use crate::errors;
use crate::modbus::{wrap, IoMonitor};

/// An XGT server with the default map, answering as a `cpu` PLC.
#[pyfunction]
#[pyo3(signature = (listen, *, cpu="XGI", max_connections=16, idle_timeout_ms=60_000, allow=Vec::new(), read_only=Vec::new()))]
fn io_xgt_server(
    listen: &str,
    cpu: &str,
    max_connections: usize,
    idle_timeout_ms: u64,
    allow: Vec<String>,
    read_only: Vec<String>,
) -> PyResult<(NativeDriver, IoMonitor)> {
    let addr = softplc_io::config::parse_listen(listen).map_err(errors::ConfigError::new_err)?;
    let cpu: Cpu = cpu
        .parse()
        .map_err(|e| errors::ConfigError::new_err(format!("cpu: {e}")))?;
    let mut cfg = softplc_io::XgtServerConfig::with_default_map(addr, cpu);
    cfg.max_connections = max_connections;
    cfg.idle_timeout =
        (idle_timeout_ms > 0).then(|| std::time::Duration::from_millis(idle_timeout_ms));
    for a in &allow {
        cfg.allow.push(softplc_io::IpNet::parse(a).ok_or_else(|| {
            errors::ConfigError::new_err(format!(
                "allow: {a:?} is not an IP address or network (like 127.0.0.1 or 10.0.0.0/8)"
            ))
        })?);
    }
    for d in &read_only {
        let letter = d.trim().trim_start_matches('%').to_ascii_uppercase();
        let device = match letter.as_bytes() {
            [c] => Device::from_letter(*c).filter(|d| d.exists(cpu)),
            _ => None,
        }
        .ok_or_else(|| {
            errors::ConfigError::new_err(format!(
                "read_only: {d:?} is not a device of {cpu} CPUs (devices: {})",
                Device::letters(cpu)
            ))
        })?;
        cfg.read_only.push(device);
    }
    wrap(Box::new(softplc_io::XgtServer::new(
        softplc_io::XGT_SERVER_DRIVER,
        cfg,
    )))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(io_xgt_server, m)?)?;
    Ok(())
}
