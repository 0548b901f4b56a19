//! The `secrets` section (swanctl.conf `secrets { ike-<name> { id-* = ..., secret = ... } }`):
//! pre-shared keys with the identities they belong to, the permission check of every file that
//! holds one, and the choice of a connection's key by its identities.
//!
//! A secret never appears in an error, a warning, a log line or a `Debug` output.

use std::ops::Range;
use std::path::Path;

use rampart_config::DeTable;
use zeroize::Zeroizing;

use rampart_config::{ConfError, Doc};
use rampart_ike::config::Psk;
use rampart_ike::message::Identification;

/// One `ike*` secret.
#[derive(Clone)]
pub(crate) struct IkeSecret {
    /// The section name (for messages).
    pub name: String,
    /// The identities (`id`, `id-*`); empty: any.
    pub ids: Vec<Identification>,
    /// The key.
    pub psk: Psk,
}

impl core::fmt::Debug for IkeSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IkeSecret").field("name", &self.name).field("ids", &self.ids).finish_non_exhaustive()
    }
}

/// Refuses a file holding secrets that others may read or change.
#[cfg(unix)]
pub(crate) fn check_permissions(path: &Path) -> Result<(), ConfError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| ConfError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        reason: format!("cannot read: {e}"),
    })?;
    let mode = meta.permissions().mode();
    if mode & 0o007 != 0 {
        return Err(ConfError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            reason: format!(
                "holds secrets but is accessible to every user (mode {:04o}); chmod o-rwx (e.g. 0600) it",
                mode & 0o7777
            ),
        });
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn check_permissions(_path: &Path) -> Result<(), ConfError> {
    Ok(())
}

/// Decodes a `secret` value: `0x` hex, `0s` base64, or the string's own bytes.
fn decode(s: &str) -> Option<Zeroizing<Vec<u8>>> {
    if let Some(hex) = s.strip_prefix("0x") {
        return rampart_ike::hex::decode(hex).map(Zeroizing::new);
    }
    if let Some(b64) = s.strip_prefix("0s") {
        return base64(b64);
    }
    Some(Zeroizing::new(s.as_bytes().to_vec()))
}

fn base64(s: &str) -> Option<Zeroizing<Vec<u8>>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let body = s.trim().trim_end_matches('=');
    let mut out = Zeroizing::new(Vec::with_capacity(body.len() * 3 / 4));
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in body.bytes() {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Reads the `secrets` table of one document into `out`.
pub(crate) fn read(doc: &mut Doc<'_>, t: &DeTable<'_>, out: &mut Vec<IkeSecret>) -> Result<(), ConfError> {
    for (k, v) in t.iter() {
        let name: &str = k.get_ref();
        let span = k.span();
        if !name.starts_with("ike") {
            const OTHER: [&str; 7] = ["eap", "xauth", "ntlm", "private", "rsa", "ecdsa", "pkcs8"];
            if OTHER.iter().any(|p| name.starts_with(p)) || name.starts_with("pkcs12") || name.starts_with("token") {
                doc.warn(&span, format_args!("secrets: '{name}' is not supported by Rampart and is ignored"));
                continue;
            }
            return Err(
                doc.err(&span, format!("secrets: unknown section '{name}' (Rampart reads ike<suffix> sections)"))
            );
        }
        let body = doc.table(name, v)?;
        let mut ids = Vec::new();
        let mut secret: Option<(Zeroizing<Vec<u8>>, Range<usize>)> = None;
        for (key, val) in body.iter() {
            let kname: &str = key.get_ref();
            if kname == "id" || kname.starts_with("id-") {
                let s = doc.string(kname, val)?;
                let id = Identification::from_swanctl(s)
                    .ok_or_else(|| doc.err(&val.span(), format!("secrets.{name}.{kname}: not an identity")))?;
                ids.push(id);
            } else if kname == "secret" {
                let s = doc.string(kname, val)?;
                let bytes = decode(s).ok_or_else(|| {
                    doc.err(&val.span(), format!("secrets.{name}.secret: bad 0x hex or 0s base64 encoding"))
                })?;
                if bytes.is_empty() {
                    return Err(doc.err(&val.span(), format!("secrets.{name}.secret is empty")));
                }
                secret = Some((bytes, val.span()));
            } else {
                return Err(
                    doc.err(&key.span(), format!("secrets.{name}: unknown key '{kname}' (id, id-<suffix>, secret)"))
                );
            }
        }
        let Some((bytes, sspan)) = secret else {
            return Err(doc.err(&span, format!("secrets.{name} has no 'secret'")));
        };
        //= https://www.rfc-editor.org/rfc/rfc7296#section-2.15
        //# ... the pre-shared key ... SHOULD have at least as much entropy as the PRF key ... a key
        //# derived from a password is weak
        if bytes.len() < 16 {
            doc.warn(&sspan, format_args!("secrets.{name}: a pre-shared key of {} bytes is weak", bytes.len()));
        }
        out.push(IkeSecret { name: name.to_string(), ids, psk: Psk(bytes) });
    }
    Ok(())
}
