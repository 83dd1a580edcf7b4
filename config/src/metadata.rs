//! Configurations that arrive as cloud metadata (user data) rather than as a file, mapped onto
//! the same [`NodeConfig`]:
//!
//! - `{"conferencing_node_config": "<xml…>"}`: the string is a schema-1 document, parsed as a
//!   file would be (positions are those inside the string).
//! - `{"management_node_config": {hostname, domain, ip, mask, gw, dns, ntp, user, pass,
//!   admin_password, error_reports, enable_analytics, contact_email_address}}`: the install
//!   wizard's answers. This reader checks the JSON types and makes a named draft
//!   ([`ManagementDraft`]); the rules of `crate::rules` check the values, so every error names
//!   the JSON field (`management_node_config.gw`) and carries no line (line and column 0).
//!   The document's bytes (and digest) are the schema-1 XML serialized from the result.
//!
//! Pure: bytes in, a [`Document`] or diagnostics out.

use std::time::SystemTime;

use serde_json::{Map, Value};

use crate::diagnostic::{Diagnostic, Severity};
use crate::document::Document;
use crate::parse::parse_at;
use crate::rules::{ManagementDraft, Named};
use crate::secret::Secret;

const MGMT: &str = "management_node_config";
const CONF: &str = "conferencing_node_config";

/// The fields of `management_node_config`, in the order of the install wizard.
pub const MANAGEMENT_FIELDS: &[&str] = &[
    "hostname",
    "domain",
    "ip",
    "mask",
    "gw",
    "dns",
    "ntp",
    "user",
    "pass",
    "admin_password",
    "error_reports",
    "enable_analytics",
    "contact_email_address",
];

/// Parses metadata JSON (see the module documentation), checking certificates against the clock.
pub fn from_metadata_json(bytes: &[u8]) -> Result<Document, Vec<Diagnostic>> {
    from_metadata_json_at(bytes, SystemTime::now())
}

/// [`from_metadata_json`] with the time as an input.
pub fn from_metadata_json_at(bytes: &[u8], now: SystemTime) -> Result<Document, Vec<Diagnostic>> {
    let value = json(bytes)?;
    let Some(obj) = value.as_object() else {
        return Err(vec![not_an_object()]);
    };
    from_object(obj, now)
}

/// A JSON object with `conferencing_node_config` or `management_node_config`.
fn from_object(obj: &Map<String, Value>, now: SystemTime) -> Result<Document, Vec<Diagnostic>> {
    match (obj.get(CONF), obj.get(MGMT)) {
        (Some(_), Some(_)) => Err(vec![field_error(
            "",
            format!("the metadata has both \"{CONF}\" and \"{MGMT}\""),
            "give one of the two",
        )]),
        (Some(Value::String(xml)), None) => parse_at(xml.as_bytes(), now),
        (Some(_), None) => Err(vec![field_error(
            CONF,
            format!("\"{CONF}\" is not a string"),
            "give the schema-1 XML document as one JSON string",
        )]),
        (None, Some(Value::Object(m))) => {
            crate::rules::management_at(&management_draft(m)?, MGMT, now)
        }
        (None, Some(_)) => Err(vec![field_error(
            MGMT,
            format!("\"{MGMT}\" is not an object"),
            "give an object with hostname, domain, ip, mask, gw, dns, ntp, user, pass, admin_password, error_reports, enable_analytics",
        )]),
        (None, None) => Err(vec![field_error(
            "",
            format!("the metadata has neither \"{CONF}\" nor \"{MGMT}\""),
            format!("give {{\"{CONF}\": \"<node-config …>\"}} or {{\"{MGMT}\": {{…}}}}"),
        )]),
    }
}

/// The JSON key of an optional bootstrap token beside (or instead of) a configuration.
pub const TOKEN_KEY: &str = "nodeboot_token";

/// The longest bootstrap token taken from a payload (a token is a few dozen characters).
pub const MAX_TOKEN_LEN: usize = 256;

/// What a configuration source carried, read: the configuration (when there was one) and a
/// bootstrap token (when there was one). Its Debug shows no secret.
#[derive(Debug)]
pub struct Payload {
    /// The validated configuration.
    pub document: Option<Document>,
    /// The `nodeboot_token` value.
    pub token: Option<Secret<String>>,
}

/// Reads what a configuration source (a baked file, user data, an OVF property) carried,
/// sniffing its kind: schema-1 XML (first non-blank character `<`), or JSON in any of the
/// platform's shapes — `{"conferencing_node_config": "<xml>"}`, `{"management_node_config":
/// {…}}`, `{"management_node_config": "<the object as a JSON string>"}`, or the bare
/// management object — each with an optional `"nodeboot_token"`. A JSON object with only a
/// token is a payload without a configuration. Errors name the JSON field.
pub fn from_payload(bytes: &[u8]) -> Result<Payload, Vec<Diagnostic>> {
    from_payload_at(bytes, SystemTime::now())
}

/// [`from_payload`] with the time as an input.
pub fn from_payload_at(bytes: &[u8], now: SystemTime) -> Result<Payload, Vec<Diagnostic>> {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    match first {
        Some(b'<') => Ok(Payload {
            document: Some(crate::parse::parse_at(bytes, now)?),
            token: None,
        }),
        Some(b'{') => {
            let mut value = json(bytes)?;
            let Some(obj) = value.as_object_mut() else {
                return Err(vec![not_an_object()]);
            };
            let token = match obj.remove(TOKEN_KEY) {
                None | Some(Value::Null) => None,
                Some(Value::String(t)) => Some(token(&t)?),
                Some(other) => {
                    return Err(vec![field_error(
                        TOKEN_KEY,
                        format!("field \"{TOKEN_KEY}\" is a {}, not a string", kind(&other)),
                        format!("write \"{TOKEN_KEY}\" as a JSON string"),
                    )]);
                }
            };
            let document = if obj.is_empty() && token.is_some() {
                None
            } else if obj.contains_key(CONF) || obj.contains_key(MGMT) {
                if let Some(Value::String(inner)) = obj.get(MGMT) {
                    // OpenStack user data: the object as a JSON string.
                    let inner = json(inner.as_bytes()).map_err(|mut d| {
                        for e in &mut d {
                            e.path = MGMT.to_owned();
                            e.message = format!(
                                "\"{MGMT}\" is a string that is not a JSON object: {}",
                                e.message
                            );
                        }
                        d
                    })?;
                    obj.insert(MGMT.to_owned(), inner);
                }
                Some(from_object(obj, now)?)
            } else {
                // The bare management object (the GCE key's value).
                Some(crate::rules::management_at(
                    &management_draft(obj)?,
                    MGMT,
                    now,
                )?)
            };
            Ok(Payload { document, token })
        }
        _ => Err(vec![field_error(
            "",
            "the configuration is neither XML (it would start with \"<\") nor JSON (\"{\")",
            "give the schema-1 XML document, or the Management Node JSON",
        )]),
    }
}

/// Decodes a value a source delivers as base64 (an OVF property, Oracle's `user_data`), naming
/// `field` when it is not base64. White space (line breaks of wrapped base64) is ignored.
pub fn decode_base64(field: &str, text: &str) -> Result<Vec<u8>, Diagnostic> {
    use base64ct::Encoding as _;
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.len() > crate::MAX_FILE_SIZE / 3 * 4 + 4 {
        return Err(field_error(
            field,
            format!(
                "\"{field}\" is over the limit of {} bytes once decoded",
                crate::MAX_FILE_SIZE
            ),
            "a node's configuration is a few KiB; check that this is the right value",
        ));
    }
    base64ct::Base64::decode_vec(&compact).map_err(|_| {
        field_error(
            field,
            format!("\"{field}\" is not base64"),
            "give the XML or JSON encoded with `base64 -w0` (A-Za-z0-9+/, = padding)",
        )
    })
}

fn token(t: &str) -> Result<Secret<String>, Vec<Diagnostic>> {
    let t = t.trim();
    if t.is_empty() || t.len() > MAX_TOKEN_LEN || !t.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(vec![field_error(
            TOKEN_KEY,
            format!(
                "field \"{TOKEN_KEY}\" is not 1 to {MAX_TOKEN_LEN} printable ASCII characters without spaces"
            ),
            "give a token such as the output of `openssl rand -hex 16`",
        )]);
    }
    Ok(Secret::new(t.to_owned()))
}

fn json(bytes: &[u8]) -> Result<Value, Vec<Diagnostic>> {
    if bytes.len() > crate::MAX_FILE_SIZE {
        return Err(vec![field_error(
            "",
            format!(
                "the metadata is {} bytes long, over the limit of {} bytes (1 MiB)",
                bytes.len(),
                crate::MAX_FILE_SIZE
            ),
            "a node's metadata is a few KiB; check that this is the right source",
        )]);
    }
    // serde_json refuses nesting deeper than 128 levels: a deep document is an error here,
    // not a deep recursion.
    serde_json::from_slice(bytes).map_err(|e| {
        vec![Diagnostic {
            severity: Severity::Error,
            path: String::new(),
            line: u32::try_from(e.line()).unwrap_or(0),
            column: u32::try_from(e.column()).unwrap_or(0),
            message: format!("the metadata is not valid JSON: {e}"),
            help: Some(format!(
                "give a JSON object with the key \"{CONF}\" (a string holding the XML) or \"{MGMT}\" (an object)"
            )),
        }]
    })
}

fn not_an_object() -> Diagnostic {
    field_error(
        "",
        "the metadata is not a JSON object",
        format!("give {{\"{CONF}\": \"<node-config …>\"}} or {{\"{MGMT}\": {{…}}}}"),
    )
}

fn field_error(path: &str, message: impl Into<String>, help: impl Into<String>) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        path: path.to_owned(),
        line: 0,
        column: 0,
        message: message.into(),
        help: Some(help.into()),
    }
}

/// Reads the management answers into a named draft; type errors (a number where a string
/// belongs, a missing field) are reported here with the field's name, the values' rules are
/// those of `crate::rules`.
fn management_draft(m: &Map<String, Value>) -> Result<ManagementDraft, Vec<Diagnostic>> {
    let mut errors = crate::diagnostic::Findings::in_order();
    for k in m.keys() {
        if !MANAGEMENT_FIELDS.contains(&k.as_str()) {
            errors.push(field_error(
                &format!("{MGMT}.{k}"),
                format!("unknown field \"{k}\""),
                format!("known fields: {}", MANAGEMENT_FIELDS.join(", ")),
            ));
        }
    }
    let mut string = |name: &str, required: bool| -> Option<String> {
        match m.get(name) {
            Some(Value::String(s)) => Some(s.trim().to_owned()),
            None | Some(Value::Null) if !required => None,
            None | Some(Value::Null) => {
                errors.push(field_error(
                    &format!("{MGMT}.{name}"),
                    format!("field \"{name}\" is missing"),
                    format!("add \"{name}\": \"…\""),
                ));
                None
            }
            Some(other) => {
                errors.push(field_error(
                    &format!("{MGMT}.{name}"),
                    format!("field \"{name}\" is a {}, not a string", kind(other)),
                    format!("write \"{name}\" as a JSON string"),
                ));
                None
            }
        }
    };
    let hostname = string("hostname", true);
    let domain = string("domain", true);
    let ip = string("ip", true);
    let mask = string("mask", true);
    let gw = string("gw", true);
    let dns = string("dns", true);
    let ntp = string("ntp", true);
    let user = string("user", true);
    let pass = string("pass", true);
    let admin = string("admin_password", true);
    let email = string("contact_email_address", false).filter(|s| !s.is_empty());
    let mut flag = |name: &str| -> Option<bool> {
        match m.get(name) {
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" => Some(true),
                "false" | "no" => Some(false),
                _ => {
                    errors.push(field_error(
                        &format!("{MGMT}.{name}"),
                        format!("field \"{name}\" is {s:?}, not a yes/no answer"),
                        "write true or false (or \"yes\"/\"no\")",
                    ));
                    None
                }
            },
            None | Some(Value::Null) => {
                errors.push(field_error(
                    &format!("{MGMT}.{name}"),
                    format!("field \"{name}\" is missing"),
                    format!("add \"{name}\": false (or true)"),
                ));
                None
            }
            Some(other) => {
                errors.push(field_error(
                    &format!("{MGMT}.{name}"),
                    format!("field \"{name}\" is a {}, not a boolean", kind(other)),
                    "write true or false",
                ));
                None
            }
        }
    };
    let reports = flag("error_reports");
    let analytics = flag("enable_analytics");
    for (name, value) in [("dns", &dns), ("ntp", &ntp)] {
        if value
            .as_deref()
            .is_some_and(|v| v.split_whitespace().next().is_none())
        {
            errors.push(field_error(
                &format!("{MGMT}.{name}"),
                format!("field \"{name}\" is empty"),
                format!(
                    "give one or more {} servers separated by spaces",
                    name.to_uppercase()
                ),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors.finish());
    }
    let (
        Some(hostname),
        Some(domain),
        Some(ip),
        Some(mask),
        Some(gw),
        Some(dns),
        Some(ntp),
        Some(user),
        Some(pass),
        Some(admin),
        Some(reports),
        Some(analytics),
    ) = (
        hostname, domain, ip, mask, gw, dns, ntp, user, pass, admin, reports, analytics,
    )
    else {
        return Err(errors.finish());
    };
    let named = |field: &str, value: String| Named::new(format!("{MGMT}.{field}"), value);
    let list = |field: &str, value: &str| -> Vec<Named> {
        value
            .split_whitespace()
            .map(|v| named(field, v.to_owned()))
            .collect()
    };
    Ok(ManagementDraft {
        dns: list("dns", &dns),
        ntp: list("ntp", &ntp),
        hostname: named("hostname", hostname),
        domain: named("domain", domain),
        ip: named("ip", ip),
        mask: named("mask", mask),
        gw: named("gw", gw),
        user: named("user", user),
        pass: named("pass", pass),
        admin_password: named("admin_password", admin),
        error_reports: Named::new(format!("{MGMT}.error_reports"), reports),
        enable_analytics: Named::new(format!("{MGMT}.enable_analytics"), analytics),
        contact_email: email.map(|e| named("contact_email_address", e)),
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
