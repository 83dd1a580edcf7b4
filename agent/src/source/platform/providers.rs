//! The HTTP metadata services: Oracle Cloud, Google Compute Engine, OpenStack, Amazon EC2 and
//! Azure (with its ready report). Each is a thin sequence of requests (`http::send`) around a
//! pure mapping from what the service answered to a [`Found`], unit-tested here.

use std::net::SocketAddr;

use base64::Engine;
use hyper::{Method, StatusCode};
use serde_json::Value;
use tokio::time::Instant;

use super::http::{self, Answer, Req, retry_azure_imds, retry_default};
use super::{AZURE_WIRE_SERVER, Env, FetchError, Found, ovf};
use nodeboot_config::Secret;

/// The configuration keys platforms carry as metadata, in order of precedence.
pub const MANAGEMENT_KEY: &str = "management_node_config";
/// See [`MANAGEMENT_KEY`].
pub const CONFERENCING_KEY: &str = "conferencing_node_config";
/// The bootstrap token's metadata key.
pub const TOKEN_KEY: &str = "nodeboot_token";

/// OCI's instance document: 32,000 B of user metadata plus the instance's own fields.
pub const ORACLE_LIMIT: usize = 64 * 1024;
/// GCE: 256 KiB per attribute value.
pub const GCE_LIMIT: usize = 256 * 1024;
/// EC2: user data is at most 16 KiB.
pub const EC2_LIMIT: usize = 16 * 1024;
/// OpenStack, Azure: the 1 MiB every configuration is bounded by (base64 adds a third).
pub const DEFAULT_LIMIT: usize = 1024 * 1024;
/// Azure's base64 user data of a 1 MiB configuration.
pub const AZURE_LIMIT: usize = DEFAULT_LIMIT * 4 / 3 + 4;
/// Small answers: the EC2 token, the Azure goal state.
const SMALL_LIMIT: usize = 64 * 1024;

fn base64_decode(value: &str, what: &str) -> Result<Vec<u8>, FetchError> {
    let clean: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(clean.as_bytes())
        .map_err(|e| FetchError::invalid(format!("{what} is not valid base64: {e}")))
}

/// `{"<key>": <value>}`: the value as it is when it is JSON (the bare object GCE carries),
/// else as a JSON string (the XML of `conferencing_node_config`), for the payload reader.
pub fn wrap_metadata(key: &str, value: &[u8]) -> Vec<u8> {
    if serde_json::from_slice::<serde::de::IgnoredAny>(value).is_ok() {
        let mut out = Vec::with_capacity(value.len() + key.len() + 8);
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"}");
        out
    } else {
        let text = String::from_utf8_lossy(value);
        serde_json::json!({ key: text }).to_string().into_bytes()
    }
}

fn found(origin: String, bytes: Option<Vec<u8>>, token: Option<String>) -> Option<Found> {
    let token = token.filter(|t| !t.is_empty()).map(Secret::new);
    if bytes.is_none() && token.is_none() {
        return None;
    }
    Some(Found {
        origin,
        bytes,
        token,
    })
}

fn unexpected(who: &str, path: &str, a: &Answer) -> FetchError {
    FetchError::unavailable(format!("{who}: GET {path}: answered {}", a.status))
}

// ---------------------------------------------------------------- Oracle Cloud

const ORACLE: &str = "Oracle Cloud metadata";
/// Oracle IMDS v2 (and v1, tried when v2 answers 404).
pub const ORACLE_V2: &str = "/opc/v2/instance/";
/// See [`ORACLE_V2`].
pub const ORACLE_V1: &str = "/opc/v1/instance/";

/// From OCI's instance document: `metadata.management_node_config`,
/// `metadata.conferencing_node_config` (wrapped as the payload reader expects), else
/// `metadata.user_data` (base64, handed as is), and `metadata.nodeboot_token`.
pub fn oracle_from_instance(doc: &[u8]) -> Result<Option<Found>, FetchError> {
    let v: Value = serde_json::from_slice(doc).map_err(|e| {
        FetchError::unavailable(format!("{ORACLE}: the instance document is not JSON: {e}"))
    })?;
    let Some(meta) = v.get("metadata").and_then(Value::as_object) else {
        return Ok(None);
    };
    let token = meta
        .get(TOKEN_KEY)
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut bytes = None;
    let mut origin = String::from(ORACLE);
    for key in [MANAGEMENT_KEY, CONFERENCING_KEY] {
        if let Some(value) = meta.get(key) {
            bytes = Some(serde_json::json!({ key: value }).to_string().into_bytes());
            origin = format!("{ORACLE} (metadata.{key})");
            break;
        }
    }
    if bytes.is_none() {
        match meta.get("user_data") {
            Some(Value::String(s)) if !s.trim().is_empty() => {
                bytes = Some(base64_decode(s, &format!("{ORACLE}: metadata.user_data"))?);
                origin = format!("{ORACLE} (metadata.user_data)");
            }
            Some(Value::String(_)) | None => {}
            Some(_) => {
                return Err(FetchError::invalid(format!(
                    "{ORACLE}: metadata.user_data is not a string"
                )));
            }
        }
    }
    Ok(found(origin, bytes, token))
}

pub(super) async fn oracle(env: &Env, deadline: Instant) -> Result<Option<Found>, FetchError> {
    let mut answer = None;
    for path in [ORACLE_V2, ORACLE_V1] {
        let req = Req {
            who: ORACLE,
            method: Method::GET,
            addr: env.metadata,
            path,
            headers: &[("Authorization", "Bearer Oracle")],
            body: None,
            limit: ORACLE_LIMIT,
            retry: retry_default,
        };
        let a = http::send(env, &req, deadline).await?;
        match a.status {
            StatusCode::OK => {
                answer = Some(a);
                break;
            }
            StatusCode::NOT_FOUND if path == ORACLE_V2 => continue,
            _ => return Err(unexpected(ORACLE, path, &a)),
        }
    }
    match answer {
        Some(a) => oracle_from_instance(&a.body),
        None => Err(FetchError::unavailable(format!(
            "{ORACLE}: GET {ORACLE_V1}: answered 404 Not Found"
        ))),
    }
}

// ---------------------------------------------------------------- Google Compute Engine

const GCE: &str = "Google Compute Engine metadata";
/// Where GCE's custom metadata lives.
pub const GCE_ATTRIBUTES: &str = "/computeMetadata/v1/instance/attributes/";

async fn gce_attribute(
    env: &Env,
    key: &str,
    deadline: Instant,
) -> Result<Option<Vec<u8>>, FetchError> {
    let path = format!("{GCE_ATTRIBUTES}{key}");
    let req = Req {
        who: GCE,
        method: Method::GET,
        addr: env.metadata,
        path: &path,
        headers: &[("Metadata-Flavor", "Google")],
        body: None,
        limit: GCE_LIMIT,
        retry: retry_default,
    };
    let a = http::send(env, &req, deadline).await?;
    match a.status {
        // An empty value is no value.
        StatusCode::OK if a.body.trim_ascii().is_empty() => Ok(None),
        StatusCode::OK => Ok(Some(a.body)),
        StatusCode::NOT_FOUND => Ok(None),
        _ => Err(unexpected(GCE, &path, &a)),
    }
}

/// GCE's keys mapped to what the chain reads: the first present of
/// `management_node_config`, `conferencing_node_config` (wrapped), `user-data` (as is).
pub fn gce_config(key: &str, value: Vec<u8>) -> Vec<u8> {
    if key == "user-data" {
        value
    } else {
        wrap_metadata(key, &value)
    }
}

pub(super) async fn gce(env: &Env, deadline: Instant) -> Result<Option<Found>, FetchError> {
    let mut bytes = None;
    let mut origin = String::from(GCE);
    for key in [MANAGEMENT_KEY, CONFERENCING_KEY, "user-data"] {
        if let Some(v) = gce_attribute(env, key, deadline).await? {
            bytes = Some(gce_config(key, v));
            origin = format!("{GCE} (attributes/{key})");
            break;
        }
    }
    let token = gce_attribute(env, TOKEN_KEY, deadline)
        .await?
        .map(|t| String::from_utf8_lossy(&t).trim().to_owned());
    Ok(found(origin, bytes, token))
}

// ---------------------------------------------------------------- OpenStack

const OPENSTACK: &str = "OpenStack metadata";
/// OpenStack's user data.
pub const OPENSTACK_USER_DATA: &str = "/openstack/latest/user_data";

pub(super) async fn openstack(env: &Env, deadline: Instant) -> Result<Option<Found>, FetchError> {
    let req = Req {
        who: OPENSTACK,
        method: Method::GET,
        addr: env.metadata,
        path: OPENSTACK_USER_DATA,
        headers: &[],
        body: None,
        limit: DEFAULT_LIMIT,
        retry: retry_default,
    };
    let a = http::send(env, &req, deadline).await?;
    match a.status {
        StatusCode::OK if !a.body.is_empty() => Ok(found(
            format!("{OPENSTACK} (openstack/latest/user_data)"),
            Some(a.body),
            None,
        )),
        StatusCode::OK | StatusCode::NOT_FOUND => Ok(None),
        _ => Err(unexpected(OPENSTACK, OPENSTACK_USER_DATA, &a)),
    }
}

// ---------------------------------------------------------------- Amazon EC2

const EC2: &str = "Amazon EC2 metadata";
/// EC2 IMDSv2's session token.
pub const EC2_TOKEN: &str = "/latest/api/token";
/// EC2's user data.
pub const EC2_USER_DATA: &str = "/latest/user-data";

pub(super) async fn ec2(env: &Env, deadline: Instant) -> Result<Option<Found>, FetchError> {
    let req = Req {
        who: EC2,
        method: Method::PUT,
        addr: env.metadata,
        path: EC2_TOKEN,
        headers: &[("X-aws-ec2-metadata-token-ttl-seconds", "300")],
        body: None,
        limit: SMALL_LIMIT,
        retry: retry_default,
    };
    let a = http::send(env, &req, deadline).await?;
    if a.status != StatusCode::OK {
        return Err(FetchError::unavailable(format!(
            "{EC2}: PUT {EC2_TOKEN}: answered {}",
            a.status
        )));
    }
    let token = Secret::new(String::from_utf8_lossy(&a.body).trim().to_owned());
    let req = Req {
        who: EC2,
        method: Method::GET,
        addr: env.metadata,
        path: EC2_USER_DATA,
        headers: &[("X-aws-ec2-metadata-token", token.expose().as_str())],
        body: None,
        limit: EC2_LIMIT,
        retry: retry_default,
    };
    let a = http::send(env, &req, deadline).await?;
    match a.status {
        StatusCode::OK if !a.body.is_empty() => {
            Ok(found(format!("{EC2} (user-data)"), Some(a.body), None))
        }
        StatusCode::OK | StatusCode::NOT_FOUND => Ok(None),
        _ => Err(unexpected(EC2, EC2_USER_DATA, &a)),
    }
}

// ---------------------------------------------------------------- Azure

const AZURE: &str = "Azure metadata";
const WIRE: &str = "Azure wire server";
/// Azure IMDS's user data.
pub const AZURE_USER_DATA: &str =
    "/metadata/instance/compute/userData?api-version=2021-01-01&format=text";
/// The wire server's goal state.
pub const AZURE_GOAL_STATE: &str = "/machine/?comp=goalstate";
/// The wire server's health report.
pub const AZURE_HEALTH: &str = "/machine/?comp=health";
const WIRE_VERSION: (&str, &str) = ("x-ms-version", "2012-11-30");
const WIRE_AGENT: (&str, &str) = ("x-ms-agent-name", "nodeboot-agent");

/// Azure: IMDS `userData` (base64), else the provisioning disc's `CustomData` (base64); the
/// ready report is always sent afterwards, whatever was found.
pub(super) async fn azure(env: &Env, deadline: Instant) -> Result<Option<Found>, FetchError> {
    let result = azure_read(env, deadline).await;
    azure_ready_report(env).await;
    result
}

async fn azure_read(env: &Env, deadline: Instant) -> Result<Option<Found>, FetchError> {
    let custom = match &env.azure_ovf_env {
        Some(xml) => ovf::azure_custom_data(xml)
            .map_err(|e| FetchError::invalid(format!("Azure provisioning disc: {e}")))?,
        None => None,
    };
    let req = Req {
        who: AZURE,
        method: Method::GET,
        addr: env.metadata,
        path: AZURE_USER_DATA,
        headers: &[("Metadata", "true")],
        body: None,
        limit: AZURE_LIMIT,
        retry: retry_azure_imds,
    };
    let imds = match http::send(env, &req, deadline).await {
        Ok(a) if a.status == StatusCode::OK => {
            Ok(String::from_utf8_lossy(&a.body).trim().to_owned())
        }
        Ok(a) => Err(unexpected(AZURE, AZURE_USER_DATA, &a)),
        Err(e) => Err(e),
    };
    match (imds, custom) {
        (Ok(user), _) if !user.is_empty() => {
            let bytes = base64_decode(&user, &format!("{AZURE}: userData"))?;
            Ok(found(format!("{AZURE} (userData)"), Some(bytes), None))
        }
        (Err(e), Some(c)) => {
            tracing::warn!(error = %e, "Azure IMDS could not be read; using the provisioning disc's customData");
            azure_custom(Some(c))
        }
        (Err(e), None) => Err(e),
        (Ok(_), custom) => azure_custom(custom),
    }
}

fn azure_custom(custom: Option<String>) -> Result<Option<Found>, FetchError> {
    match custom {
        Some(c) => {
            let bytes = base64_decode(&c, "Azure provisioning disc: CustomData")?;
            Ok(found(
                "Azure provisioning disc (ovf-env.xml CustomData)".into(),
                Some(bytes),
                None,
            ))
        }
        None => Ok(None),
    }
}

/// The wire server: `env.wire_server`, else DHCP option 245 from networkd's lease of the
/// interface, else 168.63.129.16, port 80.
fn wire_server(env: &Env) -> SocketAddr {
    if let Some(a) = env.wire_server {
        return a;
    }
    let from_lease = env.interface.as_deref().and_then(|ifname| {
        use std::io::Read;
        let index = nix::net::if_::if_nametoindex(ifname).ok()?;
        let mut text = String::new();
        std::fs::File::open(env.lease_dir.join(index.to_string()))
            .ok()?
            .take(SMALL_LIMIT as u64)
            .read_to_string(&mut text)
            .ok()?;
        super::wire_server_from_lease(&text)
    });
    SocketAddr::from((from_lease.unwrap_or(AZURE_WIRE_SERVER), 80))
}

/// Tells the wire server the VM is ready (goal state, then health). Without it Azure fails the
/// VM's creation after about 40 minutes. Failures are logged: the outcome of the source does
/// not change.
pub(super) async fn azure_ready_report(env: &Env) {
    if let Err(e) = ready_report(env).await {
        tracing::warn!(error = %e, "Azure ready report not sent");
    } else {
        tracing::info!("Azure ready report sent");
    }
}

async fn ready_report(env: &Env) -> Result<(), FetchError> {
    let deadline = Instant::now() + env.budgets.ready_report;
    let addr = wire_server(env);
    let req = Req {
        who: WIRE,
        method: Method::GET,
        addr,
        path: AZURE_GOAL_STATE,
        headers: &[WIRE_VERSION, WIRE_AGENT],
        body: None,
        limit: SMALL_LIMIT,
        retry: retry_azure_imds,
    };
    let a = http::send(env, &req, deadline).await?;
    if a.status != StatusCode::OK {
        return Err(unexpected(WIRE, AZURE_GOAL_STATE, &a));
    }
    let goal =
        ovf::goal_state(&a.body).map_err(|e| FetchError::unavailable(format!("{WIRE}: {e}")))?;
    let req = Req {
        who: WIRE,
        method: Method::POST,
        addr,
        path: AZURE_HEALTH,
        headers: &[
            WIRE_VERSION,
            WIRE_AGENT,
            ("Content-Type", "text/xml; charset=utf-8"),
        ],
        body: Some(ovf::render_health(&goal)),
        limit: SMALL_LIMIT,
        retry: retry_default,
    };
    let a = http::send(env, &req, deadline).await?;
    if a.status.is_success() {
        Ok(())
    } else {
        Err(FetchError::unavailable(format!(
            "{WIRE}: POST {AZURE_HEALTH}: answered {}",
            a.status
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::platform::FetchErrorKind;

    fn bytes(f: &Option<Found>) -> Option<String> {
        f.as_ref()?
            .bytes
            .as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }

    #[test]
    fn wrap_keeps_json_and_quotes_the_rest() {
        assert_eq!(
            wrap_metadata(MANAGEMENT_KEY, br#"{"hostname": "mgr"}"#),
            br#"{"management_node_config": {"hostname": "mgr"}}"#.to_vec()
        );
        assert_eq!(
            wrap_metadata(CONFERENCING_KEY, b"<node-config schema=\"1\"/>"),
            br#"{"conferencing_node_config":"<node-config schema=\"1\"/>"}"#.to_vec()
        );
        assert_eq!(gce_config("user-data", b"raw".to_vec()), b"raw".to_vec());
    }

    #[test]
    fn oracle_shapes() {
        let doc = br#"{"id":"ocid1","metadata":{"management_node_config":{"hostname":"m"},"nodeboot_token":"t0k"}}"#;
        let f = oracle_from_instance(doc).unwrap_or(None);
        assert_eq!(
            bytes(&f).as_deref(),
            Some(r#"{"management_node_config":{"hostname":"m"}}"#)
        );
        let f = f.unwrap_or_else(|| Found {
            origin: String::new(),
            bytes: None,
            token: None,
        });
        assert_eq!(
            f.origin,
            "Oracle Cloud metadata (metadata.management_node_config)"
        );
        assert_eq!(f.token.as_ref().map(|t| t.expose().as_str()), Some("t0k"));

        let doc = br#"{"metadata":{"conferencing_node_config":"<x/>"}}"#;
        let f = oracle_from_instance(doc).unwrap_or(None);
        assert_eq!(
            bytes(&f).as_deref(),
            Some(r#"{"conferencing_node_config":"<x/>"}"#)
        );

        let doc = br#"{"metadata":{"user_data":"PG5vZGUtY29uZmlnLz4="}}"#;
        let f = oracle_from_instance(doc).unwrap_or(None);
        assert_eq!(bytes(&f).as_deref(), Some("<node-config/>"));

        let only_token = br#"{"metadata":{"nodeboot_token":"t"}}"#;
        let f = oracle_from_instance(only_token).unwrap_or(None);
        assert!(
            f.as_ref()
                .is_some_and(|f| f.bytes.is_none() && f.token.is_some())
        );

        assert!(matches!(
            oracle_from_instance(br#"{"metadata":{}}"#),
            Ok(None)
        ));
        assert!(matches!(oracle_from_instance(br#"{"id":"x"}"#), Ok(None)));
        let bad = oracle_from_instance(br#"{"metadata":{"user_data":"%%%"}}"#);
        assert!(
            matches!(&bad, Err(e) if e.kind == FetchErrorKind::Invalid),
            "{bad:?}"
        );
    }
}
