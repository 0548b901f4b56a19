//! Connection configuration as plain structs, named after swanctl.conf keys so that the TOML
//! layer maps one to one: a connection (`connections.<name>`) with addresses, IKE proposals,
//! local/remote auth and IDs, DPD and rekey times, and its children (`children.<name>`) with
//! traffic selectors, ESP or AH proposals, mode and start action.
//!
//! No parsing of files here and no behaviour: defaults follow strongSwan's.

use core::fmt;
use std::net::IpAddr;
use std::time::Duration;

use rampart_sa::{Mode, TrafficSelector};
use zeroize::Zeroizing;

use std::sync::Arc;

use crate::cert::Certificate;
use crate::message::Identification;
use crate::proposal::{AhProposal, ChildProposals, EspProposal, IkeProposal};
use crate::sign::PrivateKey;
use crate::trust::TrustStore;

/// How a side authenticates (`local.auth` / `remote.auth`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// Pre-shared key (`psk`), RFC 7296 section 2.15.
    Psk,
    /// A signature with a certificate's key (`pubkey`): RFC 7427 digital signatures, or the
    /// classic RSA and ECDSA methods.
    Pubkey,
}

impl AuthMethod {
    /// The name swanctl.conf gives it.
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Psk => "psk",
            AuthMethod::Pubkey => "pubkey",
        }
    }

    /// Whether an AUTH payload's method number belongs to this way of authenticating.
    pub fn accepts(self, method: u8) -> bool {
        match self {
            AuthMethod::Psk => method == crate::auth::auth_method::SHARED_KEY_MIC,
            AuthMethod::Pubkey => matches!(method, 1 | 9 | 10 | 11 | 14),
        }
    }
}

/// One side's authentication round (`local { auth, id, certs }` / `remote { auth, id,
/// cacerts }`).
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// Authentication method.
    pub auth: AuthMethod,
    /// Identity; `None` on the remote side means `%any`, and a remote identity may hold
    /// wildcards ([`Identification::matches`]). On the local side `None` means the local IP
    /// address (or, with a certificate, its subject).
    pub id: Option<Identification>,
    /// Local side, `pubkey`: our certificate first, then the intermediates up to (not
    /// including) the root, sent as CERT payloads (`local.certs`).
    pub certs: Vec<Certificate>,
    /// Local side, `pubkey`: the private key of `certs[0]`.
    pub key: Option<Arc<PrivateKey>>,
    /// Remote side, `pubkey`: the CAs the peer's chain must lead to (`remote.cacerts`); empty:
    /// any CA of the connection's trust store.
    pub cacerts: Vec<Certificate>,
}

impl AuthConfig {
    /// A round with this method and identity and no credentials.
    pub fn new(auth: AuthMethod, id: Option<Identification>) -> AuthConfig {
        AuthConfig { auth, id, certs: Vec::new(), key: None, cacerts: Vec::new() }
    }
}

/// A pre-shared key with the identities it belongs to (`secrets.ike-<x> { id-* = ..., secret }`).
#[derive(Clone, Debug)]
pub struct SharedSecret {
    /// The identities it is for; empty: any.
    pub ids: Vec<Identification>,
    /// The key.
    pub psk: Psk,
}

/// The shared secrets of a configuration in file order, indexed by the identities they name,
/// so that a template with a key per branch finds a branch's key without reading them all.
#[derive(Clone, Debug, Default)]
pub struct Secrets {
    list: Vec<SharedSecret>,
    /// Positions in `list` of the secrets naming each identity, ascending.
    by_id: std::collections::HashMap<Identification, Vec<usize>>,
    /// Position of the first secret naming no identity.
    first_for_any: Option<usize>,
}

impl Secrets {
    /// Indexes `list` (kept in its order).
    pub fn new(list: Vec<SharedSecret>) -> Secrets {
        let mut by_id: std::collections::HashMap<Identification, Vec<usize>> = std::collections::HashMap::new();
        for (i, s) in list.iter().enumerate() {
            for id in &s.ids {
                let at = by_id.entry(id.clone()).or_default();
                if at.last() != Some(&i) {
                    at.push(i);
                }
            }
        }
        let first_for_any = list.iter().position(|s| s.ids.is_empty());
        Secrets { list, by_id, first_for_any }
    }

    /// The best secret for a pair of identities, strongSwan's way: one naming both wins over
    /// one naming one of them, which wins over one naming none; one naming identities of which
    /// none matches is not a candidate. Ties go to the first one in file order.
    pub fn find(&self, local: Option<&Identification>, remote: Option<&Identification>) -> Option<&SharedSecret> {
        let positions =
            |id: Option<&Identification>| id.and_then(|id| self.by_id.get(id)).map_or(&[][..], Vec::as_slice);
        let (l, r) = (positions(local), positions(remote));
        // Both: the first position in both lists; else the first in either.
        let both = l.iter().find(|i| r.binary_search(i).is_ok());
        let one = match (l.first(), r.first()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        both.or(one).or(self.first_for_any.as_ref()).map(|&i| &self.list[i])
    }
}

impl std::ops::Deref for Secrets {
    type Target = [SharedSecret];
    fn deref(&self) -> &[SharedSecret] {
        &self.list
    }
}

impl From<Vec<SharedSecret>> for Secrets {
    fn from(list: Vec<SharedSecret>) -> Secrets {
        Secrets::new(list)
    }
}

/// `unique`: what a new IKE SA of an identity does to the older ones of the same connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unique {
    /// Keep them, unless the peer says INITIAL_CONTACT (strongSwan's `no`).
    No,
    /// Keep them, even on INITIAL_CONTACT.
    Never,
    /// Replace them (a branch that came back, from a new address or not).
    Replace,
}

/// A pre-shared key. Zeroized on drop; `Debug` hides it.
#[derive(Clone)]
pub struct Psk(pub Zeroizing<Vec<u8>>);

impl Psk {
    /// A key from its bytes (swanctl.conf `secret`, ASCII or `0x` hex decoded by the caller).
    pub fn new(secret: &[u8]) -> Psk {
        Psk(Zeroizing::new(secret.to_vec()))
    }
}

impl fmt::Debug for Psk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Psk(..)")
    }
}

/// `fragmentation`: IKE fragmentation (RFC 7383), in swanctl.conf's spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fragmentation {
    /// Announce support (IKEV2_FRAGMENTATION_SUPPORTED in IKE_SA_INIT), take the peer's
    /// fragments, and send our protected messages in fragments when they would not fit
    /// [`EndpointConfig::fragment_size`] (`yes`, the default).
    Yes,
    /// Announce support and take the peer's fragments, but send every message whole
    /// (`accept`).
    Accept,
    /// Do not announce support; fragments from the peer are dropped (`no`).
    No,
}

impl Fragmentation {
    /// The name swanctl.conf gives it.
    pub fn name(self) -> &'static str {
        match self {
            Fragmentation::Yes => "yes",
            Fragmentation::Accept => "accept",
            Fragmentation::No => "no",
        }
    }
}

/// `start_action` of a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartAction {
    /// Do nothing until the peer or the operator starts it.
    None,
    /// Install a trap policy: the daemon calls [`crate::Endpoint::acquire`] on matching traffic.
    Trap,
    /// Initiate when the configuration is loaded.
    Start,
    /// Both (`trap|start` in swanctl.conf): initiate at load, and keep a trap policy so that
    /// traffic negotiates again whenever the CHILD_SA is gone.
    TrapAndStart,
}

impl StartAction {
    /// Whether the child gets a trap policy.
    pub fn traps(self) -> bool {
        matches!(self, StartAction::Trap | StartAction::TrapAndStart)
    }

    /// Whether the child is initiated when the configuration is loaded.
    pub fn starts(self) -> bool {
        matches!(self, StartAction::Start | StartAction::TrapAndStart)
    }
}

/// `children.<name>`.
#[derive(Clone, Debug)]
pub struct ChildConfig {
    /// The child's name.
    pub name: String,
    /// `local_ts`: our side's traffic selectors.
    pub local_ts: Vec<TrafficSelector>,
    /// `remote_ts`: the peer's side.
    pub remote_ts: Vec<TrafficSelector>,
    /// `esp_proposals`, a DH group in them meaning PFS on CREATE_CHILD_SA.
    pub esp_proposals: Vec<EspProposal>,
    /// `ah_proposals`: when not empty the child negotiates AH (RFC 4302) with these, and
    /// `esp_proposals` is not used (a CHILD_SA is one or the other: AH+ESP bundles are not
    /// implemented, and the configuration file refuses a child with both).
    pub ah_proposals: Vec<AhProposal>,
    /// `mode`: tunnel or transport.
    pub mode: Mode,
    /// `start_action`.
    pub start_action: StartAction,
    /// `rekey_time`: when the CHILD_SA is rekeyed (before jitter). Zero: never.
    pub rekey_time: Duration,
    /// `life_time`: hard expiry. Default: rekey_time * 1.1.
    pub life_time: Duration,
    /// `rand_time`: up to this much is subtracted at random from rekey_time. Default: life - rekey.
    pub rand_time: Duration,
    /// `rekey_bytes`: rekey after this many bytes on either SA of the pair (0: no byte limit).
    /// The data plane counts; the daemon compares.
    pub rekey_bytes: u64,
    /// `life_bytes`: the SAs stop after this many bytes (0: none).
    pub life_bytes: u64,
    /// `rekey_packets`: rekey after this many packets (0: no packet limit).
    pub rekey_packets: u64,
    /// `life_packets`: the SAs stop after this many packets (0: none).
    pub life_packets: u64,
}

impl ChildConfig {
    /// A tunnel-mode child with strongSwan's default times (rekey 1 h, life 1.1 h).
    pub fn new(
        name: &str,
        local_ts: Vec<TrafficSelector>,
        remote_ts: Vec<TrafficSelector>,
        esp: Vec<EspProposal>,
    ) -> Self {
        ChildConfig {
            name: name.to_string(),
            local_ts,
            remote_ts,
            esp_proposals: esp,
            ah_proposals: Vec::new(),
            mode: Mode::Tunnel,
            start_action: StartAction::None,
            rekey_time: Duration::from_secs(3600),
            life_time: Duration::from_secs(3960),
            rand_time: Duration::from_secs(360),
            rekey_bytes: 0,
            life_bytes: 0,
            rekey_packets: 0,
            life_packets: 0,
        }
    }

    /// A tunnel-mode AH child (no encryption: RFC 4302) with strongSwan's default times.
    pub fn ah(
        name: &str,
        local_ts: Vec<TrafficSelector>,
        remote_ts: Vec<TrafficSelector>,
        ah: Vec<AhProposal>,
    ) -> Self {
        ChildConfig { ah_proposals: ah, ..ChildConfig::new(name, local_ts, remote_ts, Vec::new()) }
    }

    /// The proposals the child negotiates with: AH when `ah_proposals` has any, else ESP.
    pub fn proposals(&self) -> ChildProposals<'_> {
        if self.ah_proposals.is_empty() {
            ChildProposals::Esp(&self.esp_proposals)
        } else {
            ChildProposals::Ah(&self.ah_proposals)
        }
    }
}

/// `connections.<name>`.
#[derive(Clone, Debug)]
pub struct ConnectionConfig {
    /// The connection's name.
    pub name: String,
    /// `local_addrs`: empty means any.
    pub local_addrs: Vec<IpAddr>,
    /// `remote_addrs`: empty means `%any` (responder only).
    pub remote_addrs: Vec<IpAddr>,
    /// `local_port` (500).
    pub local_port: u16,
    /// `remote_port` (500).
    pub remote_port: u16,
    /// `proposals` (IKE).
    pub proposals: Vec<IkeProposal>,
    /// `encap`: force UDP encapsulation of ESP by faking NAT detection.
    pub encap: bool,
    /// `dpd_delay`: send a liveness check after this long without a message from the peer.
    /// Zero: off.
    pub dpd_delay: Duration,
    /// `dpd_timeout`: an established IKE SA whose request stays unanswered this long is dead,
    /// even before the retransmission schedule runs out. Zero: the schedule alone decides.
    /// (strongSwan reads this key only for IKEv1; Rampart applies it to IKEv2 as a cap.)
    pub dpd_timeout: Duration,
    /// `rekey_time` of the IKE SA (default 4 h). Zero: never.
    pub rekey_time: Duration,
    /// `over_time`: the IKE SA is closed this long after rekey_time (default 10 % of it).
    pub over_time: Duration,
    /// `rand_time`: jitter subtracted from rekey_time (default over_time).
    pub rand_time: Duration,
    /// `local` authentication round.
    pub local: AuthConfig,
    /// `remote` authentication round.
    pub remote: AuthConfig,
    /// The PSK shared with the peer (from the `secrets` section), when one key serves the
    /// connection whoever the peer is.
    pub psk: Option<Psk>,
    /// Keys by identity (the `secrets` section): a template for many branches picks each
    /// branch's key by its IDi ([`ConnectionConfig::psk_for`]).
    pub secrets: Arc<Secrets>,
    /// The trusted CAs and CRLs the peer's certificate is checked against.
    pub trust: Arc<TrustStore>,
    /// `unique`.
    pub unique: Unique,
    /// `fragmentation` (RFC 7383).
    pub fragmentation: Fragmentation,
    /// `children`.
    pub children: Vec<ChildConfig>,
}

impl ConnectionConfig {
    /// A PSK connection with strongSwan's default times.
    pub fn psk(name: &str, local_id: Identification, remote_id: Option<Identification>, psk: &[u8]) -> Self {
        ConnectionConfig {
            name: name.to_string(),
            local_addrs: vec![],
            remote_addrs: vec![],
            local_port: 500,
            remote_port: 500,
            proposals: crate::proposal::parse_ike_proposals(
                "aes256gcm16-prfsha256-x25519-ecp256, aes256-sha256-ecp256",
            )
            .unwrap_or_default(),
            encap: false,
            dpd_delay: Duration::ZERO,
            dpd_timeout: Duration::ZERO,
            rekey_time: Duration::from_secs(4 * 3600),
            over_time: Duration::from_secs(1440),
            rand_time: Duration::from_secs(1440),
            local: AuthConfig::new(AuthMethod::Psk, Some(local_id)),
            remote: AuthConfig::new(AuthMethod::Psk, remote_id),
            psk: Some(Psk::new(psk)),
            secrets: Arc::default(),
            trust: Arc::new(TrustStore::default()),
            unique: Unique::No,
            fragmentation: Fragmentation::Yes,
            children: vec![],
        }
    }

    /// A connection authenticating both ways with certificates: our chain and key, the CAs
    /// trusted for the peer.
    pub fn pubkey(
        name: &str,
        local_id: Option<Identification>,
        remote_id: Option<Identification>,
        chain: Vec<Certificate>,
        key: Arc<PrivateKey>,
        trust: Arc<TrustStore>,
    ) -> Self {
        let mut c = ConnectionConfig::psk(name, Identification::fqdn("unset"), remote_id, b"");
        c.psk = None;
        c.local =
            AuthConfig { auth: AuthMethod::Pubkey, id: local_id, certs: chain, key: Some(key), cacerts: Vec::new() };
        c.remote.auth = AuthMethod::Pubkey;
        c.trust = trust;
        c
    }

    /// The pre-shared key for this pair of identities: the best match among the keys by
    /// identity, else the connection's own key.
    pub fn psk_for(&self, local: &Identification, remote: Option<&Identification>) -> Option<&Psk> {
        self.secrets.find(Some(local), remote).map(|s| &s.psk).or(self.psk.as_ref())
    }

    /// Our identity: `local.id`, else our certificate's subject (`pubkey`), else the address.
    pub fn local_identity(&self, addr: IpAddr) -> Identification {
        if let Some(id) = &self.local.id {
            // A distinguished name that is our certificate's subject goes out as the
            // certificate has it (the same DER, whatever string types the text gave).
            if let Some(c) = self.local.certs.first()
                && id.kind == crate::message::id_type::DER_ASN1_DN
                && c.has_identity(id.kind, &id.data)
            {
                return Identification { kind: id.kind, data: c.subject.clone() };
            }
            return id.clone();
        }
        match self.local.certs.first() {
            Some(c) if self.local.auth == AuthMethod::Pubkey => {
                Identification { kind: crate::message::id_type::DER_ASN1_DN, data: c.subject.clone() }
            }
            _ => Identification::addr(addr),
        }
    }
}

/// Settings of the whole endpoint (strongSwan's `charon.*` options).
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// `retransmit_timeout`: first retransmission after this long (4 s).
    pub retransmit_timeout: Duration,
    /// `retransmit_base`: each retransmission waits this factor longer (1.8).
    pub retransmit_base: f64,
    /// `retransmit_tries`: retransmissions before giving up (5).
    pub retransmit_tries: u32,
    /// `cookie_threshold`: with this many half-open IKE SAs (all peers together), every new
    /// IKE_SA_INIT must carry a COOKIE (RFC 7296 section 2.6). 0: never for this reason (10,
    /// strongSwan's).
    pub cookie_threshold: usize,
    /// `cookie_threshold_ip`: with this many half-open IKE SAs from one peer address, new
    /// IKE_SA_INITs from that address must carry a COOKIE. 0: off (3, strongSwan's).
    pub cookie_threshold_ip: usize,
    /// `block_threshold`: at most this many half-open IKE SAs per peer address; an IKE_SA_INIT
    /// that would make one more is dropped (counted, logged as "peer too aggressive"). The
    /// check comes after the COOKIE one, so a blocked address has shown it receives at its
    /// address. 0: off. Default 250, not strongSwan's 5: many branches behind one carrier-grade
    /// NAT address coming back after an outage are half-open at once, and they get COOKIEs and
    /// then service, not silence (see the daemon's README).
    pub block_threshold: usize,
    /// `half_open_timeout`: a responder's IKE SA not authenticated by then is dropped (30 s).
    pub half_open_timeout: Duration,
    /// `keep_alive`: NAT keepalive interval when we are behind a NAT (20 s).
    pub keep_alive: Duration,
    /// Anti-replay window of installed inbound SAs.
    pub replay_window: u32,
    /// How long the initiator of a CHILD_SA rekey keeps the old CHILD_SA before deleting it
    /// (zero: at once). A data plane that loads new SAs asynchronously needs a moment before
    /// the peer, told by the delete, starts sending on the new SA.
    pub rekey_delete_delay: Duration,
    /// Hand the Diffie-Hellman shared-secret computation of IKE_SA_INIT out as
    /// [`crate::offload::DhJob`]s ([`crate::Endpoint::poll_dh_job`]) instead of computing it
    /// inside [`crate::Endpoint::handle`], and the signature work of a responder's IKE_AUTH as
    /// [`crate::offload::AuthJob`]s ([`crate::Endpoint::poll_auth_job`]); without it both run
    /// inside [`crate::Endpoint::handle`]. Off by default.
    pub offload_dh: bool,
    /// `fragment_size` (strongSwan's charon option): the largest IP datagram, IP and UDP headers
    /// included, that a protected message is sent in before it is sent in IKE fragments (RFC
    /// 7383, where negotiated and the connection says `fragmentation = yes`). Default 1280, the
    /// IPv6 minimum MTU, which fits IPv4 paths of that MTU too; 0: 576 for IPv4 peers and 1280
    /// for IPv6 peers (RFC 7383 section 2.5.1). [`crate::fragment::datagram_budget`] says what is
    /// taken off for the headers.
    pub fragment_size: usize,
    /// How long the fragments of an incomplete message are kept: the reassembly is dropped (and
    /// its fragments counted as `fragment_timeout`) this long after its first fragment came
    /// (30 s; the peer resends every fragment on each retransmission).
    pub fragment_timeout: Duration,
    /// Bytes of fragments all IKE SAs together may hold in reassembly (16 MiB); a fragment that
    /// would pass it is dropped and counted (`fragment_memory`). Each IKE SA holds at most
    /// [`crate::fragment::MAX_SA_BYTES`] besides.
    pub fragment_memory: usize,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            retransmit_timeout: Duration::from_secs(4),
            retransmit_base: 1.8,
            retransmit_tries: 5,
            cookie_threshold: 10,
            cookie_threshold_ip: 3,
            block_threshold: 250,
            half_open_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(20),
            replay_window: rampart_sa::DEFAULT_REPLAY_WINDOW,
            rekey_delete_delay: Duration::ZERO,
            offload_dh: false,
            fragment_size: 1280,
            fragment_timeout: Duration::from_secs(30),
            fragment_memory: 16 << 20,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The best secret for a pair of identities, strongSwan's way: one naming both wins over one
    /// naming one of them, which wins over one naming none; one naming identities of which none
    /// matches is not a candidate. Ties go to the first one.
    fn find_secret<'s>(
        secrets: &'s [SharedSecret],
        local: Option<&Identification>,
        remote: Option<&Identification>,
    ) -> Option<&'s SharedSecret> {
        let mut best: Option<(u8, &SharedSecret)> = None;
        for s in secrets {
            let score = if s.ids.is_empty() {
                1
            } else {
                let l = local.is_some_and(|id| s.ids.contains(id));
                let r = remote.is_some_and(|id| s.ids.contains(id));
                match (l, r) {
                    (true, true) => 3,
                    (true, false) | (false, true) => 2,
                    (false, false) => continue,
                }
            };
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, s));
            }
        }
        best.map(|(_, s)| s)
    }

    proptest! {
        /// The index answers what reading every secret in order answers.
        #[test]
        fn the_index_finds_what_the_scan_finds(
            names in proptest::collection::vec(proptest::collection::vec(0u8..6, 0..3), 0..12),
            local in proptest::option::of(0u8..7),
            remote in proptest::option::of(0u8..7),
        ) {
            let id = |n: u8| Identification::fqdn(&format!("id{n}.test"));
            let list: Vec<SharedSecret> = names
                .iter()
                .enumerate()
                .map(|(i, ids)| SharedSecret { ids: ids.iter().map(|&n| id(n)).collect(), psk: Psk::new(&[i as u8 + 1]) })
                .collect();
            let (local, remote) = (local.map(id), remote.map(id));
            let scanned = find_secret(&list, local.as_ref(), remote.as_ref()).map(|s| s.psk.0.to_vec());
            let secrets = Secrets::new(list);
            let indexed = secrets.find(local.as_ref(), remote.as_ref()).map(|s| s.psk.0.to_vec());
            prop_assert_eq!(scanned, indexed);
        }
    }
}
