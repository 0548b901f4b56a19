//! The daemon's configuration file: TOML whose keys follow swanctl.conf, so that operators can
//! carry their connections over (`connections.<name>`, `children.<name>`, `secrets.ike-<name>`),
//! plus a `[daemon]` table for what strongSwan keeps in strongswan.conf (SA database, listen
//! addresses, control socket, worker pool, retransmission and half-open limits).
//!
//! A bad file is refused as a whole with the file, line, column and reason ([`ConfError`]); a
//! swanctl.conf key that Rampart does not implement is accepted with a warning (so a carried-over
//! file loads) unless ignoring it would weaken security, and an unknown key is an error (a typo
//! must not silently change a tunnel). Files holding secrets are refused when every user may
//! read them. Nothing here opens a socket or logs; secrets never appear in errors or warnings.
//!
//! ```toml
//! [daemon]
//! database = "/dev/shm/rampart.sadb"
//! control_socket = "/run/rampart/ike.sock"
//!
//! [connections.gw]
//! local_addrs = "192.0.2.1"
//! remote_addrs = "192.0.2.2"
//! proposals = "aes256-sha256-ecp256, aes256-sha256-x25519"
//! local = { auth = "psk", id = "gw-a.example" }
//! remote = { auth = "psk", id = "gw-b.example" }
//!
//! [connections.gw.children.net]
//! local_ts = "198.18.1.0/24"
//! remote_ts = "198.18.2.0/24"
//! esp_proposals = "aes256gcm16, chacha20poly1305"   # or ah_proposals = "sha256, aes256gmac"
//! start_action = "start"
//!
//! [secrets.ike-gw]
//! id-a = "gw-a.example"
//! id-b = "gw-b.example"
//! secret = "a long random pre-shared key"
//! ```

mod credentials;
mod secrets;

pub use credentials::Credentials;

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rampart_config::{DeTable, DeValue};
use rampart_sa::{Mode, TrafficSelector};

pub use rampart_config::ConfError;
use rampart_config::{Doc, Value, get, read_file};

use self::secrets::IkeSecret;
use rampart_ike::config::{
    AuthConfig, AuthMethod, ChildConfig, ConnectionConfig, EndpointConfig, Fragmentation, Secrets, SharedSecret,
    StartAction, Unique,
};
use rampart_ike::message::Identification;
use rampart_ike::proposal::{parse_ah_proposals, parse_esp_proposals, parse_ike_proposals};
use std::sync::Arc;

/// What happens to a CHILD_SA's policies when its peer is found dead (`dpd_action`) or closes
/// it (`close_action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildAction {
    /// Remove the SAs and their policies (`clear` / `none`).
    Clear,
    /// Keep the policies with no SA: the next packet negotiates again (`trap`).
    Trap,
    /// Negotiate again at once (`restart` / `start`).
    Restart,
}

/// `dpd_action` and `close_action` of one child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildActions {
    /// `dpd_action` (default `clear`).
    pub dpd_action: ChildAction,
    /// `close_action` (default `none`, i.e. [`ChildAction::Clear`]).
    pub close_action: ChildAction,
}

/// The `[daemon]` table.
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    /// `database`: the SA database file.
    pub database: PathBuf,
    /// `sa_capacity` / `policy_capacity`: size of a database this daemon creates.
    pub sa_capacity: u32,
    /// See `sa_capacity`.
    pub policy_capacity: u32,
    /// `listen`: local addresses to bind UDP 500/4500 on (default: every connection's
    /// `local_addrs`).
    pub listen: Vec<IpAddr>,
    /// No `listen` given and a connection has no `local_addrs` (or `%any`): the daemon binds
    /// every address the host has, at start and at each reload, besides `listen`.
    pub listen_any: bool,
    /// `port` (500).
    pub port: u16,
    /// `port_nat_t` (4500).
    pub port_nat_t: u16,
    /// `control_socket`: the unix socket `rampart ctl` talks to.
    pub control_socket: PathBuf,
    /// `swanctl_dir`: where the `x509`, `x509ca`, `x509crl` and `private` (`ecdsa`, `rsa`,
    /// `pkcs8`) folders are (default: the configuration file's folder).
    pub swanctl_dir: Option<PathBuf>,
    /// `dh_workers`: threads computing Diffie-Hellman (default: the CPUs, at most 4).
    pub dh_workers: usize,
    /// `dh_precompute`: key shares kept ready per group (default 64; 0: make them when needed).
    pub dh_precompute: usize,
    /// `usage_interval`: how often the data plane's usage counters and events are read (1 s).
    pub usage_interval: Duration,
    /// `stale_grace`: how long SAs found in the database without IKE state (a restart) keep
    /// receiving after a new CHILD_SA of the same tunnel took over (5 s).
    pub stale_grace: Duration,
    /// `rekey_switch_delay`: after a CHILD_SA rekey we initiated, how long outbound traffic
    /// stays on the old SA while the peer's data plane loads the new one (100 ms).
    pub rekey_switch_delay: Duration,
    /// The endpoint settings (`retransmit_*`, `cookie_threshold`, `cookie_threshold_ip`,
    /// `block_threshold`, `half_open_timeout`, `keep_alive`, `replay_window`, `fragment_size`).
    pub endpoint: EndpointConfig,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            database: PathBuf::from(rampart_sadb::DEFAULT_PATH),
            sa_capacity: rampart_sadb::Capacities::default().sas,
            policy_capacity: rampart_sadb::Capacities::default().policies,
            listen: Vec::new(),
            listen_any: false,
            port: 500,
            port_nat_t: 4500,
            control_socket: PathBuf::from("/run/rampart/ike.sock"),
            swanctl_dir: None,
            dh_workers: std::thread::available_parallelism().map_or(1, |n| n.get()).min(4),
            dh_precompute: 64,
            usage_interval: Duration::from_secs(1),
            stale_grace: Duration::from_secs(5),
            rekey_switch_delay: Duration::from_millis(100),
            endpoint: EndpointConfig {
                offload_dh: true,
                rekey_delete_delay: Duration::from_millis(500),
                ..EndpointConfig::default()
            },
        }
    }
}

/// A whole configuration, checked.
#[derive(Debug)]
pub struct Config {
    /// The `[daemon]` table.
    pub daemon: DaemonConfig,
    /// The connections, in file order, with their pre-shared keys resolved.
    pub connections: Vec<ConnectionConfig>,
    /// `dpd_action` / `close_action` by (connection, child).
    pub actions: HashMap<(String, String), ChildActions>,
    /// Keys accepted but not implemented, as `file:line:column: message`.
    pub warnings: Vec<String>,
    /// The certificates, CAs, CRLs and keys of the swanctl folders.
    pub credentials: Credentials,
    fingerprints: HashMap<String, [u8; 32]>,
    credential_fingerprints: HashMap<String, [u8; 32]>,
}

impl Config {
    /// Reads and checks a configuration file (and the secrets file it names).
    pub fn load(path: &Path) -> Result<Config, ConfError> {
        let text = read_file(path)?;
        Config::from_text(path, &text, None)
    }

    /// Checks a configuration given as text; `secrets` is the text of a separate secrets file
    /// (with its name), if any. When no such text is given and the configuration holds secrets,
    /// `path`'s permissions are checked if the file exists (as [`Config::load`] does); a
    /// `secrets_file` it names is read and checked.
    pub fn from_text(path: &Path, text: &str, secrets: Option<(&Path, &str)>) -> Result<Config, ConfError> {
        let mut doc = Doc::new(path, text);
        let root = doc.parse()?;
        Config::read(&mut doc, root.get_ref(), secrets.map(|(p, t)| (p.to_path_buf(), t.to_string())))
    }

    /// The configuration in the top-level tables of a parsed document (`daemon`, `connections`,
    /// `secrets`): the whole of `rampart ike`'s file, or what `rampart run`'s file holds besides
    /// its own settings and `[dataplane]`. Errors point into `doc`'s file; the configuration's
    /// warnings are those `doc` collected and this reader's. The permissions of `doc`'s file are
    /// checked when it holds secrets and exists.
    pub fn from_table(doc: &mut Doc<'_>, table: &DeTable<'_>) -> Result<Config, ConfError> {
        Config::read(doc, table, None)
    }

    /// A digest of one connection's whole configuration (secret included) but its
    /// certificates, keys, CAs and CRLs: equal digests mean a reload leaves the connection's
    /// SAs alone.
    pub fn fingerprint(&self, connection: &str) -> Option<[u8; 32]> {
        self.fingerprints.get(connection).copied()
    }

    /// A digest of one connection's certificates, CAs and CRLs: a reload that changes only
    /// these gives new IKE SAs the new ones and keeps the established SAs.
    pub fn credential_fingerprint(&self, connection: &str) -> Option<[u8; 32]> {
        self.credential_fingerprints.get(connection).copied()
    }

    /// The actions of a child (defaults when unknown).
    pub fn child_actions(&self, connection: &str, child: &str) -> ChildActions {
        self.actions
            .get(&(connection.to_string(), child.to_string()))
            .copied()
            .unwrap_or(ChildActions { dpd_action: ChildAction::Clear, close_action: ChildAction::Clear })
    }

    fn read(
        doc: &mut Doc<'_>,
        root: &DeTable<'_>,
        secrets_text: Option<(PathBuf, String)>,
    ) -> Result<Config, ConfError> {
        let path = doc.file;
        doc.check_keys("top level", root, &["daemon", "connections", "secrets"], &["pools", "authorities"])?;
        let mut daemon = DaemonConfig::default();
        let mut secrets_file = None;
        if let Some((_, v)) = get(root, "daemon") {
            let body = doc.table("daemon", v)?;
            secrets_file = read_daemon(doc, body, &mut daemon)?;
        }
        let mut secrets: Vec<IkeSecret> = Vec::new();
        if let Some((_, v)) = get(root, "secrets") {
            let t = doc.table("secrets", v)?;
            secrets::read(doc, t, &mut secrets)?;
            if !secrets.is_empty() && secrets_text.is_none() && path.exists() {
                secrets::check_permissions(path)?;
            }
        }
        let mut warnings = Vec::new();
        // A separate secrets file: given as text (tests), or named by daemon.secrets_file.
        let extra = match (secrets_text, secrets_file) {
            (Some((p, t)), _) => Some((p, t)),
            (None, Some((file, span))) => {
                let file = if file.is_relative() { path.parent().unwrap_or(Path::new(".")).join(file) } else { file };
                let t = read_file(&file).map_err(|e| doc.err(&span, format!("secrets_file: {}", e.reason)))?;
                secrets::check_permissions(&file)?;
                Some((file, t))
            }
            (None, None) => None,
        };
        if let Some((p, t)) = &extra {
            let mut sdoc = Doc::new(p, t);
            let sroot = sdoc.parse()?;
            let sroot = sroot.get_ref();
            sdoc.check_keys("secrets file", sroot, &["secrets"], &[])?;
            if let Some((_, v)) = get(sroot, "secrets") {
                let t = sdoc.table("secrets", v)?;
                secrets::read(&mut sdoc, t, &mut secrets)?;
            }
            warnings.append(&mut sdoc.warnings);
        }
        let cred_dir = match &daemon.swanctl_dir {
            Some(d) if d.is_relative() => path.parent().unwrap_or(Path::new(".")).join(d),
            Some(d) => d.clone(),
            None => path.parent().unwrap_or(Path::new(".")).to_path_buf(),
        };
        let credentials = Credentials::load(&cred_dir)?;
        let shared: Arc<Secrets> = Arc::new(Secrets::new(
            secrets.iter().map(|s| SharedSecret { ids: s.ids.clone(), psk: s.psk.clone() }).collect(),
        ));
        let mut connections = Vec::new();
        let mut actions = HashMap::new();
        let mut fingerprints = HashMap::new();
        let mut credential_fingerprints = HashMap::new();
        if let Some((_, v)) = get(root, "connections") {
            let t = doc.table("connections", v)?;
            for (k, v) in t.iter() {
                let name: &str = k.get_ref();
                check_name(doc, "connection", name, &k.span())?;
                let body = doc.table(name, v)?;
                let (conn, acts) = read_connection(doc, name, &k.span(), body, (&secrets, &shared), &credentials)?;
                for (child, a) in acts {
                    actions.insert((name.to_string(), child), a);
                }
                fingerprints.insert(name.to_string(), fingerprint(&conn, &actions));
                credential_fingerprints.insert(name.to_string(), credential_fingerprint(&conn));
                connections.push(conn);
            }
        }
        if daemon.listen.is_empty() {
            (daemon.listen, daemon.listen_any) = listen_addresses(&connections);
        }
        warnings.splice(0..0, std::mem::take(&mut doc.warnings));
        Ok(Config { daemon, connections, actions, warnings, credentials, fingerprints, credential_fingerprints })
    }
}

/// The addresses to bind when `daemon.listen` is not set: every connection's `local_addrs`, and
/// whether one has none (`%any`: every address of the host, as swanctl.conf means it).
fn listen_addresses(connections: &[ConnectionConfig]) -> (Vec<IpAddr>, bool) {
    let mut listen: Vec<IpAddr> = Vec::new();
    let mut any = false;
    for c in connections {
        any |= c.local_addrs.is_empty();
        for a in &c.local_addrs {
            if !listen.contains(a) {
                listen.push(*a);
            }
        }
    }
    (listen, any)
}

fn check_name(doc: &Doc<'_>, what: &str, name: &str, span: &Range<usize>) -> Result<(), ConfError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok { Ok(()) } else { Err(doc.err(span, format!("{what} name '{name}': use 1-64 of A-Z a-z 0-9 - _ ."))) }
}

/// Everything that decides a connection's behaviour, hashed (SHA-256; the secret goes into the
/// hash, never anywhere else).
fn fingerprint(conn: &ConnectionConfig, actions: &HashMap<(String, String), ChildActions>) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    // Debug of the configuration structs covers every field except the keys, which it hides;
    // certificates, CAs and CRLs are left to the credential fingerprint.
    let mut bare = conn.clone();
    bare.local.certs.clear();
    bare.local.key = None;
    bare.remote.cacerts.clear();
    bare.trust = Arc::default();
    bare.secrets = Arc::default();
    ctx.update(format!("{bare:?}").as_bytes());
    if let Some(psk) = &conn.psk {
        ctx.update(&psk.0);
    }
    // A template whose keys are all by identity depends on every secret.
    if conn.psk.is_none() && (conn.local.auth == AuthMethod::Psk || conn.remote.auth == AuthMethod::Psk) {
        for s in conn.secrets.iter() {
            ctx.update(format!("{:?}", s.ids).as_bytes());
            ctx.update(&s.psk.0);
        }
    }
    let mut acts: Vec<_> = actions.iter().filter(|((c, _), _)| *c == conn.name).collect();
    acts.sort_by(|a, b| a.0.cmp(b.0));
    ctx.update(format!("{acts:?}").as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The certificates, CAs and CRLs a connection uses, hashed.
fn credential_fingerprint(conn: &ConnectionConfig) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for c in conn.local.certs.iter().chain(conn.remote.cacerts.iter()).chain(conn.trust.cas.iter()) {
        ctx.update(c.der());
    }
    for c in &conn.trust.crls {
        ctx.update(format!("{c:?}").as_bytes());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn positive_usize(doc: &Doc<'_>, key: &str, v: &Value<'_>) -> Result<usize, ConfError> {
    let n = doc.integer(key, v)?;
    usize::try_from(n).map_err(|_| doc.err(&v.span(), format!("'{key}' must not be negative")))
}

fn read_daemon(
    doc: &mut Doc<'_>,
    t: &DeTable<'_>,
    d: &mut DaemonConfig,
) -> Result<Option<(PathBuf, Range<usize>)>, ConfError> {
    doc.check_keys(
        "daemon",
        t,
        &[
            "database",
            "sa_capacity",
            "policy_capacity",
            "listen",
            "port",
            "port_nat_t",
            "control_socket",
            "swanctl_dir",
            "secrets_file",
            "dh_workers",
            "dh_precompute",
            "offload_dh",
            "usage_interval",
            "stale_grace",
            "rekey_switch_delay",
            "rekey_delete_delay",
            "retransmit_timeout",
            "retransmit_base",
            "retransmit_tries",
            "cookie_threshold",
            "cookie_threshold_ip",
            "block_threshold",
            "half_open_timeout",
            "keep_alive",
            "replay_window",
            "fragment_size",
        ],
        &[],
    )?;
    let mut secrets_file = None;
    for (k, v) in t.iter() {
        let key: &str = k.get_ref();
        let e = &mut d.endpoint;
        match key {
            "database" => d.database = PathBuf::from(doc.string(key, v)?),
            "control_socket" => d.control_socket = PathBuf::from(doc.string(key, v)?),
            "swanctl_dir" => d.swanctl_dir = Some(PathBuf::from(doc.string(key, v)?)),
            "secrets_file" => secrets_file = Some((PathBuf::from(doc.string(key, v)?), v.span())),
            "sa_capacity" | "policy_capacity" => {
                let n = doc.integer(key, v)?;
                let n = u32::try_from(n)
                    .ok()
                    .filter(|n| (16..=1 << 24).contains(n))
                    .ok_or_else(|| doc.err(&v.span(), format!("'{key}' must be between 16 and 16777216")))?;
                if key == "sa_capacity" {
                    d.sa_capacity = n;
                } else {
                    d.policy_capacity = n;
                }
            }
            "listen" => {
                for (s, span) in doc.list(key, v)? {
                    let a: IpAddr =
                        s.parse().map_err(|_| doc.err(&span, format!("listen: '{s}' is not an IP address")))?;
                    d.listen.push(a);
                }
            }
            "port" => d.port = doc.u16(key, v)?,
            "port_nat_t" => d.port_nat_t = doc.u16(key, v)?,
            "dh_workers" => {
                d.dh_workers = positive_usize(doc, key, v)?;
                if d.dh_workers == 0 || d.dh_workers > 64 {
                    return Err(doc.err(&v.span(), "'dh_workers' must be between 1 and 64"));
                }
            }
            "dh_precompute" => d.dh_precompute = positive_usize(doc, key, v)?.min(100_000),
            "offload_dh" => e.offload_dh = doc.yes_no(key, v)?,
            "usage_interval" => {
                d.usage_interval = doc.duration(key, v)?;
                if d.usage_interval.is_zero() {
                    return Err(doc.err(&v.span(), "'usage_interval' must be positive"));
                }
            }
            "stale_grace" => d.stale_grace = doc.duration(key, v)?,
            "rekey_switch_delay" => d.rekey_switch_delay = doc.duration(key, v)?,
            "rekey_delete_delay" => e.rekey_delete_delay = doc.duration(key, v)?,
            "retransmit_timeout" => e.retransmit_timeout = doc.duration(key, v)?,
            "retransmit_base" => {
                let b = match v.get_ref() {
                    DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
                    DeValue::Integer(_) => Some(doc.integer(key, v)? as f64),
                    _ => None,
                };
                e.retransmit_base = b
                    .filter(|b| (1.0..=10.0).contains(b))
                    .ok_or_else(|| doc.err(&v.span(), "'retransmit_base' must be a number between 1 and 10"))?;
            }
            "retransmit_tries" => {
                e.retransmit_tries = u32::try_from(doc.integer(key, v)?)
                    .map_err(|_| doc.err(&v.span(), "'retransmit_tries' must not be negative"))?
            }
            // 0 switches each check off (strongSwan's meaning).
            "cookie_threshold" => e.cookie_threshold = positive_usize(doc, key, v)?,
            "cookie_threshold_ip" => e.cookie_threshold_ip = positive_usize(doc, key, v)?,
            "block_threshold" => e.block_threshold = positive_usize(doc, key, v)?,
            "half_open_timeout" => e.half_open_timeout = doc.duration(key, v)?,
            // strongSwan's charon.fragment_size: the whole IP datagram of a fragment; 0: 576
            // for IPv4 peers, 1280 for IPv6 (RFC 7383 section 2.5.1).
            "fragment_size" => {
                let n = doc.integer(key, v)?;
                e.fragment_size = usize::try_from(n)
                    .ok()
                    .filter(|n| *n == 0 || (MIN_FRAGMENT_SIZE..=65535).contains(n))
                    .ok_or_else(|| {
                        doc.err(
                            &v.span(),
                            format!(
                                "'fragment_size' must be 0 (576 for IPv4, 1280 for IPv6) or {MIN_FRAGMENT_SIZE} to 65535 bytes"
                            ),
                        )
                    })?;
            }
            "keep_alive" => e.keep_alive = doc.duration(key, v)?,
            "replay_window" => {
                let n = doc.integer(key, v)?;
                e.replay_window =
                    u32::try_from(n).ok().filter(|n| *n <= rampart_sa::MAX_REPLAY_WINDOW).ok_or_else(|| {
                        doc.err(&v.span(), format!("'replay_window' must be 0..={}", rampart_sa::MAX_REPLAY_WINDOW))
                    })?;
            }
            _ => {}
        }
    }
    Ok(secrets_file)
}

/// The smallest `fragment_size` taken: the datagram every IPv4 host must accept (RFC 791),
/// which leaves room for a fragment's headers, IV and ICV.
const MIN_FRAGMENT_SIZE: usize = 576;

/// swanctl.conf connection keys Rampart accepts and ignores with a warning.
const IGNORED_CONN: &[&str] =
    &["mobike", "send_certreq", "send_cert", "keyingtries", "pools", "dscp", "aggressive", "pull", "childless"];

fn addrs(doc: &Doc<'_>, key: &str, v: &Value<'_>) -> Result<Vec<IpAddr>, ConfError> {
    let mut out = Vec::new();
    for (s, span) in doc.list(key, v)? {
        if s == "%any" || s == "%any4" || s == "%any6" {
            continue;
        }
        let a: IpAddr = s.parse().map_err(|_| {
            doc.err(&span, format!("{key}: '{s}' is not an IP address (Rampart takes addresses, not names or ranges)"))
        })?;
        out.push(a);
    }
    Ok(out)
}

fn read_connection(
    doc: &mut Doc<'_>,
    name: &str,
    name_span: &Range<usize>,
    t: &DeTable<'_>,
    (secrets, shared): (&[IkeSecret], &Arc<Secrets>),
    creds: &Credentials,
) -> Result<(ConnectionConfig, Vec<(String, ChildActions)>), ConfError> {
    let what = format!("connections.{name}");
    doc.check_keys(
        &what,
        t,
        &[
            "version",
            "local_addrs",
            "remote_addrs",
            "local_port",
            "remote_port",
            "proposals",
            "encap",
            "dpd_delay",
            "dpd_timeout",
            "rekey_time",
            "over_time",
            "rand_time",
            "reauth_time",
            "local",
            "remote",
            "children",
            "unique",
            "fragmentation",
        ],
        IGNORED_CONN,
    )?;
    let mut c = ConnectionConfig::psk(name, Identification::fqdn("unset"), None, b"");
    c.local.id = None;
    c.psk = None;
    // swanctl.conf's default proposal is "default"; Rampart's is its own strong default.
    let (mut over, mut rand) = (None, None);
    for (k, v) in t.iter() {
        let key: &str = k.get_ref();
        match key {
            "version" => {
                let n = doc.integer(key, v)?;
                if n != 0 && n != 2 {
                    return Err(doc.err(&v.span(), format!("{what}.version: Rampart speaks IKEv2 only (0 or 2)")));
                }
            }
            "local_addrs" => c.local_addrs = addrs(doc, key, v)?,
            "remote_addrs" => c.remote_addrs = addrs(doc, key, v)?,
            "local_port" => c.local_port = doc.u16(key, v)?,
            "remote_port" => c.remote_port = doc.u16(key, v)?,
            "proposals" => {
                let items = doc.list(key, v)?;
                let mut out = Vec::new();
                for (s, span) in items {
                    if s == "default" {
                        out.extend(
                            rampart_ike::proposal::parse_ike_proposals(
                                "aes256gcm16-prfsha256-x25519-ecp256, aes256-sha256-ecp256-x25519",
                            )
                            .unwrap_or_default(),
                        );
                        continue;
                    }
                    out.extend(parse_ike_proposals(&s).map_err(|e| doc.err(&span, format!("{what}.proposals: {e}")))?);
                }
                if out.is_empty() {
                    return Err(doc.err(&v.span(), format!("{what}.proposals is empty")));
                }
                c.proposals = out;
            }
            "encap" => c.encap = doc.yes_no(key, v)?,
            "dpd_delay" => c.dpd_delay = doc.duration(key, v)?,
            "dpd_timeout" => c.dpd_timeout = doc.duration(key, v)?,
            "rekey_time" => c.rekey_time = doc.duration(key, v)?,
            "over_time" => over = Some(doc.duration(key, v)?),
            "rand_time" => rand = Some((doc.duration(key, v)?, v.span())),
            "reauth_time" if !doc.duration(key, v)?.is_zero() => {
                doc.warn(
                    &k.span(),
                    format_args!(
                        "{what}.reauth_time: reauthentication is not supported; the IKE SA is rekeyed instead"
                    ),
                );
            }
            "local" | "remote" => {
                let body = doc.table(key, v)?;
                let a = read_auth(doc, &format!("{what}.{key}"), body, key == "local", creds, &k.span())?;
                if key == "local" {
                    c.local = a;
                } else {
                    c.remote = a;
                }
            }
            "fragmentation" => {
                c.fragmentation = match doc.string(key, v)? {
                    "yes" => Fragmentation::Yes,
                    "accept" => Fragmentation::Accept,
                    "no" => Fragmentation::No,
                    // strongSwan sends even IKEv1's first message in fragments with it; for
                    // IKEv2 it means yes.
                    "force" => {
                        doc.warn(&v.span(), format_args!("{what}.fragmentation = force is IKEv1's; taken as 'yes'"));
                        Fragmentation::Yes
                    }
                    other => {
                        return Err(
                            doc.err(&v.span(), format!("{what}.fragmentation = {other}: use yes, accept or no"))
                        );
                    }
                }
            }
            "unique" => {
                c.unique = match doc.string(key, v)? {
                    "no" => Unique::No,
                    "never" => Unique::Never,
                    "replace" => Unique::Replace,
                    "keep" => {
                        doc.warn(&v.span(), format_args!("{what}.unique = keep is not supported; taken as 'no'"));
                        Unique::No
                    }
                    other => {
                        return Err(doc.err(&v.span(), format!("{what}.unique = {other}: use no, never or replace")));
                    }
                }
            }
            _ => {}
        }
    }
    // Any local/remote round other than the first one is refused by check_keys (unknown key).
    c.over_time = over.unwrap_or(c.rekey_time / 10);
    c.rand_time = match rand {
        Some((r, span)) => {
            if !c.rekey_time.is_zero() && r >= c.rekey_time {
                return Err(doc.err(&span, format!("{what}.rand_time must be shorter than rekey_time")));
            }
            r
        }
        None => c.over_time.min(c.rekey_time),
    };
    let dynamic_local = c.local_addrs.first().copied();
    let dynamic_remote = c.remote_addrs.first().copied();
    let mut actions = Vec::new();
    if let Some((_, v)) = get(t, "children") {
        let ct = doc.table("children", v)?;
        for (k, v) in ct.iter() {
            let cname: &str = k.get_ref();
            check_name(doc, "child", cname, &k.span())?;
            let body = doc.table(cname, v)?;
            let cwhat = format!("{what}.children.{cname}");
            let (child, acts) = read_child(doc, &cwhat, (cname, &k.span()), body, dynamic_local, dynamic_remote)?;
            actions.push((cname.to_string(), acts));
            c.children.push(child);
        }
    }
    if c.children.is_empty() {
        doc.warn(name_span, format_args!("{what} has no children: its IKE SA carries no traffic"));
    }
    c.trust = Arc::clone(&creds.trust);
    c.secrets = Arc::clone(shared);
    // The pre-shared key, by the identities; a template for many peers (remote.id %any or a
    // wildcard) picks each peer's key by its identity when it authenticates.
    if c.local.auth == AuthMethod::Psk || c.remote.auth == AuthMethod::Psk {
        let local_id = c.local.id.clone().or_else(|| c.local_addrs.first().map(|a| Identification::addr(*a)));
        let found = shared.find(local_id.as_ref(), c.remote.id.as_ref());
        let template = c.remote.id.as_ref().is_none_or(Identification::is_pattern);
        match found {
            Some(s) => c.psk = Some(s.psk.clone()),
            None if template && secrets.iter().any(|s| !s.ids.is_empty()) => {}
            None => {
                return Err(doc.err(
                    name_span,
                    format!(
                        "{what} authenticates with psk but no secrets.ike* section matches its identities (local {}, remote {})",
                        local_id.map_or("(none)".to_string(), |i| i.to_string()),
                        c.remote.id.as_ref().map_or("%any".to_string(), |i| i.to_string()),
                    ),
                ));
            }
        }
    }
    Ok((c, actions))
}

const IGNORED_AUTH: &[&str] =
    &["pubkeys", "groups", "revocation", "round", "eap_id", "aaa_id", "xauth_id", "cert_policy"];

fn read_auth(
    doc: &mut Doc<'_>,
    what: &str,
    t: &DeTable<'_>,
    local: bool,
    creds: &Credentials,
    span: &Range<usize>,
) -> Result<AuthConfig, ConfError> {
    doc.check_keys(what, t, &["auth", "id", "certs", "cacerts"], IGNORED_AUTH)?;
    let mut a = AuthConfig::new(AuthMethod::Psk, None);
    for (k, v) in t.iter() {
        let key: &str = k.get_ref();
        match key {
            "auth" => {
                let s = doc.string(key, v)?;
                a.auth = match s {
                    "psk" => AuthMethod::Psk,
                    // swanctl's key-type constraints all mean a signature with the certificate's key.
                    "pubkey" | "rsa" | "ecdsa" | "ed25519" | "rsa/pss" => AuthMethod::Pubkey,
                    other => {
                        return Err(doc.err(&v.span(), format!("{what}.auth = {other}: not supported (psk or pubkey)")));
                    }
                };
            }
            "id" => {
                let s = doc.string(key, v)?;
                if s == "%any" {
                    if local {
                        return Err(doc.err(&v.span(), format!("{what}.id: our own identity cannot be %any")));
                    }
                    a.id = None;
                } else {
                    let id = Identification::from_swanctl(s)
                        .ok_or_else(|| doc.err(&v.span(), format!("{what}.id: '{s}' is not an identity")))?;
                    if local && id.is_pattern() {
                        return Err(doc.err(&v.span(), format!("{what}.id: our own identity cannot have wildcards")));
                    }
                    a.id = Some(id);
                }
            }
            "certs" | "cacerts" => {
                if (key == "certs") != local {
                    return Err(doc.err(
                        &k.span(),
                        format!(
                            "{what}.{key}: {} belongs in the {} round",
                            key,
                            if local { "remote" } else { "local" }
                        ),
                    ));
                }
                let folder = if key == "certs" { "x509" } else { "x509ca" };
                for (name, nspan) in doc.list(key, v)? {
                    let path = creds.resolve(folder, &name);
                    let certs = credentials::read_certs(&path)
                        .map_err(|e| doc.err(&nspan, format!("{what}.{key}: {}: {}", path.display(), e.reason)))?;
                    if key == "certs" {
                        // The first certificate of the first file is ours; the rest are intermediates.
                        a.certs.extend(certs);
                    } else {
                        a.cacerts.extend(certs);
                    }
                }
            }
            _ => {}
        }
    }
    if local && a.auth == AuthMethod::Pubkey {
        let Some(leaf) = a.certs.first().cloned() else {
            return Err(doc.err(span, format!("{what}.auth = pubkey needs local.certs (a file in x509/)")));
        };
        a.key = Some(creds.key_for(&leaf).ok_or_else(|| {
            doc.err(
                span,
                format!(
                    "{what}.certs: no private key for '{}' in {}/private, ecdsa, rsa or pkcs8",
                    leaf.subject_text,
                    creds.dir.display()
                ),
            )
        })?);
        if let Some(id) = &a.id
            && !leaf.has_identity(id.kind, &id.data)
        {
            return Err(doc.err(
                span,
                format!(
                    "{what}.id '{id}' is not in the certificate '{}' (subjectAltName or subject)",
                    leaf.subject_text
                ),
            ));
        }
        let mut chain = creds.chain(leaf);
        for extra in a.certs.iter().skip(1) {
            if !chain.contains(extra) {
                chain.push(extra.clone());
            }
        }
        a.certs = chain;
    }
    Ok(a)
}

/// `ah_proposals = "default"`: every HMAC-SHA-2 Rampart has for AH, in one proposal.
const DEFAULT_AH: &str = "sha256-sha384-sha512";

const IGNORED_CHILD: &[&str] = &[
    "updown",
    "hostaccess",
    "policies",
    "policies_fwd_out",
    "ipcomp",
    "inactivity",
    "reqid",
    "priority",
    "interface",
    "hw_offload",
    "copy_df",
    "copy_ecn",
    "copy_dscp",
    "mark_in",
    "mark_out",
    "set_mark_in",
    "set_mark_out",
    "if_id_in",
    "if_id_out",
    "label",
    "rand_bytes",
    "rand_packets",
    "sha256_96",
];

fn action(doc: &Doc<'_>, key: &str, v: &Value<'_>) -> Result<ChildAction, ConfError> {
    match doc.string(key, v)? {
        "none" | "clear" => Ok(ChildAction::Clear),
        "trap" => Ok(ChildAction::Trap),
        "restart" | "start" => Ok(ChildAction::Restart),
        other => Err(doc.err(&v.span(), format!("{key} = {other}: use none, clear, trap or restart"))),
    }
}

fn read_child(
    doc: &mut Doc<'_>,
    what: &str,
    (name, name_span): (&str, &Range<usize>),
    t: &DeTable<'_>,
    dynamic_local: Option<IpAddr>,
    dynamic_remote: Option<IpAddr>,
) -> Result<(ChildConfig, ChildActions), ConfError> {
    doc.check_keys(
        what,
        t,
        &[
            "local_ts",
            "remote_ts",
            "esp_proposals",
            "ah_proposals",
            "mode",
            "start_action",
            "dpd_action",
            "close_action",
            "rekey_time",
            "life_time",
            "rand_time",
            "rekey_bytes",
            "life_bytes",
            "rekey_packets",
            "life_packets",
            "replay_window",
        ],
        IGNORED_CHILD,
    )?;
    let mut c = ChildConfig::new(name, Vec::new(), Vec::new(), Vec::new());
    c.esp_proposals = parse_esp_proposals("aes256gcm16, chacha20poly1305, aes256-sha256").unwrap_or_default();
    let mut acts = ChildActions { dpd_action: ChildAction::Clear, close_action: ChildAction::Clear };
    let (mut life, mut rand, mut life_bytes, mut life_packets) = (None, None, None, None);
    let (mut local_ts, mut remote_ts) = (None, None);
    // Whether esp_proposals or ah_proposals came already (a second of them is refused).
    let mut proposals_seen = false;
    for (k, v) in t.iter() {
        let key: &str = k.get_ref();
        let proposals_key = matches!(key, "esp_proposals" | "ah_proposals");
        match key {
            "local_ts" => local_ts = Some(read_ts(doc, what, key, v, dynamic_local)?),
            "remote_ts" => remote_ts = Some(read_ts(doc, what, key, v, dynamic_remote)?),
            "esp_proposals" | "ah_proposals" if proposals_seen => {
                return Err(doc.err(
                    &k.span(),
                    format!(
                        "{what}: esp_proposals and ah_proposals both given: AH+ESP bundles in one CHILD_SA are \
                         not implemented (use two children, or one of the two)"
                    ),
                ));
            }
            "esp_proposals" => {
                let mut out = Vec::new();
                for (s, span) in doc.list(key, v)? {
                    if s == "default" {
                        out.extend(parse_esp_proposals("aes256gcm16, chacha20poly1305").unwrap_or_default());
                        continue;
                    }
                    out.extend(
                        parse_esp_proposals(&s).map_err(|e| doc.err(&span, format!("{what}.esp_proposals: {e}")))?,
                    );
                }
                if out.is_empty() {
                    return Err(doc.err(&v.span(), format!("{what}.esp_proposals is empty")));
                }
                c.esp_proposals = out;
            }
            "ah_proposals" => {
                let mut out = Vec::new();
                for (s, span) in doc.list(key, v)? {
                    let s = if s == "default" { DEFAULT_AH.to_string() } else { s };
                    out.extend(
                        parse_ah_proposals(&s).map_err(|e| doc.err(&span, format!("{what}.ah_proposals: {e}")))?,
                    );
                }
                if out.is_empty() {
                    return Err(doc.err(&v.span(), format!("{what}.ah_proposals is empty")));
                }
                c.ah_proposals = out;
                c.esp_proposals.clear();
            }
            "mode" => {
                c.mode = match doc.string(key, v)? {
                    "tunnel" => Mode::Tunnel,
                    "transport" => Mode::Transport,
                    other => {
                        return Err(doc.err(&v.span(), format!("{what}.mode = {other}: use tunnel or transport")));
                    }
                }
            }
            "start_action" => {
                let words: Vec<&str> = doc.string(key, v)?.split('|').map(str::trim).collect();
                c.start_action = match words.as_slice() {
                    ["none"] => StartAction::None,
                    ["trap"] => StartAction::Trap,
                    ["start"] => StartAction::Start,
                    ["trap", "start"] | ["start", "trap"] => StartAction::TrapAndStart,
                    _ => {
                        return Err(doc.err(
                            &v.span(),
                            format!("{what}.start_action = {}: use none, trap, start or trap|start", words.join("|")),
                        ));
                    }
                }
            }
            "dpd_action" => acts.dpd_action = action(doc, key, v)?,
            "close_action" => acts.close_action = action(doc, key, v)?,
            "rekey_time" => c.rekey_time = doc.duration(key, v)?,
            "life_time" => life = Some((doc.duration(key, v)?, v.span())),
            "rand_time" => rand = Some((doc.duration(key, v)?, v.span())),
            "rekey_bytes" => c.rekey_bytes = doc.count(key, v)?,
            "life_bytes" => life_bytes = Some((doc.count(key, v)?, v.span())),
            "rekey_packets" => c.rekey_packets = doc.count(key, v)?,
            "life_packets" => life_packets = Some((doc.count(key, v)?, v.span())),
            "replay_window" => {
                doc.warn(
                    &k.span(),
                    format_args!("{what}.replay_window: set daemon.replay_window (one window for every SA)"),
                );
            }
            _ => {}
        }
        proposals_seen |= proposals_key;
    }
    c.local_ts = local_ts.map_or_else(|| dynamic_ts(doc, what, name_span, "local_ts", dynamic_local), Ok)?;
    c.remote_ts = remote_ts.map_or_else(|| dynamic_ts(doc, what, name_span, "remote_ts", dynamic_remote), Ok)?;
    // strongSwan's derived defaults: life = rekey * 1.1, rand = life - rekey.
    c.life_time = match life {
        Some((l, span)) => {
            if !c.rekey_time.is_zero() && !l.is_zero() && l <= c.rekey_time {
                return Err(doc.err(&span, format!("{what}.life_time must be longer than rekey_time")));
            }
            l
        }
        None => c.rekey_time.mul_f64(1.1),
    };
    c.rand_time = match rand {
        Some((r, span)) => {
            if !c.rekey_time.is_zero() && r >= c.rekey_time {
                return Err(doc.err(&span, format!("{what}.rand_time must be shorter than rekey_time")));
            }
            r
        }
        None => c.life_time.saturating_sub(c.rekey_time),
    };
    let lim = |rekey: u64, life: Option<(u64, Range<usize>)>, key: &str| -> Result<u64, ConfError> {
        match life {
            Some((l, span)) => {
                if rekey != 0 && l != 0 && l <= rekey {
                    return Err(doc.err(&span, format!("{what}.{key} must be larger than its rekey_ limit")));
                }
                Ok(l)
            }
            None => Ok(rekey.saturating_add(rekey / 10)),
        }
    };
    c.life_bytes = lim(c.rekey_bytes, life_bytes, "life_bytes")?;
    c.life_packets = lim(c.rekey_packets, life_packets, "life_packets")?;
    Ok((c, acts))
}

/// A child's selector left out: `dynamic`, the connection's first address (the error points at
/// the child that lacks it).
fn dynamic_ts(
    doc: &Doc<'_>,
    what: &str,
    child: &Range<usize>,
    key: &str,
    addr: Option<IpAddr>,
) -> Result<Vec<TrafficSelector>, ConfError> {
    match addr {
        Some(a) => Ok(vec![TrafficSelector::from_prefix(a, if a.is_ipv4() { 32 } else { 128 })]),
        None => Err(doc.err(
            child,
            format!(
                "{what}.{key}: defaults to 'dynamic', which needs an address in local_addrs/remote_addrs; give {key}"
            ),
        )),
    }
}

fn read_ts(
    doc: &Doc<'_>,
    what: &str,
    key: &str,
    v: &Value<'_>,
    dynamic: Option<IpAddr>,
) -> Result<Vec<TrafficSelector>, ConfError> {
    let mut out = Vec::new();
    for (s, span) in doc.list(key, v)? {
        let ts = parse_ts(&s, dynamic).map_err(|e| doc.err(&span, format!("{what}.{key}: '{s}': {e}")))?;
        out.extend(ts);
    }
    if out.is_empty() {
        return Err(doc.err(&v.span(), format!("{what}.{key} is empty")));
    }
    Ok(out)
}

/// One swanctl.conf traffic selector: `10.0.0.0/24`, `10.0.0.1`, `10.0.0.1-10.0.0.9`,
/// `dynamic`, `%any`/`%any4`/`%any6`, each optionally followed by `[proto/port]` as swanctl
/// writes it: the protocol a name (tcp, udp, icmp, ...), a number or `%any`; the port a number,
/// a service name (`https`, `domain`: the built-in IANA names, then `/etc/services`), a range
/// `a-b` of either, or `%any`; for ICMP and ICMPv6 the port is the message type (or
/// `type/code`), encoded as RFC 7296 section 3.13.1 says.
pub fn parse_ts(s: &str, dynamic: Option<IpAddr>) -> Result<Vec<TrafficSelector>, String> {
    let (addr, extra) = match s.split_once('[') {
        Some((a, rest)) => {
            let inner = rest.strip_suffix(']').ok_or("missing ']'")?;
            (a.trim(), Some(inner))
        }
        None => (s.trim(), None),
    };
    let bases: Vec<TrafficSelector> = match addr {
        "dynamic" => {
            let a = dynamic.ok_or("'dynamic' needs an address in local_addrs/remote_addrs")?;
            vec![TrafficSelector::from_prefix(a, if a.is_ipv4() { 32 } else { 128 })]
        }
        "%any" => vec![TrafficSelector::any(false), TrafficSelector::any(true)],
        "%any4" => vec![TrafficSelector::any(false)],
        "%any6" => vec![TrafficSelector::any(true)],
        _ => {
            if let Some((a, len)) = addr.split_once('/') {
                let ip: IpAddr = a.parse().map_err(|_| "not an address/prefix")?;
                let len: u8 = len.parse().map_err(|_| "bad prefix length")?;
                if len > if ip.is_ipv4() { 32 } else { 128 } {
                    return Err("prefix length too long for the family".into());
                }
                vec![TrafficSelector::from_prefix(ip, len)]
            } else if let Some((a, b)) = addr.split_once('-') {
                let (a, b): (IpAddr, IpAddr) =
                    (a.trim().parse().map_err(|_| "bad range start")?, b.trim().parse().map_err(|_| "bad range end")?);
                if a.is_ipv4() != b.is_ipv4() || a > b {
                    return Err("range start and end must be one family, start <= end".into());
                }
                let mut ts = TrafficSelector::from_prefix(a, if a.is_ipv4() { 32 } else { 128 });
                ts.end = b;
                vec![ts]
            } else {
                let ip: IpAddr = addr.parse().map_err(|_| "not an address, prefix or range")?;
                vec![TrafficSelector::from_prefix(ip, if ip.is_ipv4() { 32 } else { 128 })]
            }
        }
    };
    let Some(extra) = extra else { return Ok(bases) };
    let (proto, port) = match extra.split_once('/') {
        Some((p, q)) => (p.trim(), Some(q.trim())),
        None => (extra.trim(), None),
    };
    let protocol: u8 = match proto {
        "" | "%any" | "any" => 0,
        n => match protocol_number(n) {
            Some(p) => p,
            None => n.parse().map_err(|_| format!("unknown protocol '{n}'"))?,
        },
    };
    let (lo, hi) = match port {
        None | Some("%any" | "") => (0, u16::MAX),
        Some("%opaque") => return Err("'%opaque' ports are not supported (fragments are reassembled first)".into()),
        Some(p) if protocol == 1 || protocol == 58 => icmp_ports(p)?,
        Some(p) => match p.split_once('-') {
            Some((a, b)) => (port_number(a.trim(), protocol)?, port_number(b.trim(), protocol)?),
            None => {
                let n = port_number(p, protocol)?;
                (n, n)
            }
        },
    };
    if lo > hi {
        return Err("port range start above its end".into());
    }
    Ok(bases
        .into_iter()
        .map(|mut t| {
            t.protocol = protocol;
            t.start_port = lo;
            t.end_port = hi;
            t
        })
        .collect())
}

/// IP protocol numbers by the names swanctl.conf takes.
fn protocol_number(name: &str) -> Option<u8> {
    Some(match name {
        "icmp" => 1,
        "igmp" => 2,
        "tcp" => 6,
        "udp" => 17,
        "ipv6" => 41,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "icmpv6" | "ipv6-icmp" => 58,
        "ospf" => 89,
        "sctp" => 132,
        "udplite" => 136,
        _ => return None,
    })
}

/// IANA service names the selectors of gateways name most, with their ports (the same for
/// TCP and UDP where both exist).
const SERVICES: &[(&str, u16)] = &[
    ("ftp-data", 20),
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("domain", 53),
    ("bootps", 67),
    ("bootpc", 68),
    ("tftp", 69),
    ("http", 80),
    ("www", 80),
    ("kerberos", 88),
    ("pop3", 110),
    ("ntp", 123),
    ("netbios-ns", 137),
    ("netbios-dgm", 138),
    ("netbios-ssn", 139),
    ("imap", 143),
    ("snmp", 161),
    ("snmp-trap", 162),
    ("bgp", 179),
    ("ldap", 389),
    ("https", 443),
    ("microsoft-ds", 445),
    ("isakmp", 500),
    ("syslog", 514),
    ("submission", 587),
    ("ldaps", 636),
    ("imaps", 993),
    ("pop3s", 995),
    ("openvpn", 1194),
    ("l2tp", 1701),
    ("pptp", 1723),
    ("radius", 1812),
    ("radius-acct", 1813),
    ("nfs", 2049),
    ("mysql", 3306),
    ("ms-wbt-server", 3389),
    ("ipsec-nat-t", 4500),
    ("sip", 5060),
    ("sips", 5061),
    ("postgresql", 5432),
    ("http-alt", 8080),
];

/// A port as swanctl.conf writes it: a number, or a service name (the table above, then
/// `/etc/services` for `protocol`).
fn port_number(p: &str, protocol: u8) -> Result<u16, String> {
    if let Ok(n) = p.parse::<u16>() {
        return Ok(n);
    }
    if let Some((_, n)) = SERVICES.iter().find(|(name, _)| *name == p) {
        return Ok(*n);
    }
    let proto = match protocol {
        6 => "tcp",
        17 => "udp",
        132 => "sctp",
        _ => "",
    };
    if let Some(n) = std::fs::read_to_string("/etc/services").ok().and_then(|t| etc_services(&t, p, proto)) {
        return Ok(n);
    }
    Err(format!("unknown port or service name '{p}' (a number, a range a-b, or a name from /etc/services)"))
}

/// The port of service `name` (or one of its aliases) for `proto` in an `/etc/services` text.
fn etc_services(text: &str, name: &str, proto: &str) -> Option<u16> {
    text.lines().find_map(|l| {
        let l = l.split('#').next()?;
        let mut words = l.split_whitespace();
        let service = words.next()?;
        let (port, p) = words.next()?.split_once('/')?;
        let named = service == name || words.any(|alias| alias == name);
        (named && (proto.is_empty() || p == proto)).then(|| port.parse().ok()).flatten()
    })
}

//= https://www.rfc-editor.org/rfc/rfc7296#section-3.13.1
//# For the ICMP and ICMPv6 protocols, the two one-octet fields Type and Code are treated as a
//# single 16-bit integer port number, with Type in the most significant eight bits and Code in
//# the least significant eight bits.
fn icmp_ports(p: &str) -> Result<(u16, u16), String> {
    let byte = |s: &str| s.trim().parse::<u8>().map_err(|_| format!("ICMP type or code '{s}' is not 0-255"));
    match p.split_once('/') {
        Some((t, c)) => {
            let v = u16::from(byte(t)?) << 8 | u16::from(byte(c)?);
            Ok((v, v))
        }
        None => {
            let t = u16::from(byte(p)?) << 8;
            Ok((t, t | 0xff))
        }
    }
}

/// Reads a duration as the configuration writes it (`30`, `"30s"`, `"5m"`, `"1h"`, `"1d"`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    rampart_config::parse_duration(s)
}
