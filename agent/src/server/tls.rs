//! The endpoint's TLS identity: generate (first start), keep and reload a self-signed ECDSA
//! P-256 certificate, or load an image builder's own; compute its SHA-256 fingerprint; build
//! the rustls server configuration (TLS 1.2 and 1.3, ring).
//!
//! One key per node: the key kept under the root is reused only while the node's machine-id
//! (`<root>/etc/machine-id`) is the one recorded beside it when it was made; a copied disk
//! whose machine-id changed makes a new key, and `nodeboot-agent reset` removes all three
//! files. Every file is reached through [`crate::rootfs`] (no link followed).
//!
//! It does not serve anything: `server::http` uses the configuration built here.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::rootfs::{Root, RootError, name};

/// Where the generated key pair is kept, relative to the root.
pub const TLS_DIR: &str = "var/lib/nodeboot/tls";
/// File name of the generated certificate (PEM) in [`TLS_DIR`].
pub const CERT_FILE: &str = "cert.pem";
/// File name of the generated private key (PKCS#8 PEM, mode 0600) in [`TLS_DIR`].
pub const KEY_FILE: &str = "key.pem";
/// The machine-id the key was made for, beside it in [`TLS_DIR`] (absent when the node had
/// none).
pub const MACHINE_ID_FILE: &str = "machine-id";
/// The node's machine-id, relative to the root.
pub const MACHINE_ID: &str = "etc/machine-id";
/// Every file of [`TLS_DIR`] that is per-node state (what `reset` and the image builder
/// remove).
pub const PER_NODE_FILES: [&str; 3] = [KEY_FILE, CERT_FILE, MACHINE_ID_FILE];

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
    /// Generated at this start because the node's machine-id is not the one the kept key
    /// was made for (a copied disk): the old key is replaced.
    Regenerated,
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
    nodeboot_config::pin::Fingerprint::of_der(der).to_string()
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

/// The node's machine-id (`<root>/etc/machine-id`, trimmed), `None` when absent, empty or
/// `uninitialized` (an image before its first boot). Read without following a link.
pub fn machine_id(root: &Root) -> Result<Option<String>, TlsError> {
    let f = root
        .read(Path::new(MACHINE_ID))
        .map_err(root_err("reading"))?;
    Ok(f.and_then(|f| {
        let id = String::from_utf8_lossy(&f.content).trim().to_owned();
        (!id.is_empty() && id != "uninitialized").then_some(id)
    }))
}

fn root_err(action: &'static str) -> impl Fn(RootError) -> TlsError {
    move |e| TlsError::Io {
        action,
        path: e.path,
        source: e.source,
    }
}

/// Loads the identity kept under `<root>/var/lib/nodeboot/tls/`, or generates and saves one
/// (key 0600) when there is none yet, or when the machine-id recorded beside it is not the
/// node's (see the module documentation). No link under the root is followed.
pub fn load_or_generate(root: &Path, names: &SubjectNames) -> Result<Identity, TlsError> {
    let root = Root::open(root).map_err(root_err("opening"))?;
    let current = machine_id(&root)?;
    let dir = root
        .create_dir_all(Path::new(TLS_DIR), 0o700)
        .map_err(root_err("creating"))?;
    let key = dir.read(name(KEY_FILE)).map_err(root_err("reading"))?;
    let cert = dir.read(name(CERT_FILE)).map_err(root_err("reading"))?;
    let recorded = dir
        .read(name(MACHINE_ID_FILE))
        .map_err(root_err("reading"))?
        .map(|f| String::from_utf8_lossy(&f.content).trim().to_owned());
    let mut origin = Origin::Generated;
    if let (Some(cert), Some(key)) = (&cert, &key) {
        if recorded == current {
            let mut id = parse_pems(
                &cert.content,
                &key.content,
                &dir.host_of(name(CERT_FILE)),
                &dir.host_of(name(KEY_FILE)),
            )?;
            id.origin = Origin::Reused;
            return Ok(id);
        }
        origin = Origin::Regenerated;
    }
    let (cert_pem, key_pem) = generate(names)?;
    let write = |file: &str, bytes: &[u8], mode: u32| {
        dir.write_replace(name(file), bytes, mode, None, true)
            .map_err(root_err("writing"))
    };
    // The old record goes first (and durably), the new one last: a key kept with a stale
    // record is never left behind by a crash, and a missing record only makes the next start
    // generate again. The key before the certificate: never a certificate without its key.
    dir.unlink(name(MACHINE_ID_FILE))
        .map_err(root_err("removing"))?;
    dir.sync().map_err(root_err("syncing"))?;
    write(KEY_FILE, key_pem.as_bytes(), 0o600)?;
    write(CERT_FILE, cert_pem.as_bytes(), 0o644)?;
    if let Some(id) = &current {
        write(MACHINE_ID_FILE, format!("{id}\n").as_bytes(), 0o644)?;
    }
    dir.sync().map_err(root_err("syncing"))?;
    let mut id = parse_pems(
        cert_pem.as_bytes(),
        key_pem.as_bytes(),
        &dir.host_of(name(CERT_FILE)),
        &dir.host_of(name(KEY_FILE)),
    )?;
    id.origin = origin;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

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
    fn reset_removes_exactly_these_files() {
        let ours: Vec<String> = PER_NODE_FILES
            .iter()
            .map(|f| format!("/{TLS_DIR}/{f}"))
            .collect();
        assert_eq!(ours, crate::apply::state::PER_NODE_FILES);
    }

    #[test]
    fn a_changed_machine_id_makes_a_new_key() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("etc")).unwrap();
        let id = root.path().join(MACHINE_ID);
        fs::write(&id, "0123456789abcdef0123456789abcdef\n").unwrap();
        let first = load_or_generate(root.path(), &names()).unwrap();
        assert_eq!(first.origin, Origin::Generated);
        let record = root.path().join(TLS_DIR).join(MACHINE_ID_FILE);
        assert_eq!(
            fs::read_to_string(&record).unwrap(),
            "0123456789abcdef0123456789abcdef\n"
        );
        let again = load_or_generate(root.path(), &names()).unwrap();
        assert_eq!(
            (again.origin, &again.fingerprint),
            (Origin::Reused, &first.fingerprint)
        );
        fs::write(&id, "fedcba9876543210fedcba9876543210\n").unwrap();
        let copied = load_or_generate(root.path(), &names()).unwrap();
        assert_eq!(copied.origin, Origin::Regenerated);
        assert_ne!(copied.fingerprint, first.fingerprint);
        assert_eq!(
            fs::read_to_string(&record).unwrap(),
            "fedcba9876543210fedcba9876543210\n"
        );
        // A key kept without a record, on a node that has a machine-id, is not trusted either.
        fs::remove_file(&record).unwrap();
        let unrecorded = load_or_generate(root.path(), &names()).unwrap();
        assert_eq!(unrecorded.origin, Origin::Regenerated);
        assert_ne!(unrecorded.fingerprint, copied.fingerprint);
    }

    #[test]
    fn links_at_the_key_or_its_directory_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret");
        fs::write(&secret, "root only").unwrap();
        // The state directory as a link, and a link at the key file.
        let r1 = tempfile::tempdir().unwrap();
        fs::create_dir_all(r1.path().join("var/lib")).unwrap();
        std::os::unix::fs::symlink(outside.path(), r1.path().join("var/lib/nodeboot")).unwrap();
        let e = load_or_generate(r1.path(), &names())
            .unwrap_err()
            .to_string();
        assert!(e.contains("var/lib/nodeboot: is a symbolic link"), "{e}");
        let r2 = tempfile::tempdir().unwrap();
        fs::create_dir_all(r2.path().join(TLS_DIR)).unwrap();
        std::os::unix::fs::symlink(&secret, r2.path().join(TLS_DIR).join(KEY_FILE)).unwrap();
        std::os::unix::fs::symlink(&secret, r2.path().join(TLS_DIR).join(CERT_FILE)).unwrap();
        let e = load_or_generate(r2.path(), &names())
            .unwrap_err()
            .to_string();
        assert!(e.contains("key.pem: is a symbolic link"), "{e}");
        assert_eq!(fs::read_to_string(&secret).unwrap(), "root only");
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 1);
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
