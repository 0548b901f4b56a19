//! The demo's certificates (`rampart demo --auth cert`): a CA made for this run, a certificate
//! for the hub and one for each branch site, ECDSA P-256, laid out as swanctl keeps them
//! (`x509/`, `x509ca/`, `private/`) in one folder per gateway, which its configuration names as
//! `daemon.swanctl_dir`. The CA's key never leaves memory; the gateways' keys are written with
//! mode 0600 and removed with the demo's scratch folder.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::cmd::CmdError;

/// The CA's file name in every gateway's `x509ca/`.
pub const CA_FILE: &str = "ca.pem";

fn err(what: &str, e: impl std::fmt::Display) -> CmdError {
    CmdError(format!("demo certificates: {what}: {e}"))
}

fn write(path: &Path, text: &str, mode: u32) -> Result<(), CmdError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| err(&path.display().to_string(), e))?;
    f.write_all(text.as_bytes()).map_err(|e| err(&path.display().to_string(), e))
}

/// One gateway's credential folder.
pub struct Folder(PathBuf);

impl Folder {
    fn new(dir: PathBuf) -> Result<Folder, CmdError> {
        for sub in ["x509", "x509ca", "private"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| err(&dir.display().to_string(), e))?;
        }
        Ok(Folder(dir))
    }

    /// The folder, for `daemon.swanctl_dir`.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

/// The CA, able to issue.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca() -> Result<Ca, CmdError> {
    let key = KeyPair::generate().map_err(|e| err("CA key", e))?;
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, "Rampart demo CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = params.self_signed(&key).map_err(|e| err("CA certificate", e))?;
    Ok(Ca { pem: cert.pem(), issuer: Issuer::new(params, key) })
}

/// Issues a certificate for `id` (a DNS name: its subjectAltName and common name) into `folder` as `name.pem`
/// with its key as `private/name.key`.
fn issue(ca: &Ca, folder: &Folder, name: &str, id: &str) -> Result<(), CmdError> {
    let key = KeyPair::generate().map_err(|e| err("key", e))?;
    let mut params = CertificateParams::new(vec![id.to_string()]).map_err(|e| err(id, e))?;
    params.distinguished_name.push(DnType::CommonName, id);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let cert = params.signed_by(&key, &ca.issuer).map_err(|e| err(id, e))?;
    write(&folder.0.join("x509").join(format!("{name}.pem")), &cert.pem(), 0o644)?;
    write(&folder.0.join("private").join(format!("{name}.key")), &key.serialize_pem(), 0o600)
}

/// Makes the CA and the certificates: the hub's (`hub.pem`, for `hub_id`) under `dir/hub`, each
/// of the `sites`' (`site<k>.pem`, for `site_id(k)`) under `dir/branch`, the CA in both. Returns
/// the hub's and the branch's folders.
pub fn make(
    dir: &Path,
    hub_id: &str,
    sites: &[u32],
    site_id: impl Fn(u32) -> String,
) -> Result<(Folder, Folder), CmdError> {
    let ca = ca()?;
    let hub = Folder::new(dir.join("hub"))?;
    let branch = Folder::new(dir.join("branch"))?;
    for f in [&hub, &branch] {
        write(&f.0.join("x509ca").join(CA_FILE), &ca.pem, 0o644)?;
    }
    issue(&ca, &hub, "hub", hub_id)?;
    for &k in sites {
        issue(&ca, &branch, &format!("site{k}"), &site_id(k))?;
    }
    Ok((hub, branch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateways_get_the_ca_their_certificates_and_private_keys() {
        let dir = std::env::temp_dir().join(format!("rampart-demo-pki-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (hub, branch) = make(&dir, "hub.demo.invalid", &[0, 1, 2], |k| format!("site{k}.demo.invalid")).unwrap();
        let ca = std::fs::read(hub.path().join("x509ca").join(CA_FILE)).unwrap();
        assert_eq!(ca, std::fs::read(branch.path().join("x509ca").join(CA_FILE)).unwrap());
        let ca = rampart_ike::cert::Certificate::from_pem_or_der(&ca).unwrap().remove(0);
        assert!(ca.is_ca);
        for (folder, name, id) in [(&hub, "hub", "hub.demo.invalid"), (&branch, "site2", "site2.demo.invalid")] {
            let pem = std::fs::read(folder.path().join("x509").join(format!("{name}.pem"))).unwrap();
            let cert = rampart_ike::cert::Certificate::from_pem_or_der(&pem).unwrap().remove(0);
            assert!(!cert.is_ca && cert.subject_text.contains(id), "{}", cert.subject_text);
            let key = folder.path().join("private").join(format!("{name}.key"));
            let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
            assert_eq!(mode & 0o077, 0, "the key is readable by others");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
