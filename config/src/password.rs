//! Hashing a plain-text password into the SHA-512-crypt form files carry (`$6$…`).
//!
//! Shared by `nodeboot generate` and the agent's install wizard, so both write the same kind of
//! hash. The plain text is borrowed, never stored, never printed.

use sha_crypt::{PasswordHasher, ShaCrypt};

use crate::model::{InvalidValue, PasswordHash};

/// Hashes `plain` with SHA-512-crypt, a fresh random salt and the default 5000 rounds.
///
/// Refuses an empty password and one with control characters (a terminal could not type it
/// again). The result always passes [`PasswordHash::parse`].
pub fn hash_password(plain: &str) -> Result<PasswordHash, InvalidValue> {
    if plain.is_empty() {
        return Err(InvalidValue::new(
            "the password is empty",
            "type a password of at least one character",
        ));
    }
    if plain.chars().any(char::is_control) {
        return Err(InvalidValue::new(
            "the password contains a control character",
            "use printable characters only",
        ));
    }
    // 12 random bytes make the 16-character salt glibc reads (it ignores anything longer).
    let salt = sha_crypt::password_hash::try_generate_salt().map_err(|e| {
        InvalidValue::new(
            format!("no random salt could be made: {e}"),
            "try again; the system's random number source is unavailable",
        )
    })?;
    let salt = salt.get(..12).unwrap_or(&salt);
    let hash = ShaCrypt::SHA512
        .hash_password_with_salt(plain.as_bytes(), salt)
        .map_err(|e| {
            InvalidValue::new(
                format!("the password could not be hashed: {e}"),
                "try again; the system's random number source may be unavailable",
            )
        })?;
    PasswordHash::parse(hash.as_str())
}

/// True when `plain` is the password `hash` was made from (for tests and the wizard's
/// confirmation).
pub fn verify_password(plain: &str, hash: &PasswordHash) -> bool {
    use sha_crypt::PasswordVerifier;
    ShaCrypt::default()
        .verify_password(plain.as_bytes(), hash.expose())
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let a = hash_password("correct horse").unwrap();
        let b = hash_password("correct horse").unwrap();
        assert!(a.expose().starts_with("$6$"));
        assert_ne!(a.expose(), b.expose());
        assert!(verify_password("correct horse", &a));
        assert!(!verify_password("wrong", &a));
        assert_eq!(
            hash_password("").unwrap_err().message,
            "the password is empty"
        );
    }
}
