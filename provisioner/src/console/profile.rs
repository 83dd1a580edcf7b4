//! The dialog as data: a profile is a list of steps, each "expect one of these prompts, then
//! send this", read from TOML (see docs/console.md) or taken from the built-in profile for
//! nodeboot's own wizard (login and forced password change included).
//!
//! Loading checks everything before a console is touched: the TOML shape, each regular
//! expression, each `{variable}`. No I/O here beyond what the caller hands in.

use std::collections::BTreeMap;
use std::time::Duration;

use regex::bytes::Regex;
use serde::Deserialize;

/// The built-in profile: nodeboot's wizard behind the seed's login, forced password change
/// and sudo prompt.
pub const BUILTIN: &str = include_str!("builtin.toml");

/// A value a profile can refer to as `{name}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Var {
    /// The text sent.
    pub value: String,
    /// Secrets are masked in the transcript and in every message, and may not appear in a
    /// prompt pattern.
    pub secret: bool,
}

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.secret {
            f.write_str("Var(***)")
        } else {
            write!(f, "Var({:?})", self.value)
        }
    }
}

/// The values a dialog is filled in with, by name.
pub type Vars = BTreeMap<String, Var>;

/// A profile that could not be loaded: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProfileError(pub String);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    settle_ms: Option<u64>,
    timeout_s: Option<u64>,
    #[serde(default)]
    reject: Vec<String>,
    #[serde(default)]
    findings: Vec<String>,
    #[serde(default)]
    step: Vec<StepFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFile {
    name: String,
    expect: OneOrMany,
    send: Option<String>,
    #[serde(default)]
    secret: bool,
    #[serde(default)]
    optional: bool,
    timeout_s: Option<u64>,
    nudge_s: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// One step of the dialog. Its `Debug` form shows a secret step's text as `***`.
#[derive(Clone)]
pub struct Step {
    /// Its name, used in progress lines and errors.
    pub name: String,
    /// The prompt patterns as written in the profile (for messages).
    pub expect_source: Vec<String>,
    /// The compiled patterns, anchored at the end of the output.
    pub expect: Vec<Regex>,
    /// The text to send (without the CR the engine appends), variables filled in.
    pub send: Option<String>,
    /// The text sent is secret: masked everywhere, and sent only once the prompt has settled.
    pub secret: bool,
    /// The step may not come (e.g. no login prompt when the console is already logged in).
    pub optional: bool,
    /// How long to wait for the prompt.
    pub timeout: Duration,
    /// While nothing matches, send a bare CR each time the console has been quiet this long
    /// (a serial console often shows nothing until Enter is pressed).
    pub nudge: Option<Duration>,
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let send = self
            .send
            .as_ref()
            .map(|t| if self.secret { "***" } else { t.as_str() });
        f.debug_struct("Step")
            .field("name", &self.name)
            .field("expect", &self.expect_source)
            .field("send", &send)
            .field("secret", &self.secret)
            .field("optional", &self.optional)
            .field("timeout", &self.timeout)
            .field("nudge", &self.nudge)
            .finish()
    }
}

/// A loaded profile, variables filled in.
#[derive(Debug, Clone)]
pub struct Profile {
    /// How long the console must stay quiet after a prompt before a secret is sent.
    pub settle: Duration,
    /// Lines that mean the console refused an answer.
    pub reject: Vec<Regex>,
    /// Lines to report: every complete line of output one of these matches is kept (masked)
    /// and handed back with the dialog's outcome (the wizard's check lines).
    pub findings: Vec<Regex>,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

const DEFAULT_SETTLE_MS: u64 = 20;
const DEFAULT_TIMEOUT_S: u64 = 30;

impl Profile {
    /// Loads a profile from TOML text. `origin` names it in errors (a path or "built-in").
    pub fn load(text: &str, origin: &str, vars: &Vars) -> Result<Profile, ProfileError> {
        let file: ProfileFile =
            toml::from_str(text).map_err(|e| ProfileError(format!("{origin}: {e}")))?;
        if file.step.is_empty() {
            return Err(ProfileError(format!(
                "{origin}: the profile has no [[step]] (help: add at least one step with `name` and `expect`)"
            )));
        }
        let default_timeout = file.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S);
        let reject = file
            .reject
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Regex::new(&format!("(?m){p}")).map_err(|e| {
                    ProfileError(format!(
                        "{origin}: reject pattern {} is not a valid regular expression: {e}",
                        i + 1
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let findings = file
            .findings
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Regex::new(p).map_err(|e| {
                    ProfileError(format!(
                        "{origin}: findings pattern {} is not a valid regular expression: {e}",
                        i + 1
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut steps = Vec::with_capacity(file.step.len());
        for (i, s) in file.step.into_iter().enumerate() {
            let at = format!("{origin}: step {} ({:?})", i + 1, s.name);
            let sources = match s.expect {
                OneOrMany::One(p) => vec![p],
                OneOrMany::Many(ps) => ps,
            };
            if sources.is_empty() {
                return Err(ProfileError(format!(
                    "{at}: `expect` is empty (help: give at least one prompt pattern)"
                )));
            }
            let mut expect = Vec::with_capacity(sources.len());
            for p in &sources {
                let filled = fill(p, vars, true).map_err(|e| ProfileError(format!("{at}: {e}")))?;
                let re = Regex::new(&format!(r"(?:{filled})[ \t\n]*\z")).map_err(|e| {
                    ProfileError(format!(
                        "{at}: expect pattern {p:?} is not a valid regular expression: {e}"
                    ))
                })?;
                expect.push(re);
            }
            let (send, uses_secret) = match &s.send {
                Some(t) => {
                    let filled =
                        fill(t, vars, false).map_err(|e| ProfileError(format!("{at}: {e}")))?;
                    (Some(filled), uses_secret_var(t, vars))
                }
                None => (None, false),
            };
            steps.push(Step {
                name: s.name,
                expect_source: sources,
                expect,
                send,
                secret: s.secret || uses_secret,
                optional: s.optional,
                timeout: Duration::from_secs(s.timeout_s.unwrap_or(default_timeout)),
                nudge: s.nudge_s.map(Duration::from_secs),
            });
        }
        Ok(Profile {
            settle: Duration::from_millis(file.settle_ms.unwrap_or(DEFAULT_SETTLE_MS)),
            reject,
            findings,
            steps,
        })
    }
}

fn uses_secret_var(template: &str, vars: &Vars) -> bool {
    vars.iter()
        .any(|(k, v)| v.secret && template.contains(&format!("{{{k}}}")))
}

/// Fills `{name}` placeholders (`{{` and `}}` stand for braces). In a pattern (`regex`), values
/// are regex-escaped, and secrets are refused: a prompt never contains a password.
fn fill(template: &str, vars: &Vars, regex: bool) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(pos) = rest.find(['{', '}']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(if regex { &tail[..2] } else { &tail[..1] });
            rest = &tail[2..];
            continue;
        }
        if let Some(after) = tail.strip_prefix('}') {
            // a lone `}` is literal (regex repetition braces such as `a{2}` end up here)
            out.push('}');
            rest = after;
            continue;
        }
        let Some(end) = tail.find('}') else {
            out.push_str(tail);
            rest = "";
            break;
        };
        let name = &tail[1..end];
        let is_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
            && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
        if !is_name {
            // not a placeholder (e.g. the regex repetition `{1,3}`): keep as written
            out.push_str(&tail[..=end]);
            rest = &tail[end + 1..];
            continue;
        }
        let Some(var) = vars.get(name) else {
            let known: Vec<&str> = vars.keys().map(String::as_str).collect();
            return Err(format!(
                "unknown variable {{{name}}} (help: known variables are {})",
                known.join(", ")
            ));
        };
        if regex && var.secret {
            return Err(format!(
                "the secret {{{name}}} cannot be part of a prompt pattern"
            ));
        }
        if regex {
            out.push_str(&regex::escape(&var.value));
        } else {
            out.push_str(&var.value);
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        let mut v = Vars::new();
        v.insert(
            "hostname".into(),
            Var {
                value: "conf.01".into(),
                secret: false,
            },
        );
        v.insert(
            "os_password".into(),
            Var {
                value: "pw".into(),
                secret: true,
            },
        );
        v
    }

    #[test]
    fn fill_handles_placeholders_braces_and_repetitions() {
        let v = vars();
        assert_eq!(
            fill("{hostname} login:", &v, true).unwrap(),
            r"conf\.01 login:"
        );
        assert_eq!(fill("{hostname}", &v, false).unwrap(), "conf.01");
        assert_eq!(fill("a{2}b{1,3}", &v, true).unwrap(), "a{2}b{1,3}");
        assert_eq!(fill("{{x}}", &v, false).unwrap(), "{x}");
        assert_eq!(
            fill("{nope}", &v, false).unwrap_err(),
            "unknown variable {nope} (help: known variables are hostname, os_password)"
        );
        assert_eq!(
            fill("{os_password}", &v, true).unwrap_err(),
            "the secret {os_password} cannot be part of a prompt pattern"
        );
    }

    #[test]
    fn load_reports_where_a_profile_is_wrong() {
        let v = vars();
        let cases = [
            (
                "",
                "p.toml: the profile has no [[step]] (help: add at least one step with `name` and `expect`)",
            ),
            (
                "[[step]]\nname = \"a\"\nexpect = \"(\"\n",
                "p.toml: step 1 (\"a\"): expect pattern \"(\" is not a valid regular expression",
            ),
            (
                "[[step]]\nname = \"a\"\nexpect = []\n",
                "p.toml: step 1 (\"a\"): `expect` is empty (help: give at least one prompt pattern)",
            ),
            (
                "[[step]]\nname = \"a\"\nexpect = \"x\"\nsend = \"{web_password}\"\n",
                "p.toml: step 1 (\"a\"): unknown variable {web_password}",
            ),
        ];
        for (text, want) in cases {
            let e = Profile::load(text, "p.toml", &v).unwrap_err().0;
            assert!(e.starts_with(want), "{e}");
        }
        let e = Profile::load(
            "[[step]]\nname = \"a\"\nexpect = \"x\"\nsnd = 1\n",
            "p.toml",
            &v,
        )
        .unwrap_err()
        .0;
        assert!(e.contains("unknown field `snd`"), "{e}");
        assert!(e.contains("line 4"), "{e}");
    }

    #[test]
    fn a_step_sending_a_secret_variable_is_secret() {
        let p = Profile::load(
            "[[step]]\nname = \"password\"\nexpect = 'Password:'\nsend = \"{os_password}\"\n",
            "p",
            &vars(),
        )
        .unwrap();
        assert!(p.steps[0].secret);
        let debug = format!("{p:?}");
        assert!(debug.contains("send: Some(\"***\")"), "{debug}");
        assert!(!debug.contains("\"pw\""), "{debug}");
        assert!(p.steps[0].expect[0].is_match(b"x\nPassword: "));
        assert!(!p.steps[0].expect[0].is_match(b"Password: x"));
        assert_eq!(p.settle, Duration::from_millis(20));
        assert_eq!(p.steps[0].timeout, Duration::from_secs(30));
    }
}
