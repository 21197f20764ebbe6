//! The `[server.opcua]` table: the runtime's OPC UA server (served by the
//! `softplc-opcua` crate, which builds its driver from the [`OpcuaConfig`] parsed here).
//!
//! ```toml
//! [server.opcua]
//! endpoint = "opc.tcp://0.0.0.0:4840"
//! pki_dir = "pki"                 # the server's certificate is created here
//! expose = ["tank.*"]             # default: every variable
//! sampling_ms = 100
//!
//! [[server.opcua.user]]
//! name = "engineer"
//! password_env = "SOFTPLC_OPCUA_PASSWORD"
//! role = "engineer"
//! ```
//!
//! The security rule is checked here, before anything starts: a loopback endpoint may
//! serve anonymous clients without security; any other address serves only users with
//! a password over Basic256Sha256 Sign&Encrypt, which needs a certificate directory.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use softplc_core::trace::{glob_match, is_glob};
use softplc_core::{ConfigError, Layout, VarId};
use toml::Spanned;

use super::source::{Loc, Source};

/// What an OPC UA client may do, by role. Each role may do what the ones before it
/// may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Browse, read and subscribe.
    Viewer,
    /// Also write variables (within their declared ranges and `writable` flag).
    Operator,
    /// Also call the engine's methods Start, Stop and ClearFault.
    Engineer,
}

impl Role {
    /// Every role, least privileged first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Engineer];

    /// Lower-case name (`operator`).
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Engineer => "engineer",
        }
    }

    /// Parses a lower-case role name.
    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == text)
    }

    /// True when the role may write variables.
    pub fn may_write(self) -> bool {
        self >= Role::Operator
    }

    /// True when the role may call Start, Stop and ClearFault.
    pub fn may_control(self) -> bool {
        self >= Role::Engineer
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The host part of an endpoint URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// An IP address (`0.0.0.0` and `::` listen on every interface).
    Ip(IpAddr),
    /// A host name, resolved when the server starts (`localhost` is loopback).
    Name(String),
}

impl Host {
    /// True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost).
    pub fn is_loopback(&self) -> bool {
        match self {
            Host::Ip(ip) => ip.is_loopback(),
            Host::Name(n) => n.eq_ignore_ascii_case("localhost"),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

/// A parsed `opc.tcp://HOST:PORT[/PATH]` endpoint URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointUrl {
    /// Host to listen on and to advertise.
    pub host: Host,
    /// TCP port (0 picks a free one; the default is OPC UA's 4840).
    pub port: u16,
    /// Path of the endpoint (`/` when none is given).
    pub path: String,
}

/// OPC UA's registered port.
pub const DEFAULT_PORT: u16 = 4840;

impl EndpointUrl {
    /// Parses an endpoint URL; the error says what is wrong and what is expected.
    pub fn parse(text: &str) -> Result<EndpointUrl, String> {
        let t = text.trim();
        let expected = "expected opc.tcp://HOST:PORT, such as opc.tcp://127.0.0.1:4840";
        let bad = |why: &str| format!("{t:?} is not an endpoint URL: {why} ({expected})");
        let Some(rest) = t.strip_prefix("opc.tcp://") else {
            return Err(bad("it must start with opc.tcp://"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if path.contains(char::is_whitespace) || path.contains(['?', '#']) {
            return Err(bad("the path may not hold spaces, `?` or `#`"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let Some((ip, tail)) = v6.split_once(']') else {
                return Err(bad("an IPv6 address needs its closing `]`"));
            };
            let ip = ip
                .parse::<std::net::Ipv6Addr>()
                .map_err(|_| bad(&format!("{ip:?} is not an IPv6 address")))?;
            (Host::Ip(IpAddr::V6(ip)), tail.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (Self::host(h).map_err(|w| bad(&w))?, Some(p)),
                None => (Self::host(authority).map_err(|w| bad(&w))?, None),
            }
        };
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| bad(&format!("the port {p:?} is not a number 0..=65535")))?,
        };
        Ok(EndpointUrl {
            host,
            port,
            path: path.to_string(),
        })
    }

    fn host(h: &str) -> Result<Host, String> {
        if h.is_empty() {
            return Err("the host is missing".into());
        }
        if let Ok(ip) = h.parse::<IpAddr>() {
            return Ok(Host::Ip(ip));
        }
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if h.len() > 253 || !h.split('.').all(label_ok) || h.contains(':') {
            return Err(format!("{h:?} is not a host name or IP address"));
        }
        Ok(Host::Name(h.to_string()))
    }

    /// True when the endpoint is reachable from this machine only.
    pub fn is_loopback(&self) -> bool {
        self.host.is_loopback()
    }
}

impl fmt::Display for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "opc.tcp://{}:{}{}", self.host, self.port, self.path)
    }
}

/// A user of an encrypted endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct OpcuaUser {
    /// User name.
    pub name: String,
    /// Password.
    pub password: String,
    /// What the user may do.
    pub role: Role,
}

impl fmt::Debug for OpcuaUser {
    // Never print the password (configurations end up in logs and panics).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpcuaUser")
            .field("name", &self.name)
            .field("password", &"****")
            .field("role", &self.role)
            .finish()
    }
}

/// The checked configuration of the OPC UA server.
#[derive(Clone, Debug, PartialEq)]
pub struct OpcuaConfig {
    /// Where it listens (and what it advertises).
    pub endpoint: EndpointUrl,
    /// Where the server's certificate and private key are kept (created on first
    /// start) and client certificates are trusted (`trusted/`) or rejected
    /// (`rejected/`); None: no encrypted endpoint (loopback only).
    pub pki_dir: Option<PathBuf>,
    /// Users of the encrypted endpoint.
    pub users: Vec<OpcuaUser>,
    /// What anonymous clients may do on a loopback endpoint; None: they may not
    /// connect. Never served on another address.
    pub anonymous: Option<Role>,
    /// Which variables are exposed: names or shell patterns (`tank.*`); empty: all.
    pub expose: Vec<String>,
    /// How often the process image is sampled for clients.
    pub sampling: Duration,
    /// Client certificates are trusted without being placed in `trusted/` first
    /// (for commissioning; off by default).
    pub trust_client_certs: bool,
    /// Sessions served at once.
    pub max_sessions: usize,
    /// Where the table is (or `<command line>`), for messages.
    pub loc: Loc,
}

/// Shortest sampling interval (the subscriptions' own timer runs at 100 ms; sampling
/// faster only helps reads).
pub const MIN_SAMPLING: Duration = Duration::from_millis(10);

impl OpcuaConfig {
    /// A loopback-style configuration for `endpoint` with the defaults: anonymous
    /// operators, every variable, 100 ms sampling, 20 sessions. Check it with
    /// [`OpcuaConfig::check`] before use.
    pub fn new(endpoint: EndpointUrl, loc: Loc) -> OpcuaConfig {
        OpcuaConfig {
            endpoint,
            pki_dir: None,
            users: Vec::new(),
            anonymous: Some(Role::Operator),
            expose: Vec::new(),
            sampling: Duration::from_millis(100),
            trust_client_certs: false,
            max_sessions: 20,
            loc,
        }
    }

    /// The security rule and the other cross-key checks; the error names the key at
    /// fault and says what to do.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let ep = &self.endpoint;
        if !ep.is_loopback() {
            if self.anonymous.is_some() {
                return Err((
                    "anonymous",
                    format!(
                        "{ep} is not a loopback address: anonymous access is served on \
                         loopback only; set anonymous = \"none\" and add users"
                    ),
                ));
            }
            if self.users.is_empty() {
                return Err((
                    "user",
                    format!(
                        "{ep} is not a loopback address: it is served only over Basic256Sha256 \
                         Sign&Encrypt to users with a password; add [[server.opcua.user]] entries"
                    ),
                ));
            }
        }
        if !self.users.is_empty() && self.pki_dir.is_none() {
            return Err((
                "pki_dir",
                "users are served over Basic256Sha256 Sign&Encrypt, which needs the server's \
                 certificate: name the directory it is kept in (created on first start)"
                    .into(),
            ));
        }
        if self.users.is_empty() && self.anonymous.is_none() {
            return Err((
                "anonymous",
                "nobody could connect: allow anonymous clients or add users".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for u in &self.users {
            if u.name.trim().is_empty() || u.name.contains(char::is_whitespace) {
                return Err(("name", format!("invalid user name {:?}", u.name)));
            }
            if u.password.is_empty() {
                return Err((
                    "password",
                    format!("user {:?} has an empty password", u.name),
                ));
            }
            if !seen.insert(u.name.as_str()) {
                return Err(("name", format!("duplicate user name {:?}", u.name)));
            }
        }
        if self.sampling < MIN_SAMPLING {
            return Err((
                "sampling_ms",
                format!(
                    "{} ms is too short (at least {} ms)",
                    self.sampling.as_millis(),
                    MIN_SAMPLING.as_millis()
                ),
            ));
        }
        if let Some(p) = self.expose.iter().find(|p| p.trim().is_empty()) {
            return Err(("expose", format!("empty pattern {p:?}")));
        }
        Ok(())
    }
}

/// The variables `patterns` select, in layout order, each once. A pattern is a name
/// (or bare last name, or direct address) or a shell pattern (`*`, `?`).
pub fn select(layout: &Layout, patterns: &[String]) -> Result<Vec<VarId>, ConfigError> {
    if patterns.is_empty() {
        return Ok((0..layout.len()).map(|i| VarId(i as u32)).collect());
    }
    let mut chosen = std::collections::HashSet::new();
    for p in patterns {
        let mut hit = false;
        if is_glob(p) {
            for (i, v) in layout.vars().iter().enumerate() {
                if glob_match(p, &v.name) {
                    hit = true;
                    chosen.insert(i);
                }
            }
        } else if let Ok(id) = layout.lookup(p) {
            hit = true;
            chosen.insert(id.index());
        }
        if !hit {
            let hint = match layout.lookup(p.trim_end_matches(['*', '?', '.'])) {
                Err(softplc_core::LookupError::Unknown { hint, .. }) => hint,
                _ => String::new(),
            };
            return Err(ConfigError::new(format!("{p:?} matches no variable{hint}")));
        }
    }
    let mut ids: Vec<usize> = chosen.into_iter().collect();
    ids.sort_unstable();
    Ok(ids.into_iter().map(|i| VarId(i as u32)).collect())
}

// ---------------------------------------------------------------------------------
// Raw TOML.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOpcua {
    endpoint: Option<Spanned<String>>,
    pki_dir: Option<Spanned<String>>,
    anonymous: Option<Spanned<String>>,
    expose: Option<Spanned<Vec<String>>>,
    sampling_ms: Option<Spanned<i64>>,
    trust_client_certs: Option<Spanned<bool>>,
    max_sessions: Option<Spanned<i64>>,
    #[serde(default)]
    user: Vec<Spanned<RawUser>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: Spanned<String>,
    password: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
    role: Option<Spanned<String>>,
}

const WHAT: &str = "server.opcua";

/// Checks the `[server.opcua]` table; relative paths are taken from the file's
/// directory.
pub(super) fn parse_opcua(
    src: &Source<'_>,
    raw: Spanned<RawOpcua>,
) -> Result<OpcuaConfig, ConfigError> {
    let loc = src.loc(&raw.span());
    let raw = raw.into_inner();
    let at = |s: &std::ops::Range<usize>, key: &str, msg: String| src.loc(s).error(WHAT, key, msg);
    let endpoint = match &raw.endpoint {
        None => EndpointUrl::parse("opc.tcp://127.0.0.1:4840").expect("the default parses"),
        Some(e) => EndpointUrl::parse(e.get_ref()).map_err(|m| at(&e.span(), "endpoint", m))?,
    };
    let mut cfg = OpcuaConfig::new(endpoint, loc.clone());
    if let Some(p) = &raw.pki_dir {
        let text = p.get_ref().trim();
        if text.is_empty() {
            return Err(at(
                &p.span(),
                "pki_dir",
                "the directory name is empty".into(),
            ));
        }
        let base = Path::new(&*src.file).parent().unwrap_or(Path::new(""));
        cfg.pki_dir = Some(base.join(text));
    }
    if let Some(e) = &raw.expose {
        cfg.expose = e.get_ref().iter().map(|p| p.trim().to_string()).collect();
    }
    if let Some(s) = &raw.sampling_ms {
        let ms = *s.get_ref();
        if !(10..=3_600_000).contains(&ms) {
            return Err(at(
                &s.span(),
                "sampling_ms",
                format!("{ms} is out of range 10..=3600000"),
            ));
        }
        cfg.sampling = Duration::from_millis(ms as u64);
    }
    if let Some(t) = &raw.trust_client_certs {
        cfg.trust_client_certs = *t.get_ref();
    }
    if let Some(m) = &raw.max_sessions {
        let n = *m.get_ref();
        if !(1..=1000).contains(&n) {
            return Err(at(
                &m.span(),
                "max_sessions",
                format!("{n} is out of range 1..=1000"),
            ));
        }
        cfg.max_sessions = n as usize;
    }
    for (i, u) in raw.user.into_iter().enumerate() {
        let uloc = src.loc(&u.span());
        let u = u.into_inner();
        let uwhat = format!("{WHAT} user #{}", i + 1);
        let password = match (&u.password, &u.password_env) {
            (Some(p), None) => p.get_ref().clone(),
            (None, Some(var)) => std::env::var(var.get_ref()).map_err(|_| {
                src.loc(&var.span()).error(
                    &uwhat,
                    "password_env",
                    format!("the environment variable {:?} is not set", var.get_ref()),
                )
            })?,
            (Some(p), Some(_)) => {
                return Err(src.loc(&p.span()).error(
                    &uwhat,
                    "password",
                    "give either `password` or `password_env`, not both",
                ))
            }
            (None, None) => return Err(uloc.error(
                &uwhat,
                "password",
                "missing: give `password` or `password_env` (the name of an environment variable)",
            )),
        };
        let role = match &u.role {
            None => Role::Viewer,
            Some(r) => Role::parse(r.get_ref()).ok_or_else(|| {
                src.loc(&r.span()).error(
                    &uwhat,
                    "role",
                    format!(
                        "unknown role {:?} (expected viewer, operator or engineer)",
                        r.get_ref()
                    ),
                )
            })?,
        };
        cfg.users.push(OpcuaUser {
            name: u.name.get_ref().trim().to_string(),
            password,
            role,
        });
    }
    // Anonymous access: on loopback an operator unless told; elsewhere never.
    cfg.anonymous = match &raw.anonymous {
        None if cfg.endpoint.is_loopback() => Some(Role::Operator),
        None => None,
        Some(a) if a.get_ref() == "none" => None,
        Some(a) => Some(Role::parse(a.get_ref()).ok_or_else(|| {
            at(
                &a.span(),
                "anonymous",
                format!(
                    "unknown role {:?} (expected none, viewer, operator or engineer)",
                    a.get_ref()
                ),
            )
        })?),
    };
    if let Err((key, msg)) = cfg.check() {
        let span = match key {
            "endpoint" => raw.endpoint.as_ref().map(|s| s.span()),
            "anonymous" => raw.anonymous.as_ref().map(|s| s.span()),
            "pki_dir" => raw.pki_dir.as_ref().map(|s| s.span()),
            "sampling_ms" => raw.sampling_ms.as_ref().map(|s| s.span()),
            "expose" => raw.expose.as_ref().map(|s| s.span()),
            _ => None,
        };
        let l = span.map(|s| src.loc(&s)).unwrap_or(loc);
        return Err(l.error(WHAT, key, msg));
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn opcua(text: &str) -> Result<OpcuaConfig, String> {
        parse("dir/f.toml", text)
            .map(|c| c.opcua.expect("an opcua table"))
            .map_err(|e| e.message)
    }

    #[test]
    fn endpoint_urls_parse_with_defaults_and_errors_say_what_is_expected() {
        let e = EndpointUrl::parse("opc.tcp://127.0.0.1:4841").unwrap();
        assert_eq!(
            (e.port, e.path.as_str(), e.is_loopback()),
            (4841, "/", true)
        );
        let e = EndpointUrl::parse("opc.tcp://[::1]/plc").unwrap();
        assert_eq!((e.port, e.path.as_str()), (4840, "/plc"));
        assert_eq!(e.to_string(), "opc.tcp://[::1]:4840/plc");
        assert!(EndpointUrl::parse("opc.tcp://localhost:1")
            .unwrap()
            .is_loopback());
        assert!(!EndpointUrl::parse("opc.tcp://0.0.0.0:1")
            .unwrap()
            .is_loopback());
        for bad in [
            "http://127.0.0.1:4840",
            "opc.tcp://:4840",
            "opc.tcp://127.0.0.1:99999",
            "opc.tcp://127.0.0.1:x",
            "opc.tcp://[::1:4840",
            "opc.tcp://bad host:1",
        ] {
            let e = EndpointUrl::parse(bad).unwrap_err();
            assert!(
                e.contains("is not an endpoint URL") && e.contains("opc.tcp://HOST:PORT"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_loopback_table_defaults_to_anonymous_operators_and_every_variable() {
        let c = opcua("[server.opcua]\nendpoint = \"opc.tcp://127.0.0.1:0\"\n").unwrap();
        assert_eq!(c.anonymous, Some(Role::Operator));
        assert!(c.expose.is_empty() && c.users.is_empty() && c.pki_dir.is_none());
        assert_eq!(c.sampling, Duration::from_millis(100));
    }

    #[test]
    fn an_opcua_table_alone_configures_no_modbus_server() {
        let c = parse("f.toml", "[server.opcua]\n").unwrap();
        assert!(c.server.is_none() && c.opcua.is_some());
        let c = parse("f.toml", "[server]\n[server.opcua]\n").unwrap();
        assert!(c.server.is_some() && c.opcua.is_some());
        let c = parse("f.toml", "[server]\nunit_id = 3\n").unwrap();
        assert!(c.server.is_some() && c.opcua.is_none());
    }

    #[test]
    fn another_address_needs_users_and_a_certificate_directory() {
        let e = opcua("[server.opcua]\nendpoint = \"opc.tcp://0.0.0.0:4840\"\n").unwrap_err();
        assert!(
            e.starts_with("dir/f.toml:1:1:") && e.contains("`user`"),
            "{e}"
        );
        let e = opcua(
            "[server.opcua]\nendpoint = \"opc.tcp://0.0.0.0:4840\"\n\
             [[server.opcua.user]]\nname = \"a\"\npassword = \"p\"\n",
        )
        .unwrap_err();
        assert!(e.contains("`pki_dir`") && e.contains("certificate"), "{e}");
        let e = opcua(
            "[server.opcua]\nendpoint = \"opc.tcp://0.0.0.0:4840\"\nanonymous = \"viewer\"\n\
             pki_dir = \"pki\"\n[[server.opcua.user]]\nname = \"a\"\npassword = \"p\"\n",
        )
        .unwrap_err();
        assert!(
            e.starts_with("dir/f.toml:3:13:") && e.contains("loopback"),
            "{e}"
        );
        let c = opcua(
            "[server.opcua]\nendpoint = \"opc.tcp://0.0.0.0:4840\"\npki_dir = \"pki\"\n\
             [[server.opcua.user]]\nname = \"a\"\npassword = \"p\"\nrole = \"engineer\"\n",
        )
        .unwrap();
        assert_eq!(c.anonymous, None);
        assert_eq!(c.pki_dir.as_deref(), Some(Path::new("dir/pki")));
        assert_eq!(c.users[0].role, Role::Engineer);
        assert!(!format!("{:?}", c.users[0]).contains("\"p\""));
    }

    #[test]
    fn errors_name_file_line_column_and_key() {
        let e = opcua("[server.opcua]\nendpoint = \"tcp://x\"\n").unwrap_err();
        assert!(
            e.starts_with("dir/f.toml:2:12:") && e.contains("`endpoint`"),
            "{e}"
        );
        let e = opcua("[server.opcua]\nsampling_ms = 0\n").unwrap_err();
        assert!(
            e.starts_with("dir/f.toml:2:15:") && e.contains("`sampling_ms`"),
            "{e}"
        );
        let e = opcua("[server.opcua]\nsampling_ms = 5\n").unwrap_err();
        assert!(e.contains("10..=3600000"), "{e}");
        let e = opcua("[server.opcua]\nendpont = \"x\"\n").unwrap_err();
        assert!(
            e.starts_with("dir/f.toml:2:") && e.contains("endpont"),
            "{e}"
        );
        let e = opcua("[server.opcua]\n[[server.opcua.user]]\nname = \"a\"\npassword = \"p\"\nrole = \"boss\"\n")
            .unwrap_err();
        assert!(
            e.starts_with("dir/f.toml:5:8:") && e.contains("`role`"),
            "{e}"
        );
        let e = opcua("[server.opcua]\n[[server.opcua.user]]\nname = \"a\"\npassword_env = \"SOFTPLC_SURELY_UNSET_VAR\"\n")
            .unwrap_err();
        assert!(e.contains("`password_env`") && e.contains("not set"), "{e}");
    }
}
