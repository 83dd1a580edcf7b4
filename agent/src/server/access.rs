//! Optional hardening an image builder switches on: a bootstrap token that uploads must carry,
//! and an allow-list of client networks. Both off by default. Pure checks; no I/O.

use std::net::IpAddr;

use ipnet::IpNet;
use nodeboot_config::Secret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Who may talk to the endpoint and upload.
#[derive(Debug, Clone, Default)]
pub struct Access {
    token: Option<Secret<String>>,
    allow: Vec<IpNet>,
}

/// Why a bootstrap token file is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// The file holds nothing but white space.
    #[error("the token file is empty (write the token on its first line)")]
    Empty,
}

impl Access {
    /// No token, every network allowed.
    pub fn open() -> Self {
        Access::default()
    }

    /// Requires `token` (when given) and a client address inside `allow` (when not empty).
    pub fn new(token: Option<Secret<String>>, allow: Vec<IpNet>) -> Self {
        Access { token, allow }
    }

    /// The token from a token file's contents: surrounding white space (the final newline)
    /// removed.
    pub fn token_from_file_contents(contents: &str) -> Result<Secret<String>, TokenError> {
        let t = contents.trim();
        if t.is_empty() {
            return Err(TokenError::Empty);
        }
        Ok(Secret::new(t.to_string()))
    }

    /// Whether uploads must carry a token.
    pub fn requires_token(&self) -> bool {
        self.token.is_some()
    }

    /// The allow-list (empty: everyone).
    pub fn allow_list(&self) -> &[IpNet] {
        &self.allow
    }

    /// Whether a client at `ip` may use the endpoint. IPv4-mapped IPv6 addresses count as
    /// their IPv4 address.
    pub fn peer_allowed(&self, ip: IpAddr) -> bool {
        if self.allow.is_empty() {
            return true;
        }
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.allow.iter().any(|net| net.contains(&ip))
    }

    /// Whether `presented` is the bootstrap token (always true when none is required).
    /// Compares SHA-256 digests in constant time, so neither content nor length leaks.
    pub fn token_ok(&self, presented: Option<&str>) -> bool {
        let Some(expected) = &self.token else {
            return true;
        };
        let Some(presented) = presented else {
            return false;
        };
        let a = Sha256::digest(expected.expose().as_bytes());
        let b = Sha256::digest(presented.trim().as_bytes());
        bool::from(a.as_slice().ct_eq(b.as_slice()))
    }
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(t: &str) -> Access {
        Access::new(Some(Secret::new(t.into())), vec![])
    }

    #[test]
    fn token_checks() {
        let cases: &[(&Access, Option<&str>, bool)] = &[
            (&Access::open(), None, true),
            (&Access::open(), Some("anything"), true),
            (&token("s3cret"), Some("s3cret"), true),
            (&token("s3cret"), Some(" s3cret\n"), true),
            (&token("s3cret"), Some("s3cre"), false),
            (&token("s3cret"), Some("s3cret2"), false),
            (&token("s3cret"), Some(""), false),
            (&token("s3cret"), None, false),
        ];
        for (access, presented, want) in cases {
            assert_eq!(access.token_ok(*presented), *want, "{presented:?}");
        }
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    #[test]
    fn allow_list() {
        let a = Access::new(
            None,
            vec![
                "10.0.0.0/24".parse().unwrap(),
                "2001:db8::/32".parse().unwrap(),
            ],
        );
        assert!(a.peer_allowed("10.0.0.7".parse().unwrap()));
        assert!(a.peer_allowed("::ffff:10.0.0.7".parse().unwrap()));
        assert!(a.peer_allowed("2001:db8::1".parse().unwrap()));
        assert!(!a.peer_allowed("10.0.1.7".parse().unwrap()));
        assert!(!a.peer_allowed("127.0.0.1".parse().unwrap()));
        assert!(Access::open().peer_allowed("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn token_file_contents() {
        let t = Access::token_from_file_contents("abc\n").unwrap();
        assert_eq!(t.expose(), "abc");
        assert_eq!(format!("{t:?}"), "***");
        assert_eq!(
            Access::token_from_file_contents(" \n").unwrap_err(),
            TokenError::Empty
        );
    }
}
