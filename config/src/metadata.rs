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
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
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
    })?;
    let Some(obj) = value.as_object() else {
        return Err(vec![field_error(
            "",
            "the metadata is not a JSON object",
            format!("give {{\"{CONF}\": \"<node-config …>\"}} or {{\"{MGMT}\": {{…}}}}"),
        )]);
    };
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
