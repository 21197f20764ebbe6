//! Bindings of the Modbus TCP drivers (softplc-io) and of I/O configuration files.
//! The public API is `softplc.io`.

use std::path::Path;
use std::sync::Arc;

use pyo3::prelude::*;
use softplc_core::{Area, Driver, DriverMonitor, LayoutBuilder, VarDecl};

use crate::driver::NativeDriver;
use crate::errors::{self, OrRaise};
use crate::value::type_from_name;
use crate::wait;

/// A driver's status, readable from Python before and after the driver is attached.
#[pyclass(module = "softplc._native", frozen)]
pub struct IoMonitor {
    name: String,
    inner: Arc<dyn DriverMonitor>,
}

#[pymethods]
impl IoMonitor {
    /// The driver's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The status as JSON text.
    fn status_json(&self, py: Python<'_>) -> PyResult<String> {
        let m = self.inner.clone();
        wait::blocking(py, move || m.status_json())
    }

    fn __repr__(&self) -> String {
        format!("<IoMonitor {:?}>", self.name)
    }
}

impl IoMonitor {
    /// A monitor named `name`.
    pub fn new(name: String, inner: Arc<dyn DriverMonitor>) -> IoMonitor {
        IoMonitor { name, inner }
    }
}

pub(crate) fn wrap(d: Box<dyn Driver>) -> PyResult<(NativeDriver, IoMonitor)> {
    let name = d.name().to_string();
    let monitor = d.monitor().ok_or_else(|| {
        errors::IoError::new_err(format!("driver {name:?} offers no status monitor"))
    })?;
    Ok((
        NativeDriver::from_box(d),
        IoMonitor {
            name,
            inner: monitor,
        },
    ))
}

/// Loads an I/O configuration file and builds its drivers (Modbus client and server,
/// OPC UA server): `[(driver, monitor)]`.
#[pyfunction]
fn io_load_config(path: &str) -> PyResult<Vec<(NativeDriver, IoMonitor)>> {
    let cfg = softplc_io::load(Path::new(path)).or_raise()?;
    let mut drivers = softplc_io::drivers(&cfg);
    // The OPC UA server (`[server.opcua]`) lives in its own crate.
    if let Some(o) = &cfg.opcua {
        drivers.push(softplc_opcua::driver(o.clone()));
    }
    drivers.into_iter().map(wrap).collect()
}

/// A Modbus TCP server with the OpenPLC-compatible default map.
#[pyfunction]
#[pyo3(signature = (listen, *, unit_id=1, max_connections=16, idle_timeout_ms=60_000, allow=Vec::new(), read_only=Vec::new(), strict_map=false))]
fn io_modbus_server(
    listen: &str,
    unit_id: u8,
    max_connections: usize,
    idle_timeout_ms: u64,
    allow: Vec<String>,
    read_only: Vec<String>,
    strict_map: bool,
) -> PyResult<(NativeDriver, IoMonitor)> {
    let addr = softplc_io::config::parse_listen(listen).map_err(errors::ConfigError::new_err)?;
    let mut cfg = softplc_io::ServerConfig::with_default_map(addr, unit_id);
    cfg.strict_map = strict_map;
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
    for t in &read_only {
        let table = softplc_io::Table::parse(t).ok_or_else(|| {
            errors::ConfigError::new_err(format!(
                "read_only: unknown table {t:?} (expected coil, discrete_input, \
                 input_register or holding_register)"
            ))
        })?;
        cfg.read_only[table.index()] = true;
    }
    wrap(Box::new(softplc_io::ModbusServer::new(
        softplc_io::SERVER_DRIVER,
        cfg,
    )))
}

/// A variable for checking: name, area, type, direct address.
type VarRow = (String, String, String, Option<String>);

/// Checks a configuration file, optionally against variables
/// `[(name, area, type, address or None)]`, and returns a JSON description.
#[pyfunction]
#[pyo3(signature = (path, variables=None))]
fn io_check_config(py: Python<'_>, path: &str, variables: Option<Vec<VarRow>>) -> PyResult<String> {
    let cfg = softplc_io::load(Path::new(path)).or_raise()?;
    let layout = match variables {
        None => None,
        Some(vars) => {
            let mut b = LayoutBuilder::new();
            for (name, area, ty, addr) in vars {
                let a = Area::parse(&area).ok_or_else(|| {
                    errors::ConfigError::new_err(format!("{name}: unknown area {area:?}"))
                })?;
                let t = type_from_name(&ty).map_err(|e| {
                    errors::ConfigError::new_err(format!("{name}: {}", e.value(py)))
                })?;
                b.declare(VarDecl::new(&name, a, t, addr.as_deref()))
                    .or_raise()?;
            }
            Some(b.build().or_raise()?)
        }
    };
    softplc_io::check(&cfg, layout.as_ref()).or_raise()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<IoMonitor>()?;
    m.add_function(wrap_pyfunction!(io_load_config, m)?)?;
    m.add_function(wrap_pyfunction!(io_modbus_server, m)?)?;
    m.add_function(wrap_pyfunction!(io_check_config, m)?)?;
    Ok(())
}
