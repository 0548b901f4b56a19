//! Certificates, CA certificates, CRLs and private keys read from files the way swanctl keeps
//! them: under `daemon.swanctl_dir` (default: the configuration file's folder) the folders
//! `x509` (our certificates and intermediates), `x509ca` (trusted CAs), `x509crl` (CRLs) and
//! `private`, `ecdsa`, `rsa`, `pkcs8` (private keys, matched to certificates by their public
//! key). PEM or DER; a folder that does not exist is empty.
//!
//! Files are parsed here and handed to the protocol core as values; a file that does not parse
//! refuses the configuration with its name and the reason. Private key files must not be
//! readable by every user; their bytes are zeroized after parsing and never appear in an error.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rampart_config::ConfError;
use rampart_ike::cert::Certificate;
use rampart_ike::sign::PrivateKey;
use rampart_ike::trust::{Crl, TrustStore};
use zeroize::Zeroizing;

/// Everything read from the credential folders.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// The folder they were read from.
    pub dir: PathBuf,
    /// `x509/`: end-entity certificates and intermediates.
    pub certs: Vec<(PathBuf, Certificate)>,
    /// `x509ca/`: trusted CAs.
    pub cas: Vec<(PathBuf, Certificate)>,
    /// `x509crl/`.
    pub crls: Vec<(PathBuf, Crl)>,
    /// `private/`, `ecdsa/`, `rsa/`, `pkcs8/`.
    pub keys: Vec<(PathBuf, Arc<PrivateKey>)>,
    /// The CAs and CRLs as the core checks peers against them.
    pub trust: Arc<TrustStore>,
}

fn err(file: &Path, reason: String) -> ConfError {
    ConfError { file: file.to_path_buf(), line: 0, column: 0, reason }
}

/// The regular files of a folder, sorted by name; none when it does not exist.
fn files(dir: &Path) -> Result<Vec<PathBuf>, ConfError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(err(dir, format!("cannot read the folder: {e}"))),
    };
    let mut out: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
    out.sort();
    Ok(out)
}

fn read(path: &Path) -> Result<Vec<u8>, ConfError> {
    std::fs::read(path).map_err(|e| err(path, format!("cannot read: {e}")))
}

/// Reads certificates from a file (every one in a PEM file).
pub fn read_certs(path: &Path) -> Result<Vec<Certificate>, ConfError> {
    Certificate::from_pem_or_der(&read(path)?).map_err(|e| err(path, e.0))
}

impl Credentials {
    /// Reads the swanctl folders under `dir`.
    pub fn load(dir: &Path) -> Result<Credentials, ConfError> {
        let mut c = Credentials { dir: dir.to_path_buf(), ..Credentials::default() };
        for f in files(&dir.join("x509"))? {
            for cert in read_certs(&f)? {
                c.certs.push((f.clone(), cert));
            }
        }
        for f in files(&dir.join("x509ca"))? {
            for cert in read_certs(&f)? {
                if !cert.is_ca {
                    return Err(err(&f, format!("'{}' is not a CA certificate (basicConstraints)", cert.subject_text)));
                }
                c.cas.push((f.clone(), cert));
            }
        }
        for f in files(&dir.join("x509crl"))? {
            for crl in Crl::from_pem_or_der(&read(&f)?).map_err(|e| err(&f, e.0))? {
                c.crls.push((f.clone(), crl));
            }
        }
        for sub in ["private", "ecdsa", "rsa", "pkcs8"] {
            for f in files(&dir.join(sub))? {
                super::secrets::check_permissions(&f)?;
                let bytes = Zeroizing::new(read(&f)?);
                let key = PrivateKey::from_pem_or_der(&bytes).map_err(|e| err(&f, format!("private key: {e}")))?;
                c.keys.push((f, Arc::new(key)));
            }
        }
        c.trust = Arc::new(TrustStore {
            cas: c.cas.iter().map(|(_, c)| c.clone()).collect(),
            crls: c.crls.iter().map(|(_, c)| c.clone()).collect(),
        });
        Ok(c)
    }

    /// A file named in `local.certs` (`x509/<name>`, or a path) or `remote.cacerts`
    /// (`x509ca/<name>`).
    pub fn resolve(&self, folder: &str, name: &str) -> PathBuf {
        let p = Path::new(name);
        if p.is_absolute() { p.to_path_buf() } else { self.dir.join(folder).join(p) }
    }

    /// The private key of a certificate.
    pub fn key_for(&self, cert: &Certificate) -> Option<Arc<PrivateKey>> {
        self.keys.iter().find(|(_, k)| k.matches(cert)).map(|(_, k)| Arc::clone(k))
    }

    /// `leaf` and the intermediates above it found among our certificates and CAs, up to (not
    /// including) a self-signed root: what our CERT payloads carry.
    pub fn chain(&self, leaf: Certificate) -> Vec<Certificate> {
        let mut chain = vec![leaf];
        while chain.len() < 8 {
            let last = &chain[chain.len() - 1];
            if last.self_issued {
                break;
            }
            let issuer = self
                .certs
                .iter()
                .chain(self.cas.iter())
                .map(|(_, c)| c)
                .find(|c| c.is_ca && c.subject == last.issuer && !chain.contains(c));
            match issuer {
                Some(c) if !c.self_issued => chain.push(c.clone()),
                _ => break,
            }
        }
        chain
    }
}
