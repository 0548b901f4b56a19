//! `rampart policy`: security policies (the SPD) in the SA database, with the grammar of
//! `ip xfrm policy` for the subset Rampart implements. `list` prints each policy as the
//! `policy add` line that recreates it.
//!
//! Lower `priority` wins; among equal priorities the older policy wins (xfrm's order). An
//! outbound protect policy is bound to the newest installed outbound SA that matches its
//! template; `rampart sa add` of a newer one switches it (make-before-break).

use clap::{Args, Subcommand};
use rampart_esp::{Mode, Protocol};
use rampart_sadb::{IpPrefix, Policy, PolicyAction, PolicyDir, PolicyInfo, PortRange, Selector, Template};

use super::xfrm::{self, ArgError, Tokens, once};
use super::{CmdError, DbArgs};

/// `rampart policy`.
#[derive(Args, Debug)]
pub struct PolicyArgs {
    #[command(flatten)]
    db: DbArgs,
    #[command(subcommand)]
    action: PolicyCmd,
}

const ADD_HELP: &str = "\
Grammar (a subset of `ip xfrm policy add`; [] optional, | alternatives):
  SELECTOR dir in|out [action allow|block] [priority N]
  [tmpl src ADDR dst ADDR [proto esp|ah] [spi SPI] [reqid N] [mode transport|tunnel] [level required]]
SELECTOR: [src ADDR[/PLEN]] [dst ADDR[/PLEN]] [proto P [sport N] [dport N] | [type N] [code N]]
action allow with tmpl protects (through the SA of the template), without tmpl bypasses;
action block discards. Lower priority wins (default 0); ties go to the older policy.
dir out: cleartext we send (encapsulated per tmpl); dir in: cleartext we receive.";

#[derive(Subcommand, Debug)]
enum PolicyCmd {
    /// Add a policy.
    #[command(after_help = ADD_HELP)]
    Add {
        /// The policy in `ip xfrm policy add` words.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true, value_name = "WORDS")]
        words: Vec<String>,
    },
    /// List policies in index order, one `policy add` line each.
    List {
        /// Add a comment line with the index, slot and bound SA after each policy.
        #[arg(long)]
        stats: bool,
    },
    /// Delete policies: `SELECTOR dir in|out` (every policy with exactly that selector), or
    /// `index N`.
    Delete {
        /// The selector and direction, or the index.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true, value_name = "WORDS")]
        words: Vec<String>,
    },
    /// Delete every policy.
    Flush,
}

/// Runs `rampart policy`.
pub fn run(args: PolicyArgs) -> Result<(), CmdError> {
    match args.action {
        PolicyCmd::Add { words } => add(&args.db, &words),
        PolicyCmd::List { stats } => list(&args.db, stats),
        PolicyCmd::Delete { words } => delete(&args.db, &words),
        PolicyCmd::Flush => {
            args.db.writer()?.flush_policies();
            Ok(())
        }
    }
}

const ADD_WORDS: &str = "src dst proto sport dport type code dir action priority tmpl";

/// A selector, direction and the rest, as parsed.
#[derive(Default)]
struct Parsed {
    src: Option<IpPrefix>,
    dst: Option<IpPrefix>,
    proto: Option<u8>,
    sport: Option<PortRange>,
    dport: Option<PortRange>,
    dir: Option<PolicyDir>,
    block: Option<bool>,
    priority: Option<u32>,
    tmpl: Option<Template>,
    index: Option<u64>,
}

fn parse_tmpl(t: &mut Tokens<'_>) -> Result<Template, ArgError> {
    let (mut src, mut dst, mut spi, mut reqid, mut mode, mut proto) = (None, None, None, None, None, None);
    while let Some(w) = t.peek() {
        match w {
            "src" | "dst" | "proto" | "spi" | "reqid" | "mode" | "level" => {
                t.next_word();
            }
            _ => break,
        }
        match w {
            "src" => once(&mut src, w, xfrm::address("tmpl src", t.value(w, "an address")?)?)?,
            "dst" => once(&mut dst, w, xfrm::address("tmpl dst", t.value(w, "an address")?)?)?,
            "proto" => {
                let v = t.value(w, "esp or ah")?;
                if v == "comp" {
                    return Err(ArgError::Unsupported { word: v.into(), why: "IPComp is not implemented".into() });
                }
                once(&mut proto, w, xfrm::choice("tmpl proto", v, [("esp", Protocol::Esp), ("ah", Protocol::Ah)])?)?;
            }
            "spi" => once(&mut spi, w, xfrm::number32("tmpl spi", t.value(w, "an SPI")?)?)?,
            "reqid" => once(&mut reqid, w, xfrm::number32("tmpl reqid", t.value(w, "a number")?)?)?,
            "mode" => {
                let v = t.value(w, "tunnel or transport")?;
                let m = xfrm::choice("tmpl mode", v, [("tunnel", Mode::Tunnel), ("transport", Mode::Transport)])?;
                once(&mut mode, w, m)?;
            }
            "level" => {
                let v = t.value(w, "required")?;
                if v != "required" {
                    return Err(ArgError::Unsupported {
                        word: format!("level {v}"),
                        why: "templates are always required".into(),
                    });
                }
            }
            _ => unreachable!("filtered above"),
        }
    }
    let src = src.ok_or(ArgError::Required { what: "'tmpl src ADDR' (this gateway's outer address)" })?;
    let dst = dst.ok_or(ArgError::Required { what: "'tmpl dst ADDR' (the peer's outer address)" })?;
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(ArgError::Invalid(format!("tmpl src {src} and dst {dst} are of different families")));
    }
    Ok(Template {
        protocol: proto.unwrap_or(Protocol::Esp),
        src,
        dst,
        spi: spi.unwrap_or(0),
        mode: mode.unwrap_or(Mode::Transport),
        reqid: reqid.unwrap_or(0),
    })
}

fn parse(words: &[String], context: &'static str, allow_index: bool) -> Result<Parsed, ArgError> {
    let mut t = Tokens::new(words);
    let mut p = Parsed::default();
    while let Some(w) = t.peek() {
        match w {
            "src" | "dst" | "proto" | "sport" | "dport" | "type" | "code" | "dev" => {
                let s = xfrm::selector(&mut t, context)?;
                if let Some(v) = s.src {
                    once(&mut p.src, "src", xfrm::prefix("src", v)?)?;
                }
                if let Some(v) = s.dst {
                    once(&mut p.dst, "dst", xfrm::prefix("dst", v)?)?;
                }
                if let Some(v) = s.proto {
                    once(&mut p.proto, "proto", v)?;
                }
                if let Some(v) = s.sport {
                    once(&mut p.sport, "sport", v)?;
                }
                if let Some(v) = s.dport {
                    once(&mut p.dport, "dport", v)?;
                }
                continue;
            }
            _ => {
                t.next_word();
            }
        }
        match w {
            "dir" => {
                let v = t.value(w, "in or out")?;
                if v == "fwd" {
                    return Err(ArgError::Unsupported {
                        word: "dir fwd".into(),
                        why: "a Rampart gateway checks forwarded cleartext with 'dir in' policies".into(),
                    });
                }
                once(&mut p.dir, w, xfrm::choice(w, v, [("in", PolicyDir::In), ("out", PolicyDir::Out)])?)?;
            }
            "action" => {
                let v = t.value(w, "allow or block")?;
                once(&mut p.block, w, xfrm::choice(w, v, [("allow", false), ("block", true)])?)?;
            }
            "priority" => once(&mut p.priority, w, xfrm::number32(w, t.value(w, "a number (lower wins)")?)?)?,
            "tmpl" => {
                if p.tmpl.is_some() {
                    return Err(ArgError::Unsupported {
                        word: "tmpl".into(),
                        why: "one template per policy (bundles are not supported)".into(),
                    });
                }
                p.tmpl = Some(parse_tmpl(&mut t)?);
            }
            "index" if allow_index => once(&mut p.index, w, xfrm::number(w, t.value(w, "a number")?)?)?,
            "ptype" => {
                let v = t.value(w, "main")?;
                if v != "main" {
                    return Err(ArgError::Unsupported {
                        word: format!("ptype {v}"),
                        why: "there are only main policies".into(),
                    });
                }
            }
            "index" | "mark" | "ctx" | "flag" | "if_id" | "offload" | "limit" => {
                return Err(ArgError::Unsupported {
                    word: w.into(),
                    why: format!("not implemented by Rampart in '{context}'"),
                });
            }
            _ => return Err(ArgError::Unknown { word: w.into(), context, expected: ADD_WORDS }),
        }
    }
    Ok(p)
}

fn selector(p: &Parsed) -> Result<Selector, ArgError> {
    let (src, dst) = match (p.src, p.dst) {
        (Some(s), Some(d)) => (s, d),
        (Some(s), None) => (s, IpPrefix::any(s.addr().is_ipv6())),
        (None, Some(d)) => (IpPrefix::any(d.addr().is_ipv6()), d),
        (None, None) => return Err(ArgError::Required { what: "'src PREFIX' and/or 'dst PREFIX'" }),
    };
    if src.addr().is_ipv4() != dst.addr().is_ipv4() {
        return Err(ArgError::Invalid(format!("src {src} and dst {dst} are of different families")));
    }
    Ok(Selector {
        src,
        dst,
        proto: p.proto.unwrap_or(0),
        sport: p.sport.unwrap_or(PortRange::ANY),
        dport: p.dport.unwrap_or(PortRange::ANY),
    })
}

fn to_policy(p: &Parsed) -> Result<Policy, ArgError> {
    let selector = selector(p)?;
    let dir = p.dir.ok_or(ArgError::Required { what: "'dir in' or 'dir out'" })?;
    let action = match (p.block.unwrap_or(false), p.tmpl) {
        (true, Some(_)) => return Err(ArgError::Invalid("'action block' discards: it takes no 'tmpl'".into())),
        (true, None) => PolicyAction::Discard,
        (false, Some(t)) => PolicyAction::Protect(t),
        (false, None) => PolicyAction::Bypass,
    };
    Ok(Policy { dir, selector, priority: p.priority.unwrap_or(0), action })
}

fn add(db: &DbArgs, words: &[String]) -> Result<(), CmdError> {
    let policy = parse(words, "policy add", false)
        .and_then(|p| to_policy(&p))
        .map_err(|e| CmdError(format!("policy add: {e}")))?;
    let mut w = db.writer()?;
    let sa = match policy.action {
        PolicyAction::Protect(t) if policy.dir == PolicyDir::Out => w.newest_sa_for(&t),
        _ => None,
    };
    w.add_policy(&policy, sa).map_err(|e| CmdError(format!("policy add: {e}")))?;
    Ok(())
}

fn addr_pfx(p: &IpPrefix) -> String {
    let full = if p.addr().is_ipv4() { 32 } else { 128 };
    if p.len() == full { p.addr().to_string() } else { p.to_string() }
}

/// The `policy add` line of a policy.
fn format_policy(p: &Policy) -> String {
    let s = &p.selector;
    let mut out = format!("src {} dst {}", addr_pfx(&s.src), addr_pfx(&s.dst));
    if s.proto != 0 {
        out += &format!(" proto {}", xfrm::protocol_name(s.proto));
        let (sw, dw) = if matches!(s.proto, 1 | 58) { ("type", "code") } else { ("sport", "dport") };
        if !s.sport.is_any() {
            out += &format!(" {sw} {}", xfrm::format_ports(s.sport));
        }
        if !s.dport.is_any() {
            out += &format!(" {dw} {}", xfrm::format_ports(s.dport));
        }
    }
    out += &format!(" dir {} priority {}", p.dir, p.priority);
    match p.action {
        PolicyAction::Discard => out += " action block",
        PolicyAction::Bypass => out += " action allow",
        PolicyAction::Protect(t) => {
            out += &format!(" action allow tmpl src {} dst {} proto {}", t.src, t.dst, t.protocol.name());
            if t.spi != 0 {
                out += &format!(" spi {:#010x}", t.spi);
            }
            if t.reqid != 0 {
                out += &format!(" reqid {}", t.reqid);
            }
            out += match t.mode {
                Mode::Tunnel => " mode tunnel",
                Mode::Transport => " mode transport",
            };
        }
    }
    out
}

fn list(db: &DbArgs, stats: bool) -> Result<(), CmdError> {
    let r = db.reader()?;
    let snap = r.snapshot();
    let mut policies: Vec<&PolicyInfo> = snap.policies().collect();
    policies.sort_by_key(|p| p.index);
    for p in policies {
        println!("{}", format_policy(&p.policy));
        if stats {
            let sa = match p.sa.and_then(|id| snap.sa_id(id)) {
                Some(m) => format!("spi {:#010x} (slot {})", m.spi, m.id.slot),
                None if matches!(p.policy.action, PolicyAction::Protect(_)) && p.policy.dir == PolicyDir::Out => {
                    "none (traffic raises acquire events)".to_string()
                }
                None => "-".to_string(),
            };
            println!("#\tindex {} slot {} sa {sa}", p.index, p.id.slot);
        }
    }
    Ok(())
}

fn delete(db: &DbArgs, words: &[String]) -> Result<(), CmdError> {
    let p = parse(words, "policy delete", true).map_err(|e| CmdError(format!("policy delete: {e}")))?;
    let mut w = db.writer()?;
    let victims: Vec<_> = if let Some(index) = p.index {
        let info =
            w.policy_by_index(index).ok_or_else(|| CmdError(format!("policy delete: no policy with index {index}")))?;
        vec![info.id]
    } else {
        let sel = selector(&p).map_err(|e| CmdError(format!("policy delete: {e}")))?;
        let dir =
            p.dir.ok_or_else(|| CmdError("policy delete: missing 'dir in' or 'dir out' (or give 'index N')".into()))?;
        let v: Vec<_> =
            w.policies().filter(|i| i.policy.dir == dir && i.policy.selector == sel).map(|i| i.id).collect();
        if v.is_empty() {
            return Err(CmdError(format!("policy delete: no {dir} policy with that selector")));
        }
        v
    };
    for id in victims {
        w.delete_policy(id)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn policy(s: &str) -> Result<Policy, ArgError> {
        parse(&words(s), "policy add", false).and_then(|p| to_policy(&p))
    }

    #[test]
    fn protect_bypass_block_and_round_trip() {
        for line in [
            "src 198.18.1.0/24 dst 198.18.2.0/24 dir out priority 0 action allow tmpl src 192.0.2.1 dst 192.0.2.2 proto esp mode tunnel",
            "src 198.18.1.0/24 dst 198.18.2.0/24 proto tcp sport 1000-2000 dport 443 dir out priority 7 action allow tmpl src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x00001000 reqid 4 mode tunnel",
            "src 10.0.0.0/8 dst 0.0.0.0/0 dir in priority 100 action block",
            "src 2001:db8:1::/48 dst 2001:db8::5 proto ipv6-icmp type 128 dir out priority 3 action allow",
        ] {
            let p = policy(line).unwrap();
            assert_eq!(format_policy(&p), line);
        }
        let p = policy("src 10.1.2.3/8 dir out").unwrap();
        assert_eq!((p.selector.src.to_string(), p.selector.dst.to_string()), ("10.0.0.0/8".into(), "0.0.0.0/0".into()));
        assert_eq!(p.action, PolicyAction::Bypass);
    }

    #[test]
    fn bad_words_are_named() {
        let e = |s: &str| policy(s).unwrap_err().to_string();
        assert!(e("src 10.0.0.0/8 dir sideways").contains("dir 'sideways'"));
        assert!(e("src 10.0.0.0/8 dir fwd").contains("'dir fwd'"));
        assert!(e("src 10.0.0.0/8 dir out action maybe").contains("action 'maybe'"));
        assert!(e("src 10.0.0.0/8 dir out wibble").contains("'wibble'"));
        assert!(e("src 10.0.0.0/40 dir out").contains("src '10.0.0.0/40'"));
        assert!(e("src 10.0.0.0/8 dir out mark 1").contains("'mark'"));
        assert!(e("src 10.0.0.0/8 dst ::/0 dir out").contains("different families"));
        assert!(e("src 10.0.0.0/8").contains("'dir in' or 'dir out'"));
        assert!(e("src 10.0.0.0/8 dir out tmpl src 1.1.1.1 dst 2.2.2.2 proto comp").contains("IPComp"));
        assert!(e("src 10.0.0.0/8 dir out tmpl src 1.1.1.1 dst 2.2.2.2 proto udp").contains("'udp'"));
        let ah = policy("src 10.0.0.0/8 dir out tmpl src 1.1.1.1 dst 2.2.2.2 proto ah").unwrap();
        assert!(matches!(ah.action, PolicyAction::Protect(t) if t.protocol == Protocol::Ah));
        assert!(e("src 10.0.0.0/8 dir out tmpl src 1.1.1.1").contains("tmpl dst"));
        assert!(e("src 10.0.0.0/8 dir out tmpl src 1.1.1.1 dst 2.2.2.2 level use").contains("'level use'"));
        assert!(e("src 10.0.0.0/8 dir out priority x").contains("priority 'x'"));
        assert!(e("src 10.0.0.0/8 dir out action block tmpl src 1.1.1.1 dst 2.2.2.2").contains("block"));
    }
}
