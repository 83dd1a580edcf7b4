//! The endpoint's TLS identity: generate (first start), keep and reload a self-signed ECDSA
//! P-256 certificate, or load an image builder's own; compute its SHA-256 fingerprint; build
//! the rustls server configuration (TLS 1.2 and 1.3, ring).
//!
//! It does not serve anything: `server::http` uses the configuration built here.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// Where the generated key pair is kept, relative to the root.
pub const TLS_DIR: &str = "var/lib/nodeboot/tls";
/// File name of the generated certificate (PEM) in [`TLS_DIR`].
pub const CERT_FILE: &str = "cert.pem";
/// File name of the generated private key (PKCS#8 PEM, mode 0600) in [`TLS_DIR`].
pub const KEY_FILE: &str = "key.pem";

/// What went wrong while making or loading the TLS identity. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done, e.g. `"reading"`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The system error.
        source: std::io::Error,
    },
    /// A PEM file held nothing usable.
    #[error("{path}: {problem}")]
    BadPem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// Generating the key or the certificate failed.
    #[error("generating the certificate: {0}")]
    Generate(String),
    /// rustls refused the certificate/key pair.
    #[error("setting up TLS: {0}")]
    Rustls(String),
}

/// Where the identity came from (logged at start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Generated at this start and saved under [`TLS_DIR`].
    Generated,
    /// Loaded from [`TLS_DIR`], generated at an earlier start.
    Reused,
    /// Supplied with `--cert`/`--key` (e.g. by an image builder).
    Supplied,
}

/// A certificate chain with its private key and the fingerprint of the leaf.
pub struct Identity {
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key (never printed: `Debug` hides it).
    pub key: PrivateKeyDer<'static>,
    /// [`fingerprint`] of the leaf certificate.
    pub fingerprint: String,
    /// Generated now, reused, or supplied.
    pub origin: Origin,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("certificates", &self.chain.len())
            .field("key", &"***")
            .field("fingerprint", &self.fingerprint)
            .field("origin", &self.origin)
            .finish()
    }
}

/// The certificate fingerprint as shown everywhere (banner, log, page, status, `nodeboot push
/// --fingerprint`): `SHA256:` followed by the SHA-256 of the DER certificate as lowercase hex
/// pairs joined by colons — the form Firefox and `openssl x509 -fingerprint -sha256` print,
/// in lowercase.
pub fn fingerprint(der: &[u8]) -> String {
    let hash = Sha256::digest(der);
    let hex: Vec<String> = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("SHA256:{}", hex.join(":"))
}

/// The names the generated certificate covers: the host name and every local address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectNames {
    /// The node's host name (also the certificate's common name).
    pub hostname: String,
    /// Every address the node has (loopback included, so `https://127.0.0.1:8443/` matches).
    pub addresses: Vec<IpAddr>,
}

/// Generates a self-signed ECDSA P-256 certificate for `names`. Returns `(cert_pem, key_pem)`.
///
/// ECDSA P-256 because browsers refuse Ed25519 server certificates; P-256 key generation
/// takes well under a millisecond, so it can happen at first boot.
pub fn generate(names: &SubjectNames) -> Result<(String, String), TlsError> {
    let gen_err = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
    let mut dns = vec![names.hostname.clone()];
    dns.dedup();
    let mut params = rcgen::CertificateParams::new(dns).map_err(gen_err)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names.hostname.clone());
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "nodeboot agent");
    for ip in &names.addresses {
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress(*ip));
    }
    let cert = params.self_signed(&key).map_err(gen_err)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Loads the identity kept under `<root>/var/lib/nodeboot/tls/`, or generates and saves one
/// (key 0600) when there is none yet.
pub fn load_or_generate(root: &Path, names: &SubjectNames) -> Result<Identity, TlsError> {
    let dir = root.join(TLS_DIR);
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    if cert_path.exists() && key_path.exists() {
        let mut id = load(&cert_path, &key_path)?;
        id.origin = Origin::Reused;
        return Ok(id);
    }
    let (cert_pem, key_pem) = generate(names)?;
    fs::create_dir_all(&dir).map_err(|source| TlsError::Io {
        action: "creating",
        path: dir.clone(),
        source,
    })?;
    // The key first: a certificate without its key is never left behind.
    write_atomically(&key_path, key_pem.as_bytes(), 0o600)?;
    write_atomically(&cert_path, cert_pem.as_bytes(), 0o644)?;
    sync_dir(&dir)?;
    let mut id = parse_pems(
        cert_pem.as_bytes(),
        key_pem.as_bytes(),
        &cert_path,
        &key_path,
    )?;
    id.origin = Origin::Generated;
    Ok(id)
}

/// Loads a certificate chain (PEM, leaf first) and its private key (PEM: PKCS#8, SEC1 or
/// PKCS#1) from the given files.
pub fn load(cert_path: &Path, key_path: &Path) -> Result<Identity, TlsError> {
    let read = |path: &Path| {
        fs::read(path).map_err(|source| TlsError::Io {
            action: "reading",
            path: path.to_path_buf(),
            source,
        })
    };
    let cert_pem = read(cert_path)?;
    let key_pem = read(key_path)?;
    parse_pems(&cert_pem, &key_pem, cert_path, key_path)
}

fn parse_pems(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_path: &Path,
    key_path: &Path,
) -> Result<Identity, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem {
            path: cert_path.to_path_buf(),
            problem: format!("not a PEM certificate chain ({e})"),
        })?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::BadPem {
            path: cert_path.to_path_buf(),
            problem: "no CERTIFICATE block found".into(),
        });
    };
    let fingerprint = fingerprint(leaf.as_ref());
    // The error text of a key parse never includes the key itself.
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| TlsError::BadPem {
        path: key_path.to_path_buf(),
        problem: "no PRIVATE KEY block found (PKCS#8, SEC1 or PKCS#1 PEM expected)".into(),
    })?;
    Ok(Identity {
        chain,
        key,
        fingerprint,
        origin: Origin::Supplied,
    })
}

/// Builds the rustls server configuration: TLS 1.3 and 1.2, ring, HTTP/1.1 via ALPN.
pub fn server_config(identity: &Identity) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Writes `bytes` to `path` by way of a temporary file in the same directory: create with
/// `mode`, write, fsync, rename.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let tmp = path.with_extension("tmp");
    let io = |action: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| TlsError::Io {
            action,
            path: p,
            source,
        }
    };
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io("creating", &tmp))?;
    // The umask may have narrowed the mode; make it exact.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io("setting the mode of", &tmp))?;
    file.write_all(bytes).map_err(io("writing", &tmp))?;
    file.sync_all().map_err(io("syncing", &tmp))?;
    fs::rename(&tmp, path).map_err(io("renaming into", path))?;
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), TlsError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| TlsError::Io {
            action: "syncing",
            path: dir.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> SubjectNames {
        SubjectNames {
            hostname: "node-31".into(),
            addresses: vec!["127.0.0.1".parse().unwrap(), "10.0.0.31".parse().unwrap()],
        }
    }

    #[test]
    fn fingerprint_is_colon_hex_of_sha256() {
        let fp = fingerprint(b"abc");
        assert_eq!(
            fp,
            "SHA256:ba:78:16:bf:8f:01:cf:ea:41:41:40:de:5d:ae:22:23:\
             b0:03:61:a3:96:17:7a:9c:b4:10:ff:61:f2:00:15:ad"
        );
    }

    #[test]
    fn first_start_generates_and_later_starts_reuse() {
        let root = tempfile::tempdir().unwrap();
        let first = load_or_generate(root.path(), &names()).unwrap();
        assert_eq!(first.origin, Origin::Generated);
        let key_mode = fs::metadata(root.path().join(TLS_DIR).join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(key_mode & 0o777, 0o600);
        let second = load_or_generate(root.path(), &names()).unwrap();
        assert_eq!(second.origin, Origin::Reused);
        assert_eq!(first.fingerprint, second.fingerprint);
        server_config(&second).unwrap();
    }

    #[test]
    fn each_generation_makes_a_new_key() {
        let (cert1, key1) = generate(&names()).unwrap();
        let (cert2, key2) = generate(&names()).unwrap();
        assert_ne!(cert1, cert2);
        assert_ne!(key1, key2);
    }

    #[test]
    fn unreadable_key_is_a_precise_error() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_pem, _) = generate(&names()).unwrap();
        let cert = dir.path().join("c.pem");
        let key = dir.path().join("k.pem");
        fs::write(&cert, cert_pem).unwrap();
        fs::write(&key, "not a key").unwrap();
        let err = load(&cert, &key).unwrap_err().to_string();
        assert!(
            err.ends_with(
                "k.pem: no PRIVATE KEY block found (PKCS#8, SEC1 or PKCS#1 PEM expected)"
            ),
            "{err}"
        );
    }
}
