//! Before anything is sent: every node's file checked as the node will check it, and a plan
//! per node (what to send, its digest, how its certificate is trusted).
//!
//! Pure: what was read for each node ([`Material`], read by `inventory::material`) in, jobs
//! and the compiler-style text of every finding out; the caller prints that text and loads
//! nothing here. Nothing is sent unless every file is valid (or `--skip-invalid`).

use std::net::IpAddr;
use std::time::Duration;

use hyper::body::Bytes;
use nodeboot_config::api::BOOTSTRAP_PATH;
use nodeboot_config::{MaskedSource, NodeConfig, Severity};

use super::inventory::Target;
use super::summary::{FileError, NodeResult, Outcome};
use super::trust::{PinSource, Policy};

/// What was read for one node.
#[derive(Debug)]
pub enum Material {
    /// The configuration's bytes, and what to call them in messages (a path, or
    /// ``node `n1` (generated)``).
    Bytes {
        /// The file's name in messages.
        what: String,
        /// Its content.
        bytes: Vec<u8>,
    },
    /// The node's inventory parameters make no valid file: why.
    Unusable {
        /// The parameters' name in messages.
        what: String,
        /// Every problem.
        errors: Vec<String>,
    },
    /// Nothing could be read (a missing file, no file named): stops the run.
    Unreadable(anyhow::Error),
}

/// A node with its checked file, ready to send.
#[derive(Debug)]
pub struct Job {
    /// The node.
    pub target: Target,
    /// The file, as sent.
    pub body: Bytes,
    /// Its SHA-256.
    pub digest: String,
    /// The address the file gives the node (static NAT, else eth0), when it parses.
    pub configured: Option<IpAddr>,
}

/// Every node's job, with its place in the inventory.
#[derive(Debug, Default)]
pub struct Prepared {
    /// The nodes to contact.
    pub jobs: Vec<(usize, Job)>,
    /// The nodes whose file is invalid (`--skip-invalid`), as final results.
    pub invalid: Vec<(usize, NodeResult)>,
    /// Every finding, compiler-style, for stderr.
    pub report: String,
}

/// Why nothing is sent.
#[derive(Debug)]
pub struct Stop {
    /// The findings up to the stop, for stderr.
    pub report: String,
    /// Why.
    pub error: anyhow::Error,
}

/// Checks every node's material (`validate`: as the node will; otherwise only read) and
/// stops at the first unreadable one, or after all when some are invalid and not
/// `skip_invalid`.
pub fn prepare(
    materials: Vec<(Target, Material)>,
    validate: bool,
    skip_invalid: bool,
) -> Result<Prepared, Stop> {
    let total = materials.len();
    let mut out = Prepared::default();
    for (index, (target, material)) in materials.into_iter().enumerate() {
        match check(target, material, validate, &mut out.report) {
            Ok(Ok(job)) => out.jobs.push((index, job)),
            Ok(Err(result)) => out.invalid.push((index, result)),
            Err(error) => {
                return Err(Stop {
                    report: out.report,
                    error,
                });
            }
        }
    }
    let invalid = out.invalid.len();
    if invalid > 0 && !skip_invalid {
        return Err(Stop {
            report: out.report,
            error: anyhow::anyhow!(
                "{invalid} of {total} file(s) invalid: nothing was sent (fix them, or pass \
                 --skip-invalid to send the others)"
            ),
        });
    }
    Ok(out)
}

/// One node: its job, or its result as an invalid node; findings appended to `report`.
fn check(
    target: Target,
    material: Material,
    validate: bool,
    report: &mut String,
) -> anyhow::Result<Result<Job, NodeResult>> {
    let (what, bytes) = match material {
        Material::Bytes { what, bytes } => (what, bytes),
        Material::Unusable { what, errors } => {
            for e in &errors {
                report.push_str(&format!("{what}: error: {e}\n"));
            }
            let errors = errors
                .into_iter()
                .map(|message| FileError {
                    line: None,
                    column: None,
                    path: None,
                    message,
                })
                .collect();
            return Ok(Err(invalid(&target, &what, errors)));
        }
        Material::Unreadable(e) => return Err(e),
    };
    if !validate {
        let digest = nodeboot_config::digest(&bytes);
        let configured = nodeboot_config::parse(&bytes)
            .ok()
            .map(|p| configured_address(p.config()));
        return Ok(Ok(Job {
            target,
            body: Bytes::from(bytes),
            digest,
            configured,
        }));
    }
    match nodeboot_config::parse(&bytes) {
        Ok(parsed) => {
            if !parsed.warnings().is_empty() {
                let text = MaskedSource::new(&bytes);
                for w in parsed.warnings() {
                    report.push_str(&w.render(&what, &text));
                }
            }
            Ok(Ok(Job {
                target,
                body: Bytes::from(bytes),
                digest: parsed.digest().to_owned(),
                configured: Some(configured_address(parsed.config())),
            }))
        }
        Err(diagnostics) => {
            let text = MaskedSource::new(&bytes);
            for d in &diagnostics {
                report.push_str(&d.render(&what, &text));
            }
            let errors = diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .map(|d| FileError {
                    line: (d.line > 0).then_some(u64::from(d.line)),
                    column: (d.line > 0).then_some(u64::from(d.column)),
                    path: (!d.path.is_empty()).then(|| d.path.clone()),
                    message: match &d.help {
                        Some(h) => format!("{} (help: {h})", d.message),
                        None => d.message.clone(),
                    },
                })
                .collect();
            Ok(Err(invalid(&target, &what, errors)))
        }
    }
}

fn invalid(target: &Target, what: &str, errors: Vec<FileError>) -> NodeResult {
    let mut r = NodeResult::new(
        &target.name,
        &target.endpoint.to_string(),
        Outcome::Invalid,
        Duration::ZERO,
    );
    r.error = Some(format!("{what} is invalid ({} error(s))", errors.len()));
    r.errors = errors;
    r
}

/// Where a configured node is reached from outside: its static NAT address, else eth0's.
pub fn configured_address(config: &NodeConfig) -> IpAddr {
    match config.network.static_nat {
        Some(nat) => nat.into(),
        None => config.network.ipv4.interface.address().into(),
    }
}

/// A job and how its node's certificate is trusted at the start.
#[derive(Debug)]
pub struct Plan {
    /// What to send where.
    pub job: Job,
    /// The trust policy before any question is asked.
    pub policy: Policy,
    /// Where a pin came from.
    pub pin: Option<PinSource>,
}

/// Each job with the policy `policy_of` gives its node.
pub fn plan(
    jobs: Vec<(usize, Job)>,
    policy_of: impl Fn(&Target) -> (Policy, Option<PinSource>),
) -> Vec<(usize, Plan)> {
    jobs.into_iter()
        .map(|(index, job)| {
            let (policy, pin) = policy_of(&job.target);
            (index, Plan { job, policy, pin })
        })
        .collect()
}

/// `--dry-run`: what would be sent where, and how the certificate would be trusted.
pub fn would_send(plan: &Plan) -> NodeResult {
    let job = &plan.job;
    let trust_note = match plan.policy {
        Policy::Pinned(fp) => format!("pinned {fp}"),
        Policy::FirstUse => "first use: record the certificate".into(),
        Policy::Unknown => "unknown certificate: refused unless pinned, --trust-first-use \
                            or a yes at the terminal prompt"
            .into(),
        Policy::Insecure => "insecure: any certificate".into(),
    };
    let mut r = NodeResult::new(
        &job.target.name,
        &job.target.endpoint.to_string(),
        Outcome::WouldSend,
        Duration::ZERO,
    );
    r.digest = Some(job.digest.clone());
    r.error = Some(format!(
        "POST https://{}{BOOTSTRAP_PATH} {} bytes, {trust_note}{}",
        job.target.endpoint,
        job.body.len(),
        if job.target.token.is_some() {
            ", with token"
        } else {
            ""
        }
    ));
    r
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::push::client::Endpoint;
    use crate::push::inventory::Source;
    use crate::push::trust::Fingerprint;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/valid/");

    fn target(name: &str) -> Target {
        Target {
            name: name.into(),
            endpoint: Endpoint::parse("10.0.0.31", 8443).unwrap(),
            source: Source::None,
            fingerprint: None,
            token: None,
        }
    }

    fn read(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}{name}")).unwrap()
    }

    fn bytes(name: &str, bytes: Vec<u8>) -> Material {
        Material::Bytes {
            what: name.into(),
            bytes,
        }
    }

    #[test]
    fn a_node_is_looked_for_at_its_nat_address_else_at_eth0() {
        let at = |bytes: Vec<u8>| {
            let parsed = nodeboot_config::parse(&bytes).unwrap();
            configured_address(parsed.config()).to_string()
        };
        assert_eq!(at(read("transcoding.xml")), "10.0.0.31");
        assert_eq!(at(read("proxying.xml")), "203.0.113.21");
    }

    #[test]
    fn valid_files_become_jobs_with_their_digest_in_inventory_order() {
        let good = read("transcoding.xml");
        let prepared = prepare(
            vec![
                (target("a"), bytes("a.xml", good.clone())),
                (target("b"), bytes("b.xml", read("proxying.xml"))),
            ],
            true,
            false,
        )
        .unwrap();
        assert!(prepared.invalid.is_empty());
        let names: Vec<_> = prepared
            .jobs
            .iter()
            .map(|(i, j)| (*i, j.target.name.as_str()))
            .collect();
        assert_eq!(names, [(0, "a"), (1, "b")]);
        assert_eq!(prepared.jobs[0].1.digest, nodeboot_config::digest(&good));
        assert_eq!(prepared.jobs[0].1.body, good);
    }

    #[test]
    fn one_invalid_file_stops_everything_unless_skipped_and_its_findings_are_reported() {
        let bad = String::from_utf8(read("transcoding.xml"))
            .unwrap()
            .replace("<hostname>conf01</hostname>", "<hostname>-bad-</hostname>");
        let inputs = || {
            vec![
                (target("good"), bytes("good.xml", read("transcoding.xml"))),
                (target("bad"), bytes("bad.xml", bad.clone().into_bytes())),
            ]
        };
        let stop = prepare(inputs(), true, false).unwrap_err();
        assert_eq!(
            stop.error.to_string(),
            "1 of 2 file(s) invalid: nothing was sent (fix them, or pass --skip-invalid to send the others)"
        );
        assert!(stop.report.contains("bad.xml:"), "{}", stop.report);

        let prepared = prepare(inputs(), true, true).unwrap();
        assert_eq!(prepared.jobs.len(), 1);
        let (index, result) = &prepared.invalid[0];
        assert_eq!(*index, 1);
        assert_eq!(result.result, Outcome::Invalid);
        assert!(
            result
                .error
                .as_deref()
                .unwrap()
                .starts_with("bad.xml is invalid ("),
            "{result:?}"
        );
        assert!(result.errors[0].line.is_some());

        // Without validation, the node judges: the bad file is sent.
        let prepared = prepare(inputs(), false, false).unwrap();
        assert_eq!(prepared.jobs.len(), 2);
        assert!(prepared.report.is_empty());
    }

    #[test]
    fn unusable_parameters_are_invalid_and_an_unreadable_file_stops_with_the_report_so_far() {
        let prepared = prepare(
            vec![(
                target("g"),
                Material::Unusable {
                    what: "node `g` parameters".into(),
                    errors: vec!["hostname: missing".into()],
                },
            )],
            true,
            true,
        )
        .unwrap();
        assert_eq!(
            prepared.report,
            "node `g` parameters: error: hostname: missing\n"
        );
        assert_eq!(prepared.invalid[0].1.errors[0].message, "hostname: missing");

        let stop = prepare(
            vec![
                (
                    target("g"),
                    Material::Unusable {
                        what: "node `g` parameters".into(),
                        errors: vec!["x".into()],
                    },
                ),
                (
                    target("m"),
                    Material::Unreadable(anyhow::anyhow!("reading m.xml")),
                ),
            ],
            true,
            true,
        )
        .unwrap_err();
        assert_eq!(stop.error.to_string(), "reading m.xml");
        assert_eq!(stop.report, "node `g` parameters: error: x\n");
    }

    #[test]
    fn a_dry_run_says_what_would_go_where_and_how_it_is_trusted() {
        let prepared = prepare(
            vec![(target("a"), bytes("a.xml", read("transcoding.xml")))],
            true,
            false,
        )
        .unwrap();
        let fp = Fingerprint::of_der(b"x");
        let plans = plan(prepared.jobs, |_| {
            (Policy::Pinned(fp), Some(PinSource::CommandLine))
        });
        let r = would_send(&plans[0].1);
        assert_eq!(r.result, Outcome::WouldSend);
        let note = r.error.unwrap();
        assert!(
            note.starts_with("POST https://10.0.0.31:8443/configuration/bootstrap "),
            "{note}"
        );
        assert!(note.ends_with(&format!("bytes, pinned {fp}")), "{note}");
    }
}
