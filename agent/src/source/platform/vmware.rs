//! VMware: the configuration in guestinfo, read with `vmware-rpctool` (open-vm-tools):
//! `guestinfo.nodeboot.config` (+ `guestinfo.nodeboot.config.encoding`: empty, `base64` or
//! `gzip+base64`) first, then the OVF environment (`guestinfo.ovfEnv`, properties
//! `nodeboot.config` in base64 and `nodeboot.token`). After an apply, `forget` empties
//! `guestinfo.nodeboot.config` (the guest may not delete the OVF environment).

use std::io::Read;
use std::process::Stdio;

use base64::Engine;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use super::{Env, FetchError, Found, ovf};
use nodeboot_config::Secret;

const WHO: &str = "VMware guestinfo";
/// The guestinfo key the configuration is read from and deleted after an apply.
pub const CONFIG_KEY: &str = "guestinfo.nodeboot.config";
/// The largest value read from `vmware-rpctool` (an OVF environment with 1 MiB in base64).
const MAX_VALUE: usize = ovf::MAX_XML;
/// The largest configuration after decoding (gzip included).
pub const MAX_DECODED: usize = 1024 * 1024;

/// A guestinfo value, decoded according to its encoding (pure). Gunzipping stops at
/// [`MAX_DECODED`] bytes (a gzip bomb costs at most that).
pub fn decode_guestinfo(value: &[u8], encoding: &str) -> Result<Vec<u8>, FetchError> {
    let b64 = |v: &[u8]| {
        let clean: Vec<u8> = v
            .iter()
            .copied()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(clean)
            .map_err(|e| {
                FetchError::invalid(format!("{WHO}: {CONFIG_KEY} is not valid base64: {e}"))
            })
    };
    let out = match encoding.trim() {
        "" => value.to_vec(),
        "base64" | "b64" => b64(value)?,
        "gzip+base64" | "gz+base64" | "gzip+b64" | "gz+b64" => {
            let gz = b64(value)?;
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(gz.as_slice())
                .take(MAX_DECODED as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    FetchError::invalid(format!("{WHO}: {CONFIG_KEY} is not valid gzip: {e}"))
                })?;
            out
        }
        other => {
            return Err(FetchError::invalid(format!(
                "{WHO}: unknown {CONFIG_KEY}.encoding {other:?} (give base64, gzip+base64, or nothing)"
            )));
        }
    };
    if out.len() > MAX_DECODED {
        return Err(FetchError::invalid(format!(
            "{WHO}: {CONFIG_KEY} decodes to more than {MAX_DECODED} bytes"
        )));
    }
    Ok(out)
}

/// An empty value, or the `''` that `forget` leaves, reads as absent.
fn is_empty_value(v: &[u8]) -> bool {
    let t = v.trim_ascii();
    t.is_empty() || t == b"''"
}

/// `vmware-rpctool "info-get KEY"`: `Some(value)` (one trailing newline removed), `None` when
/// the key is not set (the tool exits non-zero).
async fn info_get(env: &Env, key: &str, deadline: Instant) -> Result<Option<Vec<u8>>, FetchError> {
    let tool = env.rpctool.display();
    let mut child = tokio::process::Command::new(&env.rpctool)
        .arg(format!("info-get {key}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| FetchError::unavailable(format!("{WHO}: cannot run {tool}: {e}")))?;
    let Some(stdout) = child.stdout.take() else {
        return Err(FetchError::unavailable(format!(
            "{WHO}: {tool} has no output pipe"
        )));
    };
    let run = async {
        let mut out = Vec::new();
        stdout
            .take(MAX_VALUE as u64 + 1)
            .read_to_end(&mut out)
            .await
            .map_err(|e| FetchError::unavailable(format!("{WHO}: reading {tool}'s output: {e}")))?;
        if out.len() > MAX_VALUE {
            return Err(FetchError::invalid(format!(
                "{WHO}: {key} is over the limit of {MAX_VALUE} bytes"
            )));
        }
        let status = child
            .wait()
            .await
            .map_err(|e| FetchError::unavailable(format!("{WHO}: waiting for {tool}: {e}")))?;
        Ok((status, out))
    };
    let (status, mut out) = tokio::time::timeout_at(deadline, run).await.map_err(|_| {
        FetchError::unavailable(format!(
            "{WHO}: {tool} info-get {key} did not finish within the source's budget"
        ))
    })??;
    if !status.success() {
        return Ok(None);
    }
    if out.last() == Some(&b'\n') {
        out.pop();
    }
    Ok(Some(out))
}

pub(super) async fn fetch(env: &Env, deadline: Instant) -> Result<Option<Found>, FetchError> {
    let ovf_env = info_get(env, "guestinfo.ovfEnv", deadline).await?;
    let props = match ovf_env.as_deref() {
        Some(xml) if !is_empty_value(xml) => ovf::ovf_properties(xml)
            .map_err(|e| FetchError::invalid(format!("{WHO}: guestinfo.ovfEnv: {e}")))?,
        _ => Vec::new(),
    };
    let prop = |k: &str| {
        props
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let token = prop("nodeboot.token")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| Secret::new(t.to_owned()));

    if let Some(value) = info_get(env, CONFIG_KEY, deadline).await? {
        if !is_empty_value(&value) {
            let encoding = info_get(env, &format!("{CONFIG_KEY}.encoding"), deadline)
                .await?
                .map(|e| String::from_utf8_lossy(&e).into_owned())
                .unwrap_or_default();
            let bytes = decode_guestinfo(&value, &encoding)?;
            return Ok(Some(Found {
                origin: format!("{WHO} ({CONFIG_KEY})"),
                bytes: Some(bytes),
                token,
            }));
        }
    }
    let bytes = match prop("nodeboot.config").map(str::trim) {
        Some(v) if !v.is_empty() => {
            Some(decode_guestinfo(v.as_bytes(), "base64").map_err(|e| {
                FetchError::invalid(
                    e.message
                        .replace(CONFIG_KEY, "OVF property nodeboot.config"),
                )
            })?)
        }
        _ => None,
    };
    if bytes.is_none() && token.is_none() {
        return Ok(None);
    }
    Ok(Some(Found {
        origin: format!("{WHO} (OVF environment, nodeboot.config)"),
        bytes,
        token,
    }))
}

/// Empties `guestinfo.nodeboot.config` (`vmware-rpctool "info-set guestinfo.nodeboot.config ''"`).
pub(super) fn forget(env: &Env) -> Result<(), FetchError> {
    let tool = env.rpctool.display();
    let status = std::process::Command::new(&env.rpctool)
        .arg(format!("info-set {CONFIG_KEY} ''"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| FetchError::unavailable(format!("{WHO}: cannot run {tool}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(FetchError::unavailable(format!(
            "{WHO}: {tool} info-set {CONFIG_KEY} failed ({status})"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let _ = e.write_all(data);
        e.finish().unwrap_or_default()
    }

    fn b64(data: &[u8]) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .encode(data)
            .into_bytes()
    }

    #[test]
    fn encodings() {
        assert_eq!(decode_guestinfo(b"<x/>", ""), Ok(b"<x/>".to_vec()));
        assert_eq!(
            decode_guestinfo(&b64(b"<x/>"), "base64"),
            Ok(b"<x/>".to_vec())
        );
        assert_eq!(
            decode_guestinfo(&b64(&gzip(b"<x/>")), "gzip+base64"),
            Ok(b"<x/>".to_vec())
        );
        let e = decode_guestinfo(b"x", "rot13").err().map(|e| e.message);
        assert_eq!(
            e.as_deref(),
            Some(
                "VMware guestinfo: unknown guestinfo.nodeboot.config.encoding \"rot13\" (give base64, gzip+base64, or nothing)"
            )
        );
        assert!(decode_guestinfo(b"%%", "base64").is_err());
        assert!(decode_guestinfo(&b64(b"not gzip"), "gzip+base64").is_err());
    }

    #[test]
    fn gzip_bomb_is_bounded() {
        let bomb = gzip(&vec![b'a'; 64 * 1024 * 1024]);
        let e = decode_guestinfo(&b64(&bomb), "gzip+base64")
            .err()
            .map(|e| e.message);
        assert_eq!(
            e.as_deref(),
            Some("VMware guestinfo: guestinfo.nodeboot.config decodes to more than 1048576 bytes")
        );
    }

    #[test]
    fn forgotten_value_reads_as_absent() {
        assert!(is_empty_value(b"''"));
        assert!(is_empty_value(b" \n"));
        assert!(!is_empty_value(b"x"));
    }
}
