//! `rampart sa`: static SAs in the SA database, driven by hand with the grammar of
//! `ip xfrm state` for the subset Rampart implements, so that operators can paste what they
//! know. `list` prints each SA as the `sa add` line that recreates it (keys hidden unless
//! `--show-keys`). Keys never appear in an error message.
//!
//! Direction: ESP SAs are one-way. `dir out` means this gateway sends with the SA (`src` is
//! ours), `dir in` that it receives with it (`dst` is ours), as with `dir` of recent
//! iproute2. Without `dir`, Rampart asks the kernel whether `dst` or `src` is an address of
//! this host.

use std::net::IpAddr;

use clap::{Args, Subcommand};
use rampart_crypto::{Encryption, Integrity, PolicyError, Suite, encr_id, integ_id};
use rampart_esp::{
    DEFAULT_REPLAY_WINDOW, Direction, Lifetimes, MAX_REPLAY_WINDOW, Mode, Protocol, SaConfig, TrafficSelector, UdpEncap,
};
use rampart_sadb::{PortRange, SaRecord};
use zeroize::Zeroizing;

use super::xfrm::{self, ArgError, Tokens, once};
use super::{CmdError, DbArgs};

/// `rampart sa`.
#[derive(Args, Debug)]
pub struct SaArgs {
    #[command(flatten)]
    db: DbArgs,
    #[command(subcommand)]
    action: SaAction,
}

const ADD_HELP: &str = "\
Grammar (a subset of `ip xfrm state add`; [] optional, | alternatives):
  src ADDR dst ADDR proto esp spi SPI [dir in|out] [mode transport|tunnel] [reqid N]
  ALGO... [replay-window N] [flag esn] [encap espinudp SPORT DPORT OADDR]
  [sel src ADDR[/PLEN] dst ADDR[/PLEN] [proto P [sport N] [dport N] | [type N] [code N]]]...
  [limit time-soft|time-hard|byte-soft|byte-hard|packet-soft|packet-hard N]...
ALGO:
  aead 'rfc4106(gcm(aes))' KEY 128            KEY: 20 or 36 bytes (key + 4-byte salt)
  aead 'rfc7539esp(chacha20,poly1305)' KEY 128  KEY: 36 bytes
  enc 'cbc(aes)' KEY                           KEY: 16, 24 or 32 bytes
  enc cipher_null \"\"
  auth-trunc 'hmac(sha256)' KEY 128 | 'hmac(sha384)' KEY 192 | 'hmac(sha512)' KEY 256
KEY is 0x followed by hex digits. dir out: src is this gateway (we send); dir in: dst is this
gateway (we receive); without dir, whichever of dst/src is a local address decides.
Defaults: mode transport, replay-window 1024. DES, 3DES, Blowfish, MD5, SHA-1 are refused.";

#[derive(Subcommand, Debug)]
enum SaAction {
    /// Install an SA.
    #[command(after_help = ADD_HELP)]
    Add {
        /// The SA in `ip xfrm state add` words.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true, value_name = "WORDS")]
        words: Vec<String>,
    },
    /// List SAs, one `sa add` line each.
    List {
        /// Show keys (otherwise hidden).
        #[arg(long)]
        show_keys: bool,
        /// Add a comment line with the slot and usage counters after each SA.
        #[arg(long)]
        stats: bool,
    },
    /// Delete an SA: `[src ADDR] dst ADDR [proto esp] spi SPI`.
    Delete {
        /// The SA's ID in `ip xfrm state delete` words.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true, value_name = "WORDS")]
        words: Vec<String>,
    },
    /// Delete every SA.
    Flush,
}

/// Runs `rampart sa`.
pub fn run(args: SaArgs) -> Result<(), CmdError> {
    match args.action {
        SaAction::Add { words } => add(&args.db, &words),
        SaAction::List { show_keys, stats } => list(&args.db, show_keys, stats),
        SaAction::Delete { words } => delete(&args.db, &words),
        SaAction::Flush => {
            args.db.writer()?.flush_sas();
            Ok(())
        }
    }
}

/// An algorithm clause: keyword, name, key, and the truncation / ICV length when given.
struct Algo {
    keyword: &'static str,
    name: String,
    key: Zeroizing<Vec<u8>>,
    bits: Option<u32>,
}

/// One `sel` clause.
struct Sel {
    src: (IpAddr, IpAddr),
    dst: (IpAddr, IpAddr),
    proto: u8,
    sport: PortRange,
    dport: PortRange,
}

/// `sa add` as parsed, before the direction is known.
#[derive(Default)]
struct SaAdd {
    proto: Option<Protocol>,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    spi: Option<u32>,
    dir: Option<Direction>,
    mode: Option<Mode>,
    reqid: Option<u32>,
    replay_window: Option<u32>,
    esn: bool,
    enc: Option<Algo>,
    auth: Option<Algo>,
    aead: Option<Algo>,
    encap: Option<(u16, u16)>,
    sels: Vec<Sel>,
    lifetimes: Lifetimes,
}

const ADD_WORDS: &str = "src dst proto spi dir mode reqid replay-window flag enc auth auth-trunc aead encap sel limit";

fn algo(t: &mut Tokens<'_>, keyword: &'static str, with_bits: bool) -> Result<Algo, ArgError> {
    let name = t.value(keyword, "an algorithm name")?.to_string();
    let key = xfrm::key(keyword, t.value(keyword, "a key (0x and hex digits)")?)?;
    let bits = if with_bits {
        let what = if keyword == "aead" { "an ICV length in bits" } else { "a truncation length in bits" };
        Some(xfrm::number32(keyword, t.value(keyword, what)?)?)
    } else {
        None
    };
    Ok(Algo { keyword, name, key, bits })
}

fn parse_add(words: &[String]) -> Result<SaAdd, ArgError> {
    let mut t = Tokens::new(words);
    let mut a = SaAdd::default();
    while let Some(w) = t.next_word() {
        match w {
            "src" => once(&mut a.src, w, xfrm::address(w, t.value(w, "an address")?)?)?,
            "dst" => once(&mut a.dst, w, xfrm::address(w, t.value(w, "an address")?)?)?,
            "proto" => {
                let v = t.value(w, "esp or ah")?;
                if v == "comp" {
                    return Err(ArgError::Unsupported { word: v.into(), why: "IPComp is not implemented".into() });
                }
                once(&mut a.proto, w, xfrm::choice(w, v, [("esp", Protocol::Esp), ("ah", Protocol::Ah)])?)?;
            }
            "spi" => once(&mut a.spi, w, parse_spi(&mut t, w)?)?,
            "dir" => {
                let v = t.value(w, "in or out")?;
                once(&mut a.dir, w, xfrm::choice(w, v, [("in", Direction::Inbound), ("out", Direction::Outbound)])?)?;
            }
            "mode" => once(&mut a.mode, w, parse_mode(&mut t, w)?)?,
            "reqid" => once(&mut a.reqid, w, xfrm::number32(w, t.value(w, "a number")?)?)?,
            "replay-window" => once(&mut a.replay_window, w, parse_replay_window(&mut t, w)?)?,
            "flag" => parse_flags(&mut t, w, &mut a)?,
            "enc" => once(&mut a.enc, w, algo(&mut t, "enc", false)?)?,
            "auth" => once(&mut a.auth, w, algo(&mut t, "auth", false)?)?,
            "auth-trunc" => once(&mut a.auth, "auth", algo(&mut t, "auth-trunc", true)?)?,
            "aead" => once(&mut a.aead, w, algo(&mut t, "aead", true)?)?,
            "comp" => return Err(ArgError::Unsupported { word: w.into(), why: "IPComp is not implemented".into() }),
            "encap" => once(&mut a.encap, w, parse_encap(&mut t, w)?)?,
            "sel" => a.sels.push(parse_sel(&mut t, w)?),
            "limit" => parse_limit(&mut t, w, &mut a.lifetimes)?,
            "mark" | "seq" | "replay-seq" | "replay-oseq" | "replay-seq-hi" | "replay-oseq-hi" | "coa" | "ctx"
            | "extra-flag" | "output-mark" | "if_id" | "offload" | "tfcpad" => {
                return Err(ArgError::Unsupported { word: w.into(), why: "not implemented by Rampart".into() });
            }
            _ => return Err(ArgError::Unknown { word: w.into(), context: "sa add", expected: ADD_WORDS }),
        }
    }
    Ok(a)
}

/// `spi N`: never 0.
fn parse_spi(t: &mut Tokens<'_>, w: &str) -> Result<u32, ArgError> {
    let v = t.value(w, "an SPI such as 0x1000")?;
    let spi = xfrm::number32(w, v)?;
    //= https://www.rfc-editor.org/rfc/rfc4303#section-2.1
    //# The SPI value of zero (0) is reserved for local, implementation-
    //# specific use and MUST NOT be sent on the wire.
    if spi == 0 {
        return Err(ArgError::Bad {
            after: w.into(),
            word: v.into(),
            why: "SPI 0 is reserved (RFC 4303 section 2.1)".into(),
        });
    }
    Ok(spi)
}

/// `mode tunnel|transport` (xfrm's other modes are refused by name).
fn parse_mode(t: &mut Tokens<'_>, w: &str) -> Result<Mode, ArgError> {
    let v = t.value(w, "transport or tunnel")?;
    if matches!(v, "beet" | "ro" | "in_trigger") {
        return Err(ArgError::Unsupported { word: v.into(), why: "modes are tunnel and transport".into() });
    }
    xfrm::choice(w, v, [("tunnel", Mode::Tunnel), ("transport", Mode::Transport)])
}

/// `replay-window N`, at most [`MAX_REPLAY_WINDOW`].
fn parse_replay_window(t: &mut Tokens<'_>, w: &str) -> Result<u32, ArgError> {
    let v = t.value(w, "a number of packets")?;
    let n = xfrm::number32(w, v)?;
    if n > MAX_REPLAY_WINDOW {
        return Err(ArgError::Bad { after: w.into(), word: v.into(), why: format!("larger than {MAX_REPLAY_WINDOW}") });
    }
    Ok(n)
}

/// `flag esn ...`: the only SA flag Rampart has; xfrm's others are refused by name.
fn parse_flags(t: &mut Tokens<'_>, w: &str, a: &mut SaAdd) -> Result<(), ArgError> {
    let mut any = false;
    while let Some(f) = t.peek() {
        match f {
            "esn" => a.esn = true,
            "noecn" | "decap-dscp" | "nopmtudisc" | "wildrecv" | "icmp" | "af-unspec" | "align4" => {
                return Err(ArgError::Unsupported { word: f.into(), why: "the only SA flag is 'esn'".into() });
            }
            _ => break,
        }
        t.next_word();
        any = true;
    }
    if !any {
        return Err(ArgError::Missing { after: w.into(), what: "a flag (esn)" });
    }
    Ok(())
}

/// `encap espinudp SPORT DPORT OADDR`: the ports (the original address is accepted, unused).
fn parse_encap(t: &mut Tokens<'_>, w: &str) -> Result<(u16, u16), ArgError> {
    let kind = t.value(w, "espinudp")?;
    if kind != "espinudp" {
        return Err(ArgError::Unsupported {
            word: kind.into(),
            why: "the only encapsulation is espinudp (RFC 3948 UDP port 4500)".into(),
        });
    }
    let mut port = |what: &'static str| -> Result<u16, ArgError> {
        let v = t.value(w, what)?;
        v.parse::<u16>().map_err(|_| ArgError::Bad { after: w.into(), word: v.into(), why: "not a port".into() })
    };
    let sport = port("a source port")?;
    let dport = port("a destination port")?;
    xfrm::address(w, t.value(w, "an original address such as 0.0.0.0")?)?;
    Ok((sport, dport))
}

/// `sel src .. dst .. [proto ..] [sport ..] [dport ..]`; a side left out is every address of
/// the other side's family.
fn parse_sel(t: &mut Tokens<'_>, w: &str) -> Result<Sel, ArgError> {
    let s = xfrm::selector(t, "sel")?;
    if s.src.is_none() && s.dst.is_none() {
        return Err(ArgError::Missing { after: w.into(), what: "src and/or dst" });
    }
    let any_like = |other: Option<&str>| -> Result<(IpAddr, IpAddr), ArgError> {
        let v6 = match other {
            Some(o) => xfrm::range("sel", o)?.0.is_ipv6(),
            None => false,
        };
        let any = TrafficSelector::any(v6);
        Ok((any.start, any.end))
    };
    let src = match s.src {
        Some(v) => xfrm::range("sel src", v)?,
        None => any_like(s.dst)?,
    };
    let dst = match s.dst {
        Some(v) => xfrm::range("sel dst", v)?,
        None => any_like(s.src)?,
    };
    if src.0.is_ipv4() != dst.0.is_ipv4() {
        return Err(ArgError::Invalid("sel: src and dst are of different families".into()));
    }
    Ok(Sel {
        src,
        dst,
        proto: s.proto.unwrap_or(0),
        sport: s.sport.unwrap_or(PortRange::ANY),
        dport: s.dport.unwrap_or(PortRange::ANY),
    })
}

/// `limit KIND N`: one of the six lifetimes.
fn parse_limit(t: &mut Tokens<'_>, w: &str, l: &mut Lifetimes) -> Result<(), ArgError> {
    let kind = t.value(w, "time-soft, time-hard, byte-soft, byte-hard, packet-soft or packet-hard")?;
    let v = xfrm::number(kind, t.value(kind, "a number")?)?;
    match kind {
        "time-soft" => l.soft_seconds = v,
        "time-hard" => l.hard_seconds = v,
        "byte-soft" => l.soft_bytes = v,
        "byte-hard" => l.hard_bytes = v,
        "packet-soft" => l.soft_packets = v,
        "packet-hard" => l.hard_packets = v,
        "time-use-soft" | "time-use-hard" => {
            return Err(ArgError::Unsupported { word: kind.into(), why: "lifetimes count from installation".into() });
        }
        _ => return Err(ArgError::Bad { after: w.into(), word: kind.into(), why: "unknown limit".into() }),
    }
    Ok(())
}

fn policy_err(a: &Algo, err: PolicyError) -> ArgError {
    ArgError::Policy { after: a.keyword.into(), word: a.name.clone(), err }
}

fn key_len_err(a: &Algo, why: String) -> ArgError {
    ArgError::Bad { after: a.keyword.into(), word: a.name.clone(), why }
}

/// The suite named by the algorithm clauses (policy-checked), with the key lengths checked.
fn suite_of(a: &SaAdd) -> Result<Suite, ArgError> {
    if a.proto == Some(Protocol::Ah) {
        return ah_suite(a);
    }
    if let Some(aead) = &a.aead {
        if let Some(other) = a.enc.as_ref().or(a.auth.as_ref()) {
            return Err(ArgError::Invalid(format!(
                "'aead' carries its own integrity and encryption: drop '{}'",
                other.keyword
            )));
        }
        return aead_suite(aead);
    }
    let Some(enc) = &a.enc else {
        return Err(ArgError::Required { what: "an algorithm: 'aead ...', or 'enc ...' with 'auth-trunc ...'" });
    };
    let encryption = encryption_of(enc)?;
    let integrity = match &a.auth {
        None => Integrity::None,
        Some(auth) => integrity_of(auth)?,
    };
    if matches!(integrity, Integrity::AesGmac { .. }) {
        return Err(ArgError::Invalid(
            "rfc4543(gcm(aes)) as 'auth' is AH's AES-GMAC (RFC 4543): use 'proto ah' (ESP with AES-GMAC is not implemented)"
                .into(),
        ));
    }
    let suite = Suite::new(encryption, integrity).map_err(|e| policy_err(a.auth.as_ref().unwrap_or(enc), e))?;
    if let Some(auth) = &a.auth
        && auth.key.len() != suite.integrity_key_len()
    {
        return Err(key_len_err(
            auth,
            format!("key is {} bytes; RFC 4868 keys are {} bytes", auth.key.len(), suite.integrity_key_len()),
        ));
    }
    Ok(suite)
}

/// An AH SA's suite: one `auth` / `auth-trunc` clause, no encryption (RFC 4302).
fn ah_suite(a: &SaAdd) -> Result<Suite, ArgError> {
    if let Some(other) = a.aead.as_ref().or(a.enc.as_ref()) {
        return Err(ArgError::Invalid(format!("AH does not encrypt: drop '{}'", other.keyword)));
    }
    let auth =
        a.auth.as_ref().ok_or(ArgError::Required { what: "an integrity algorithm: 'auth-trunc NAME KEY BITS'" })?;
    let suite = Suite::ah(integrity_of(auth)?).map_err(|e| policy_err(auth, e))?;
    if auth.key.len() != suite.integrity_key_len() {
        return Err(key_len_err(
            auth,
            format!("key is {} bytes; {} needs {}", auth.key.len(), suite.integrity_name(), suite.integrity_key_len()),
        ));
    }
    Ok(suite)
}

/// `aead NAME KEY ICV-BITS`: AES-GCM-16 or ChaCha20-Poly1305, key length checked.
fn aead_suite(aead: &Algo) -> Result<Suite, ArgError> {
    let icv = aead.bits.unwrap_or(0);
    let enc = match aead.name.to_ascii_lowercase().as_str() {
        "rfc4106(gcm(aes))" => {
            let bits = match aead.key.len() {
                20 => 128,
                28 => 192,
                36 => 256,
                n => {
                    return Err(key_len_err(
                        aead,
                        format!("key is {n} bytes; AES-GCM takes 16 or 32 bytes of key and 4 of salt"),
                    ));
                }
            };
            Encryption::AesGcm16 { key_bits: bits }
        }
        "rfc7539esp(chacha20,poly1305)" => Encryption::ChaCha20Poly1305,
        _ => {
            return Err(ArgError::Unsupported {
                word: aead.name.clone(),
                why: "AEADs are rfc4106(gcm(aes)) and rfc7539esp(chacha20,poly1305)".into(),
            });
        }
    };
    if icv != 128 {
        return Err(ArgError::Bad {
            after: "aead".into(),
            word: icv.to_string(),
            why: "the ICV is 128 bits (ENCR_AES_GCM_16, RFC 7634)".into(),
        });
    }
    let suite = Suite::new(enc, Integrity::None).map_err(|e| policy_err(aead, e))?;
    if aead.key.len() != suite.encryption_key_len() {
        return Err(key_len_err(
            aead,
            format!("key is {} bytes; {} needs {}", aead.key.len(), suite, suite.encryption_key_len()),
        ));
    }
    Ok(suite)
}

/// `enc NAME KEY`: AES-CBC or NULL; DES, 3DES and Blowfish are refused with the policy's reason.
fn encryption_of(enc: &Algo) -> Result<Encryption, ArgError> {
    // Forbidden algorithms are refused by the policy itself, with its reason.
    let forbidden_enc = |id| refuse(enc, Suite::from_ikev2(id, None, integ_id::HMAC_SHA2_256_128));
    let encryption = match enc.name.to_ascii_lowercase().as_str() {
        "cbc(aes)" | "aes" => match enc.key.len() {
            16 => Encryption::AesCbc { key_bits: 128 },
            24 => Encryption::AesCbc { key_bits: 192 },
            32 => Encryption::AesCbc { key_bits: 256 },
            n => return Err(key_len_err(enc, format!("key is {n} bytes; AES-CBC takes 16, 24 or 32"))),
        },
        "cipher_null" | "ecb(cipher_null)" => {
            if !enc.key.is_empty() {
                return Err(key_len_err(enc, "takes no key: write \"\"".into()));
            }
            Encryption::Null
        }
        "des" | "cbc(des)" | "ecb(des)" => {
            return Err(forbidden_enc(encr_id::DES));
        }
        "des3_ede" | "cbc(des3_ede)" | "3des" => {
            return Err(forbidden_enc(encr_id::TRIPLE_DES));
        }
        "blowfish" | "cbc(blowfish)" => {
            return Err(forbidden_enc(encr_id::BLOWFISH));
        }
        _ => {
            return Err(ArgError::Unsupported {
                word: enc.name.clone(),
                why: "encryption algorithms are cbc(aes) and cipher_null (or use aead)".into(),
            });
        }
    };
    Ok(encryption)
}

/// `auth-trunc NAME KEY BITS`: HMAC-SHA-2 with RFC 4868's truncation; MD5 and SHA-1 are refused
/// with the policy's reason.
fn integrity_of(auth: &Algo) -> Result<Integrity, ArgError> {
    let forbidden = |id| refuse(auth, Suite::from_ikev2(encr_id::AES_CBC, Some(128), id));
    let (integ, trunc) = match auth.name.to_ascii_lowercase().as_str() {
        "hmac(sha256)" | "sha256" => {
            if auth.bits.is_none() {
                return Err(ArgError::Unsupported {
                    word: format!("auth {}", auth.name),
                    why: "plain 'auth' means 96-bit truncation in Linux, which RFC 4868 does not define: \
                          use auth-trunc 'hmac(sha256)' KEY 128"
                        .into(),
                });
            }
            (Integrity::HmacSha256_128, 128)
        }
        "hmac(sha384)" | "sha384" => (Integrity::HmacSha384_192, 192),
        "hmac(sha512)" | "sha512" => (Integrity::HmacSha512_256, 256),
        // AES-GMAC (RFC 4543), AH only: the key carries a 4-byte salt, as for AES-GCM.
        "rfc4543(gcm(aes))" => match auth.key.len() {
            20 => (Integrity::AesGmac { key_bits: 128 }, 128),
            36 => (Integrity::AesGmac { key_bits: 256 }, 128),
            n => {
                return Err(key_len_err(
                    auth,
                    format!("key is {n} bytes; AES-GMAC takes 16 or 32 bytes of key and 4 of salt"),
                ));
            }
        },
        "digest_null" => (Integrity::None, 0),
        "hmac(md5)" | "md5" => {
            return Err(forbidden(integ_id::HMAC_MD5_96));
        }
        "hmac(sha1)" | "sha1" => {
            return Err(forbidden(integ_id::HMAC_SHA1_96));
        }
        _ => {
            return Err(ArgError::Unsupported {
                word: auth.name.clone(),
                why: "integrity algorithms are hmac(sha256), hmac(sha384), hmac(sha512), and for AH rfc4543(gcm(aes))"
                    .into(),
            });
        }
    };
    if let Some(bits) = auth.bits
        && bits != trunc
    {
        return Err(ArgError::Bad {
            after: auth.keyword.into(),
            word: bits.to_string(),
            why: format!("{} is truncated to {trunc} bits (RFC 4868, RFC 4543)", auth.name),
        });
    }
    Ok(integ)
}

/// The policy's refusal of a forbidden algorithm (had the policy let it through, Rampart would
/// still not implement it).
fn refuse(a: &Algo, checked: Result<Suite, PolicyError>) -> ArgError {
    match checked {
        Err(e) => policy_err(a, e),
        Ok(_) => ArgError::Unsupported { word: a.name.clone(), why: "not implemented by Rampart".into() },
    }
}

fn is_local(a: IpAddr) -> bool {
    std::net::UdpSocket::bind((a, 0)).is_ok()
}

fn to_config(a: SaAdd) -> Result<(SaConfig, u32), ArgError> {
    let src = a.src.ok_or(ArgError::Required { what: "'src ADDR'" })?;
    let dst = a.dst.ok_or(ArgError::Required { what: "'dst ADDR'" })?;
    let spi = a.spi.ok_or(ArgError::Required { what: "'spi SPI'" })?;
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(ArgError::Invalid(format!("src {src} and dst {dst} are of different families")));
    }
    let direction = match a.dir {
        Some(d) => d,
        None => match (is_local(dst), is_local(src)) {
            (true, false) => Direction::Inbound,
            (false, true) => Direction::Outbound,
            (true, true) => {
                return Err(ArgError::Invalid(format!(
                    "both {src} and {dst} are addresses of this host: add 'dir in' or 'dir out'"
                )));
            }
            (false, false) => {
                return Err(ArgError::Invalid(format!(
                    "neither {src} nor {dst} is an address of this host: add 'dir in' (we receive) or 'dir out' (we send)"
                )));
            }
        },
    };
    let suite = suite_of(&a)?;
    let inbound = direction == Direction::Inbound;
    let (local, remote) = if inbound { (dst, src) } else { (src, dst) };
    let mut local_ts = Vec::new();
    let mut remote_ts = Vec::new();
    for s in &a.sels {
        let ts = |(start, end): (IpAddr, IpAddr), ports: PortRange| TrafficSelector {
            protocol: s.proto,
            start,
            end,
            start_port: ports.lo,
            end_port: ports.hi,
        };
        let (src_ts, dst_ts) = (ts(s.src, s.sport), ts(s.dst, s.dport));
        if inbound {
            remote_ts.push(src_ts);
            local_ts.push(dst_ts);
        } else {
            local_ts.push(src_ts);
            remote_ts.push(dst_ts);
        }
    }
    let max = rampart_sadb::MAX_TS_PER_SIDE;
    if a.sels.len() > max {
        return Err(ArgError::Invalid(format!("{} 'sel' clauses: an SA holds at most {max}", a.sels.len())));
    }
    let encap = a.encap.map(|(sport, dport)| {
        if inbound {
            UdpEncap { local_port: dport, remote_port: sport }
        } else {
            UdpEncap { local_port: sport, remote_port: dport }
        }
    });
    let protocol = a.proto.unwrap_or(Protocol::Esp);
    //= https://www.rfc-editor.org/rfc/rfc3948#section-1
    //# AH ... cannot be used with NAT traversal
    if protocol == Protocol::Ah && encap.is_some() {
        return Err(ArgError::Invalid(
            "AH cannot cross NAT: its ICV covers the addresses a NAT rewrites (drop 'encap', or use ESP)".into(),
        ));
    }
    let (encryption_key, integrity_key) = match (a.aead, a.enc, a.auth) {
        (Some(aead), _, _) => (aead.key, Zeroizing::new(Vec::new())),
        (None, None, Some(auth)) if protocol == Protocol::Ah => (Zeroizing::new(Vec::new()), auth.key),
        (None, Some(enc), auth) => (enc.key, auth.map(|a| a.key).unwrap_or_default()),
        (None, None, _) => return Err(ArgError::Required { what: "an algorithm" }),
    };
    let cfg = SaConfig {
        protocol,
        spi,
        direction,
        suite,
        encryption_key,
        integrity_key,
        mode: a.mode.unwrap_or(Mode::Transport),
        local,
        remote,
        encap,
        esn: a.esn,
        replay_window: a.replay_window.unwrap_or(DEFAULT_REPLAY_WINDOW),
        local_ts,
        remote_ts,
        lifetimes: a.lifetimes,
    };
    Ok((cfg, a.reqid.unwrap_or(0)))
}

fn add(db: &DbArgs, words: &[String]) -> Result<(), CmdError> {
    let (cfg, reqid) = parse_add(words).and_then(to_config).map_err(|e| CmdError(format!("sa add: {e}")))?;
    let mut w = db.writer()?;
    let id = w.install_sa(&cfg, reqid, rampart_sadb::clock::now()).map_err(|e| CmdError(format!("sa add: {e}")))?;
    if cfg.direction == Direction::Outbound {
        // Make-before-break: the newest outbound SA serves the policies of its template.
        w.bind_matching_policies(id)?;
    }
    Ok(())
}

/// The `sa add` line of a record.
fn format_sa(rec: &SaRecord, show_keys: bool) -> String {
    let inbound = rec.direction() == Direction::Inbound;
    let (src, dst) = if inbound { (rec.remote(), rec.local()) } else { (rec.local(), rec.remote()) };
    let mut s = format!(
        "src {src} dst {dst} proto {} spi {:#010x} dir {} mode {}",
        rec.protocol().name(),
        rec.spi(),
        if inbound { "in" } else { "out" },
        match rec.mode() {
            Mode::Tunnel => "tunnel",
            Mode::Transport => "transport",
        }
    );
    if rec.reqid() != 0 {
        s += &format!(" reqid {}", rec.reqid());
    }
    s += &format!(" replay-window {}", rec.replay_window());
    if rec.esn() {
        s += " flag esn";
    }
    let key = |k: &[u8]| if show_keys { xfrm::format_key(k) } else { "<hidden>".to_string() };
    match rec.suite() {
        Ok(suite) => {
            let ek = rec.encryption_key();
            match suite.encryption() {
                // AH: integrity only, no encryption clause.
                Encryption::Null if rec.protocol() == Protocol::Ah => {}
                Encryption::AesGcm16 { .. } => s += &format!(" aead 'rfc4106(gcm(aes))' {} 128", key(ek)),
                Encryption::ChaCha20Poly1305 => s += &format!(" aead 'rfc7539esp(chacha20,poly1305)' {} 128", key(ek)),
                Encryption::AesCbc { .. } => s += &format!(" enc 'cbc(aes)' {}", key(ek)),
                Encryption::Null => s += " enc cipher_null \"\"",
            }
            let ik = rec.integrity_key();
            match suite.integrity() {
                Integrity::None => {}
                Integrity::HmacSha256_128 => s += &format!(" auth-trunc 'hmac(sha256)' {} 128", key(ik)),
                Integrity::HmacSha384_192 => s += &format!(" auth-trunc 'hmac(sha384)' {} 192", key(ik)),
                Integrity::HmacSha512_256 => s += &format!(" auth-trunc 'hmac(sha512)' {} 256", key(ik)),
                Integrity::AesGmac { .. } => s += &format!(" auth-trunc 'rfc4543(gcm(aes))' {} 128", key(ik)),
            }
        }
        Err(e) => s += &format!(" # suite refused: {e}"),
    }
    if let Some(e) = rec.encap() {
        let (sport, dport) = if inbound { (e.remote_port, e.local_port) } else { (e.local_port, e.remote_port) };
        let any = if src.is_ipv4() { "0.0.0.0" } else { "::" };
        s += &format!(" encap espinudp {sport} {dport} {any}");
    }
    let (src_ts, dst_ts): (Vec<TrafficSelector>, Vec<TrafficSelector>) = if inbound {
        (rec.remote_ts().collect(), rec.local_ts().collect())
    } else {
        (rec.local_ts().collect(), rec.remote_ts().collect())
    };
    // IKEv2 selectors are the product of both sides: pair them up, repeating the last of the
    // shorter side (which leaves the product unchanged).
    for i in 0..src_ts.len().max(dst_ts.len()) {
        let (Some(a), Some(b)) = (src_ts.get(i).or(src_ts.last()), dst_ts.get(i).or(dst_ts.last())) else { break };
        s += &format!(" sel src {} dst {}", xfrm::format_range(a.start, a.end), xfrm::format_range(b.start, b.end));
        if a.protocol != 0 {
            s += &format!(" proto {}", xfrm::protocol_name(a.protocol));
            let icmp = matches!(a.protocol, 1 | 58);
            let (sw, dw) = if icmp { ("type", "code") } else { ("sport", "dport") };
            let (sp, dp) =
                (PortRange { lo: a.start_port, hi: a.end_port }, PortRange { lo: b.start_port, hi: b.end_port });
            if !sp.is_any() {
                s += &format!(" {sw} {}", xfrm::format_ports(sp));
            }
            if !dp.is_any() {
                s += &format!(" {dw} {}", xfrm::format_ports(dp));
            }
        }
    }
    let l = rec.lifetimes();
    for (name, v) in [
        ("time-soft", l.soft_seconds),
        ("time-hard", l.hard_seconds),
        ("byte-soft", l.soft_bytes),
        ("byte-hard", l.hard_bytes),
        ("packet-soft", l.soft_packets),
        ("packet-hard", l.hard_packets),
    ] {
        if v != 0 {
            s += &format!(" limit {name} {v}");
        }
    }
    s
}

fn list(db: &DbArgs, show_keys: bool, stats: bool) -> Result<(), CmdError> {
    let r = db.reader()?;
    let snap = r.snapshot();
    for meta in snap.sas() {
        let Ok(rec) = r.read_sa_id(meta.id) else { continue };
        println!("{}", format_sa(&rec, show_keys));
        if stats {
            let u = r.usage(meta.id).unwrap_or_default();
            println!(
                "#\tslot {} installed {} bytes {} packets {} last-use {} seq-reserved {} seq-used {}",
                meta.id.slot, meta.install_time, u.bytes, u.packets, u.last_use, u.seq_reserved, u.seq_used
            );
        }
    }
    Ok(())
}

fn delete(db: &DbArgs, words: &[String]) -> Result<(), CmdError> {
    let (spi, dst, src) = parse_delete(words).map_err(|e| CmdError(format!("sa delete: {e}")))?;
    let mut w = db.writer()?;
    let sa =
        w.find_sa(spi, dst).ok_or_else(|| CmdError(format!("sa delete: no SA with spi {spi:#010x} and dst {dst}")))?;
    let sa_src = if sa.direction == Direction::Inbound { sa.remote } else { sa.local };
    if let Some(src) = src
        && src != sa_src
    {
        return Err(CmdError(format!(
            "sa delete: the SA with spi {spi:#010x} and dst {dst} has src {sa_src}, not {src}"
        )));
    }
    w.delete_sa(sa.id)?;
    Ok(())
}

/// `[src ADDR] dst ADDR [proto esp|ah] spi SPI` as (spi, dst, src).
fn parse_delete(words: &[String]) -> Result<(u32, IpAddr, Option<IpAddr>), ArgError> {
    let mut t = Tokens::new(words);
    let (mut src, mut dst, mut spi) = (None, None, None);
    while let Some(w) = t.next_word() {
        match w {
            "src" => once(&mut src, w, xfrm::address(w, t.value(w, "an address")?)?)?,
            "dst" => once(&mut dst, w, xfrm::address(w, t.value(w, "an address")?)?)?,
            "spi" => once(&mut spi, w, xfrm::number32(w, t.value(w, "an SPI")?)?)?,
            "proto" => {
                let v = t.value(w, "esp or ah")?;
                if v == "comp" {
                    return Err(ArgError::Unsupported { word: v.into(), why: "IPComp is not implemented".into() });
                }
                // An SA is found by SPI and destination, whatever its protocol.
                xfrm::choice(w, v, [("esp", Protocol::Esp), ("ah", Protocol::Ah)])?;
            }
            _ => return Err(ArgError::Unknown { word: w.into(), context: "sa delete", expected: "src dst proto spi" }),
        }
    }
    let dst = dst.ok_or(ArgError::Required { what: "'dst ADDR'" })?;
    let spi = spi.ok_or(ArgError::Required { what: "'spi SPI'" })?;
    Ok((spi, dst, src))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words as a shell would pass them (`""` is an empty word).
    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(|w| w.replace('"', "")).collect()
    }

    fn err(s: &str) -> String {
        match parse_add(&words(s)).and_then(to_config) {
            Ok(_) => panic!("accepted: {s}"),
            Err(e) => e.to_string(),
        }
    }

    const GCM: &str = "0x0102030405060708090a0b0c0d0e0f1011121314";

    #[test]
    fn aead_gcm_tunnel_with_encap_and_selector() {
        let (cfg, reqid) = to_config(
            parse_add(&words(&format!(
                "src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x1000 mode tunnel dir out reqid 5 aead rfc4106(gcm(aes)) {GCM} 128 \
                 encap espinudp 4500 4501 0.0.0.0 replay-window 2048 flag esn sel src 198.18.1.0/24 dst 198.18.2.0/24 proto tcp dport 443"
            )))
            .unwrap(),
        )
        .unwrap();
        assert_eq!(reqid, 5);
        assert_eq!(
            (cfg.spi, cfg.direction, cfg.mode, cfg.esn, cfg.replay_window),
            (0x1000, Direction::Outbound, Mode::Tunnel, true, 2048)
        );
        assert_eq!(cfg.suite.name(), "aes128gcm16");
        assert_eq!(cfg.encap, Some(UdpEncap { local_port: 4500, remote_port: 4501 }));
        assert_eq!(cfg.local_ts[0].to_string(), "198.18.1.0-198.18.1.255[6/0-65535]");
        assert_eq!(cfg.remote_ts[0].to_string(), "198.18.2.0-198.18.2.255[6/443-443]");
        // Inbound: the sides swap.
        let (cfg, _) = to_config(
            parse_add(&words(&format!(
                "src 192.0.2.2 dst 192.0.2.1 proto esp spi 0x1001 dir in aead rfc4106(gcm(aes)) {GCM} 128 \
                 encap espinudp 4501 4500 0.0.0.0 sel src 198.18.2.0/24 dst 198.18.1.0/24"
            )))
            .unwrap(),
        )
        .unwrap();
        assert_eq!((cfg.local, cfg.remote), ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap()));
        assert_eq!(cfg.encap, Some(UdpEncap { local_port: 4500, remote_port: 4501 }));
        assert_eq!(cfg.local_ts[0].to_string(), "198.18.1.0-198.18.1.255");
    }

    #[test]
    fn ah_sas_in_the_xfrm_grammar() {
        let key32 = format!("0x{}", "ab".repeat(32));
        let (cfg, _) = to_config(
            parse_add(&words(&format!(
                "src 192.0.2.1 dst 192.0.2.2 proto ah spi 0x3000 dir out mode tunnel auth-trunc hmac(sha256) {key32} 128 \
                 sel src 198.18.1.0/24 dst 198.18.2.0/24"
            )))
            .unwrap(),
        )
        .unwrap();
        assert_eq!(cfg.protocol, Protocol::Ah);
        assert_eq!(cfg.suite.integrity(), Integrity::HmacSha256_128);
        assert_eq!(cfg.suite.encryption(), Encryption::Null);
        assert!(cfg.encryption_key.is_empty() && cfg.integrity_key.len() == 32);
        let gmac = format!("0x{}", "cd".repeat(36));
        let (cfg, _) = to_config(
            parse_add(&words(&format!(
                "src 192.0.2.1 dst 192.0.2.2 proto ah spi 0x3001 dir out auth rfc4543(gcm(aes)) {gmac}"
            )))
            .unwrap(),
        )
        .unwrap();
        assert_eq!(cfg.suite.integrity(), Integrity::AesGmac { key_bits: 256 });
        let refused = |line: String| {
            parse_add(&words(&line)).and_then(to_config).err().map(|e| e.to_string()).unwrap_or_default()
        };
        // MD5 and SHA-1 with the RFC's reason; encryption, NAT-T and GMAC for ESP refused.
        let md5 =
            refused(format!("src 192.0.2.1 dst 192.0.2.2 proto ah spi 1 dir out auth hmac(md5) 0x{}", "00".repeat(16)));
        assert!(md5.contains("MD5") && md5.contains("8221"), "{md5}");
        let sha1 = refused(format!(
            "src 192.0.2.1 dst 192.0.2.2 proto ah spi 1 dir out auth hmac(sha1) 0x{}",
            "00".repeat(20)
        ));
        assert!(sha1.contains("SHA-2"), "{sha1}");
        let enc =
            refused(format!("src 192.0.2.1 dst 192.0.2.2 proto ah spi 1 dir out aead rfc4106(gcm(aes)) {GCM} 128"));
        assert!(enc.contains("AH does not encrypt"), "{enc}");
        let natt = refused(format!(
            "src 192.0.2.1 dst 192.0.2.2 proto ah spi 1 dir out auth-trunc hmac(sha256) {key32} 128 encap espinudp 4500 4500 0.0.0.0"
        ));
        assert!(natt.contains("NAT"), "{natt}");
        let gmac_esp = refused(format!(
            "src 192.0.2.1 dst 192.0.2.2 proto esp spi 1 dir out enc cipher_null \"\" auth rfc4543(gcm(aes)) {gmac}"
        ));
        assert!(gmac_esp.contains("AH"), "{gmac_esp}");
        let none = refused("src 192.0.2.1 dst 192.0.2.2 proto ah spi 1 dir out".into());
        assert!(none.contains("integrity"), "{none}");
    }

    #[test]
    fn bad_words_are_named() {
        let base = format!("src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x1000 dir out aead rfc4106(gcm(aes)) {GCM} 128");
        assert!(err(&format!("{base} frobnicate 3")).contains("'frobnicate'"));
        assert!(err(&base.replace("0x1000", "0xZZ")).contains("spi '0xZZ'"));
        assert!(err(&base.replace("192.0.2.2", "192.0.2.300")).contains("dst '192.0.2.300'"));
        assert!(err(&base.replace("dir out", "dir sideways")).contains("dir 'sideways'"));
        assert!(err(&base.replace("proto esp", "proto comp")).contains("IPComp"));
        // An AH SA takes no AEAD.
        assert!(err(&base.replace("proto esp", "proto ah")).contains("AH does not encrypt"));
        assert!(err(&base.replace(" 128", " 96")).contains("aead '96'"));
        assert!(err(&format!("{base} flag noecn")).contains("'noecn'"));
        assert!(err(&format!("{base} mark 7")).contains("'mark'"));
        assert!(err(&format!("{base} spi 0x2")).contains("'spi' given twice"));
        assert!(err(&base.replace("0x1000", "0")).contains("RFC 4303"));
        assert!(err(&format!("{base} replay-window 100000")).contains("replay-window '100000'"));
        assert!(err("src 192.0.2.1 dst 192.0.2.2 proto esp spi 1 dir out").contains("missing an algorithm"));
        assert!(err("src 192.0.2.1 dst 192.0.2.2 proto esp spi").contains("'spi' needs a value"));
        let e = err(&base.replace(GCM, "0x0102"));
        assert!(e.contains("aead 'rfc4106(gcm(aes))'") && e.contains("2 bytes"), "{e}");
    }

    #[test]
    fn forbidden_algorithms_get_the_policy_message() {
        let base = "src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x1000 dir out";
        let sha = format!("auth-trunc hmac(sha256) 0x{} 128", "11".repeat(32));
        for (algo, needle) in [
            (format!("enc cbc(des) 0x0102030405060708 {sha}"), "DES is broken"),
            (format!("enc cbc(des3_ede) 0x{} {sha}", "01".repeat(24)), "3DES has a 64-bit block"),
            (format!("enc des3_ede 0x{} {sha}", "01".repeat(24)), "3DES"),
            (format!("enc cbc(blowfish) 0x{} {sha}", "01".repeat(16)), "Blowfish"),
            (format!("enc cbc(aes) 0x{} auth hmac(md5) 0x{}", "01".repeat(16), "02".repeat(16)), "MD5 is broken"),
            (format!("enc cbc(aes) 0x{} auth hmac(sha1) 0x{}", "01".repeat(16), "02".repeat(20)), "SHA-2"),
            (format!("enc cbc(aes) 0x{}", "01".repeat(16)), "encryption without integrity is refused"),
            ("enc cipher_null \"\" auth digest_null \"\"".to_string(), "encryption without integrity"),
        ] {
            let e = err(&format!("{base} {algo}"));
            assert!(e.contains(needle), "{algo}: {e}");
            assert!(e.contains("refused") || e.contains("broken"), "{algo}: {e}");
        }
        let e = err(&format!("{base} enc cbc(des) 0x0102030405060708 {sha}"));
        assert!(e.starts_with("enc 'cbc(des)'"), "{e}");
        let e = err(&format!("{base} enc cbc(aes) 0x{} auth hmac(sha256) 0x{}", "01".repeat(16), "02".repeat(32)));
        assert!(e.contains("auth-trunc 'hmac(sha256)' KEY 128"), "{e}");
    }

    #[test]
    fn every_suite_parses() {
        let base = "src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x1000 dir out";
        for (algo, name) in [
            (format!("aead rfc4106(gcm(aes)) 0x{} 128", "01".repeat(36)), "aes256gcm16"),
            (format!("aead rfc7539esp(chacha20,poly1305) 0x{} 128", "01".repeat(36)), "chacha20poly1305"),
            (
                format!("enc cbc(aes) 0x{} auth-trunc hmac(sha256) 0x{} 128", "01".repeat(32), "02".repeat(32)),
                "aes256-sha256",
            ),
            (
                format!("enc cbc(aes) 0x{} auth-trunc hmac(sha384) 0x{} 192", "01".repeat(16), "02".repeat(48)),
                "aes128-sha384",
            ),
            (format!("enc cbc(aes) 0x{} auth hmac(sha512) 0x{}", "01".repeat(24), "02".repeat(64)), "aes192-sha512"),
            (format!("enc cipher_null \"\" auth-trunc hmac(sha256) 0x{} 128", "02".repeat(32)), "null-sha256"),
        ] {
            let (cfg, _) = to_config(parse_add(&words(&format!("{base} {algo}"))).unwrap()).unwrap();
            assert_eq!(cfg.suite.name(), name);
        }
    }
}
