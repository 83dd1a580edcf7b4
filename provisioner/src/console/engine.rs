//! The expect engine: one console session over any byte stream, and a [`Profile`] played
//! over it.
//!
//! Event-driven on tokio, no fixed sleeps. Output is cleaned by [`Cleaner`] as it arrives
//! (escape sequences, C0/C1 controls and bidi overrides removed, line breaks made `\n`), so
//! what reaches the transcript and the operator's terminal is inert text; system lines
//! (kernel, systemd) are cut out before matching, and a prompt split by them is matched too;
//! every piece of text that leaves this module (transcript, errors, captured text) goes
//! through a [`Masker`].
//!
//! Two ways in: [`run_dialog`] plays a profile (each step waits for its prompt, a regular
//! expression matched against the end of the output since the last send, until the step's
//! deadline; a secret is sent once the console has been quiet for the profile's settle time
//! after its prompt) — `nodeboot bootstrap`; and [`Session::expect`] / [`Session::send`]
//! script a console step by step, with capture groups — the VM suite. Opening the stream is
//! the caller's (see `transport`).

use std::io::Write;
use std::ops::Range;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant as TokioInstant;

use super::profile::{Profile, Step};
use super::text::{Cleaner, Masker, join_around_system_lines, strip_kernel_lines};

use regex::bytes::Regex;

/// The matching window: only the end of the output since the last send is searched.
const WINDOW: usize = 16 * 1024;
/// Lines of output kept for error messages.
const HISTORY: usize = 8 * 1024;
/// How many lines an error shows.
const ERROR_LINES: usize = 12;
/// How long to wait for the rest of a refusal message before reporting it.
const REJECT_GRACE: Duration = Duration::from_millis(500);
/// The longest line checked against the findings patterns (longer ones are cut there).
const FINDING_LINE: usize = 1024;
/// The most findings kept.
const MAX_FINDINGS: usize = 256;

/// Why a dialog stopped.
#[derive(Debug, thiserror::Error)]
pub enum DialogError {
    /// A prompt did not come in time.
    #[error(
        "step {step:?} ({index} of {total}) timed out after {timeout:?} waiting for {expected}\nlast lines received:\n{last_lines}"
    )]
    Timeout {
        /// The step's name.
        step: String,
        /// 1-based index of the step.
        index: usize,
        /// Number of steps.
        total: usize,
        /// The step's timeout.
        timeout: Duration,
        /// The prompt patterns, as written in the profile.
        expected: String,
        /// The end of the output, masked.
        last_lines: String,
    },
    /// The console answered with a line the profile lists as a refusal.
    #[error("the console refused the answer before step {step:?} ({index} of {total}):\n{message}")]
    Rejected {
        /// The step that was waiting.
        step: String,
        /// 1-based index of the step.
        index: usize,
        /// Number of steps.
        total: usize,
        /// The console's message, masked.
        message: String,
    },
    /// The console closed the connection.
    #[error(
        "the console closed the connection during step {step:?} ({index} of {total}), waiting for {expected}\nlast lines received:\n{last_lines}"
    )]
    Closed {
        /// The step that was waiting.
        step: String,
        /// 1-based index of the step.
        index: usize,
        /// Number of steps.
        total: usize,
        /// The prompt patterns.
        expected: String,
        /// The end of the output, masked.
        last_lines: String,
    },
    /// Reading, writing or recording failed.
    #[error("console i/o during step {step:?}: {source}")]
    Io {
        /// The step.
        step: String,
        /// The error.
        source: std::io::Error,
    },
}

/// What a finished dialog did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Names of the steps that ran, in order (skipped optional ones left out).
    pub steps_run: Vec<String>,
    /// Bytes received from the console.
    pub bytes_received: u64,
    /// Bytes sent to the console.
    pub bytes_sent: u64,
    /// Wall time of the whole dialog.
    pub elapsed: Duration,
    /// The output lines the profile's `findings` patterns matched, masked, in order.
    pub findings: Vec<String>,
}

/// How progress is shown: one line per step, or nothing.
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize, &Step);

/// One console session: the stream, the cleaned output, the masker and the transcript.
///
/// Script it with [`Session::expect`] and [`Session::send`]; it reads only while `expect`
/// waits, so a console that must be drained all the time (QEMU's serial socket: the guest
/// blocks on console writes otherwise) needs a stream that buffers what comes in between.
pub struct Session<'a, S> {
    io: S,
    cleaner: Cleaner,
    /// Cleaned output since the last send or the end of the last [`Session::expect`] match
    /// (the matching window).
    window: Vec<u8>,
    /// Masked cleaned output, for error messages.
    history: Vec<u8>,
    masker: Masker,
    transcript: Option<&'a mut dyn Write>,
    received: u64,
    sent: u64,
    closed: bool,
    /// An answer has been sent (a bare nudge does not count): before that, nothing can have
    /// been refused, so boot output is not checked against the reject patterns.
    answered: bool,
    /// Patterns of the lines to keep as findings.
    finding_patterns: Vec<Regex>,
    /// The current (incomplete) line of masked output.
    line: Vec<u8>,
    /// The lines kept.
    findings: Vec<String>,
}

impl<S> std::fmt::Debug for Session<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("received", &self.received)
            .field("sent", &self.sent)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

/// What [`Session::expect`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// Which of the patterns matched (the one whose match ends first; the first given on a tie).
    pub index: usize,
    /// The capture groups, group 0 (the whole match) first, as cleaned text with the secrets
    /// masked; `None` for a group that did not take part.
    pub groups: Vec<Option<String>>,
}

/// Why [`Session::expect`] stopped without a match.
#[derive(Debug, thiserror::Error)]
pub enum ExpectError {
    /// Nothing matched in time.
    #[error(
        "timed out after {timeout:?} waiting for {expected}\nlast lines received:\n{last_lines}"
    )]
    Timeout {
        /// How long it waited.
        timeout: Duration,
        /// The patterns, `/a/ or /b/`.
        expected: String,
        /// The end of the output, masked.
        last_lines: String,
    },
    /// The console closed the connection.
    #[error(
        "the console closed the connection while waiting for {expected}\nlast lines received:\n{last_lines}"
    )]
    Closed {
        /// The patterns, `/a/ or /b/`.
        expected: String,
        /// The end of the output, masked.
        last_lines: String,
    },
    /// Reading, writing or recording failed.
    #[error("console i/o: {0}")]
    Io(#[from] std::io::Error),
}

enum Found {
    Step(usize),
    Rejected(usize),
}

impl<'a, S: AsyncRead + AsyncWrite + Unpin> Session<'a, S> {
    /// A session over `io`. Every occurrence of one of `secrets` is masked (`***`) in the
    /// transcript, in errors and in captured text; the transcript (if any) receives the cleaned
    /// output and each send as `[>text]` (`[>***]` for a secret).
    pub fn new(io: S, secrets: Vec<Vec<u8>>, transcript: Option<&'a mut dyn Write>) -> Self {
        Session {
            io,
            cleaner: Cleaner::new(),
            window: Vec::new(),
            history: Vec::new(),
            masker: Masker::new(secrets),
            transcript,
            received: 0,
            sent: 0,
            closed: false,
            answered: false,
            finding_patterns: Vec::new(),
            line: Vec::new(),
            findings: Vec::new(),
        }
    }

    /// Keeps every complete output line one of `patterns` matches (masked): see
    /// [`Session::findings`].
    pub fn with_findings(mut self, patterns: Vec<Regex>) -> Self {
        self.finding_patterns = patterns;
        self
    }

    /// The lines kept so far (at most 256, each cut at 1024 bytes).
    pub fn findings(&self) -> &[String] {
        &self.findings
    }

    /// Feeds masked output to the findings: each complete line is matched.
    fn scan_findings(&mut self, masked: &[u8]) {
        if self.finding_patterns.is_empty() {
            return;
        }
        for &b in masked {
            if b != b'\n' {
                if self.line.len() < FINDING_LINE {
                    self.line.push(b);
                }
                continue;
            }
            let line = std::mem::take(&mut self.line);
            let line = strip_trailing_blank(&line);
            if self.findings.len() < MAX_FINDINGS
                && self.finding_patterns.iter().any(|re| re.is_match(line))
            {
                self.findings
                    .push(String::from_utf8_lossy(line).into_owned());
            }
        }
    }

    /// Waits up to `timeout` until one of `patterns` matches the cleaned output received since
    /// the last send or the last match, anywhere in it (anchor a pattern with `\z` to want it
    /// at the end), system lines cut out as for a dialog's prompts. The output up to the end of
    /// the match is used up: the next `expect` looks after it.
    pub async fn expect(
        &mut self,
        patterns: &[Regex],
        timeout: Duration,
    ) -> Result<Match, ExpectError> {
        let deadline = TokioInstant::now() + timeout;
        let expected = || {
            patterns
                .iter()
                .map(|p| format!("/{}/", p.as_str()))
                .collect::<Vec<_>>()
                .join(" or ")
        };
        loop {
            if let Some(found) = find_in_views(&self.window, patterns) {
                let groups = found
                    .groups
                    .iter()
                    .map(|g| {
                        g.clone().map(|r| {
                            String::from_utf8_lossy(&self.masker.mask(&found.view[r])).into_owned()
                        })
                    })
                    .collect();
                let end = found.groups.first().cloned().flatten().map_or(0, |r| r.end);
                self.window = found.view[end..].to_vec();
                return Ok(Match {
                    index: found.index,
                    groups,
                });
            }
            if self.closed {
                return Err(ExpectError::Closed {
                    expected: expected(),
                    last_lines: self.last_lines(),
                });
            }
            if !self.read_until(deadline).await? {
                return Err(ExpectError::Timeout {
                    timeout,
                    expected: expected(),
                    last_lines: self.last_lines(),
                });
            }
        }
    }

    /// Writes the end of the output held back for masking (a secret may straddle two reads)
    /// to the transcript, and flushes it: call it when done with the console.
    pub fn finish(&mut self) -> std::io::Result<()> {
        let rest = self.masker.finish();
        self.scan_findings(&rest);
        if !self.line.is_empty() {
            // the last line, unfinished: it counts too
            self.scan_findings(b"\n");
        }
        match self.transcript.as_mut() {
            Some(t) => t.write_all(&rest).and_then(|()| t.flush()),
            None => Ok(()),
        }
    }

    /// Reads once, until `deadline`. Returns false on timeout.
    async fn read_until(&mut self, deadline: TokioInstant) -> std::io::Result<bool> {
        let mut buf = [0u8; 4096];
        match tokio::time::timeout_at(deadline, self.io.read(&mut buf)).await {
            Err(_) => Ok(false),
            Ok(Ok(0)) => {
                self.closed = true;
                Ok(true)
            }
            Ok(Ok(n)) => {
                self.take(&buf[..n])?;
                Ok(true)
            }
            Ok(Err(e)) => Err(e),
        }
    }

    fn take(&mut self, raw: &[u8]) -> std::io::Result<()> {
        self.received += raw.len() as u64;
        let mut clean = Vec::with_capacity(raw.len());
        self.cleaner.feed(raw, &mut clean);
        self.window.extend_from_slice(&clean);
        if self.window.len() > WINDOW {
            let cut = self.window.len() - WINDOW;
            self.window.drain(..cut);
        }
        let masked = self.masker.feed(&clean);
        self.scan_findings(&masked);
        self.history.extend_from_slice(&masked);
        if self.history.len() > HISTORY {
            let cut = self.history.len() - HISTORY;
            self.history.drain(..cut);
        }
        if let Some(t) = self.transcript.as_mut() {
            t.write_all(&masked)?;
        }
        Ok(())
    }

    /// Sends `text` and a CR (Enter), and starts a new matching window. A `secret` text is
    /// written to the transcript as `[>***]`.
    pub async fn send(&mut self, text: &str, secret: bool) -> std::io::Result<()> {
        let mut bytes = Vec::with_capacity(text.len() + 1);
        bytes.extend_from_slice(text.as_bytes());
        bytes.push(b'\r');
        self.io.write_all(&bytes).await?;
        self.io.flush().await?;
        self.sent += bytes.len() as u64;
        self.window.clear();
        // the received text held back by the masker goes out first, so the order is kept
        let held = self.masker.finish();
        self.scan_findings(&held);
        self.history.extend_from_slice(&held);
        if let Some(t) = self.transcript.as_mut() {
            let shown = if secret {
                "***".to_owned()
            } else {
                String::from_utf8_lossy(&self.masker.mask(text.as_bytes())).into_owned()
            };
            t.write_all(&held)?;
            writeln!(t, "[>{shown}]")?;
        }
        Ok(())
    }

    /// The cleaned window with system lines cut out, the lines around them kept apart.
    fn view(&self) -> Vec<u8> {
        strip_kernel_lines(&self.window).into_owned()
    }

    fn find(&self, candidates: &[(usize, &Step)], reject: &[Regex]) -> Option<Found> {
        for (i, step) in candidates {
            if prompt_at_end(&self.window, &step.expect) {
                return Some(Found::Step(*i));
            }
        }
        // Refusals are whole lines, so they are looked for with the lines kept apart.
        let view = self.view();
        let mut first: Option<usize> = None;
        for re in reject {
            // only complete lines count: a refusal message ends with a newline
            for m in re.find_iter(&view) {
                if m.end() < view.len() {
                    first = Some(first.map_or(m.start(), |f| f.min(m.start())));
                    break;
                }
            }
        }
        first.map(Found::Rejected)
    }

    /// Waits until the console has been quiet for `quiet` (or `limit` has passed).
    async fn settle(&mut self, quiet: Duration, limit: TokioInstant) -> std::io::Result<()> {
        loop {
            if self.closed {
                return Ok(());
            }
            let until = (TokioInstant::now() + quiet).min(limit);
            if !self.read_until(until).await? || TokioInstant::now() >= limit {
                return Ok(());
            }
        }
    }

    fn last_lines(&self) -> String {
        let mut text = self.history.clone();
        text.extend_from_slice(&self.masker.peek_pending());
        let text = strip_trailing_blank(&text);
        let s = String::from_utf8_lossy(text);
        let lines: Vec<&str> = s.lines().collect();
        let start = lines.len().saturating_sub(ERROR_LINES);
        if lines.is_empty() {
            return "  (nothing)".to_owned();
        }
        lines[start..]
            .iter()
            .map(|l| format!("  | {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Whether one of `expect` (patterns anchored at the end) matches the cleaned `window`, with
/// system lines cut out (see [`find_in_views`]).
fn prompt_at_end(window: &[u8], expect: &[Regex]) -> bool {
    find_in_views(window, expect).is_some()
}

/// A match of one of several patterns in one view of the window.
struct ViewMatch {
    index: usize,
    /// The view it was found in.
    view: Vec<u8>,
    /// Where each capture group is in `view` (group 0 first).
    groups: Vec<Option<Range<usize>>>,
}

/// The first match of `patterns` (the one that ends first) in the cleaned `window` with system
/// lines (kernel, systemd) cut out: either keeping the lines around them apart, or — for a
/// prompt the kernel split by printing on lines of its own (`[sudo] password for ad` CRLF
/// `[ 42.1] …` CRLF `min: `) — joining them back, when the first view has no match.
fn find_in_views(window: &[u8], patterns: &[Regex]) -> Option<ViewMatch> {
    let first = |view: &[u8]| {
        patterns
            .iter()
            .enumerate()
            .filter_map(|(i, re)| re.captures(view).map(|c| (i, c)))
            .min_by_key(|(_, c)| c.get(0).map_or(usize::MAX, |m| m.end()))
            .map(|(index, c)| ViewMatch {
                index,
                view: view.to_vec(),
                groups: c.iter().map(|g| g.map(|m| m.range())).collect(),
            })
    };
    first(&strip_kernel_lines(window)).or_else(|| first(&join_around_system_lines(window)))
}

fn strip_trailing_blank(text: &[u8]) -> &[u8] {
    let end = text
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |p| p + 1);
    &text[..end]
}

fn describe(steps: &[(usize, &Step)]) -> String {
    steps
        .iter()
        .map(|(_, s)| {
            let pats: Vec<String> = s.expect_source.iter().map(|p| format!("/{p}/")).collect();
            format!("{} ({})", pats.join(" or "), s.name)
        })
        .collect::<Vec<_>>()
        .join(", or ")
}

/// Runs `profile` over `io`. `secrets` are masked in the transcript and in errors; the
/// transcript (if any) receives the cleaned output and each send as `[>text]` (`[>***]` for
/// a secret).
pub async fn run_dialog<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    profile: &Profile,
    secrets: Vec<Vec<u8>>,
    transcript: Option<&mut dyn Write>,
    progress: Progress<'_>,
) -> Result<Report, DialogError> {
    run_dialog_with_findings(io, profile, secrets, transcript, progress)
        .await
        .0
}

/// [`run_dialog`], and the findings (the lines the profile's `findings` patterns matched)
/// whether the dialog finished or not: a dialog that failed may have printed why.
pub async fn run_dialog_with_findings<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    profile: &Profile,
    secrets: Vec<Vec<u8>>,
    transcript: Option<&mut dyn Write>,
    progress: Progress<'_>,
) -> (Result<Report, DialogError>, Vec<String>) {
    let started = Instant::now();
    let mut s = Session::new(io, secrets, transcript).with_findings(profile.findings.clone());
    let result = drive(&mut s, profile, progress).await;
    // whatever happened, the transcript gets the end of the output (masked)
    let written = s.finish();
    let findings = s.findings.clone();
    if let (Err(source), Ok(_)) = (written, &result) {
        let e = DialogError::Io {
            step: "end".into(),
            source,
        };
        return (Err(e), findings);
    }
    let result = result.map(|steps_run| Report {
        steps_run,
        bytes_received: s.received,
        bytes_sent: s.sent,
        elapsed: started.elapsed(),
        findings: findings.clone(),
    });
    (result, findings)
}

/// Plays the steps; returns the names of the steps that ran.
async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Session<'_, S>,
    profile: &Profile,
    progress: Progress<'_>,
) -> Result<Vec<String>, DialogError> {
    let total = profile.steps.len();
    let mut steps_run = Vec::new();
    let mut i = 0;
    while i < total {
        let step = &profile.steps[i];
        let io_err = |source| DialogError::Io {
            step: step.name.clone(),
            source,
        };
        // an optional step may be skipped: the next steps up to the first required one are
        // candidates too
        let mut candidates: Vec<(usize, &Step)> = vec![(i, step)];
        if step.optional {
            for (j, later) in profile.steps.iter().enumerate().skip(i + 1) {
                candidates.push((j, later));
                if !later.optional {
                    break;
                }
            }
        }
        let deadline = TokioInstant::now() + step.timeout;
        let mut nudge_at = step.nudge.map(|n| TokioInstant::now() + n);
        let matched = loop {
            let reject: &[Regex] = if s.answered { &profile.reject } else { &[] };
            match s.find(&candidates, reject) {
                Some(Found::Step(j)) => break j,
                Some(Found::Rejected(_)) => {
                    let limit = TokioInstant::now() + REJECT_GRACE;
                    s.settle(profile.settle.max(Duration::from_millis(50)), limit)
                        .await
                        .map_err(io_err)?;
                    let view = s.view();
                    let start = match s.find(&[], &profile.reject) {
                        Some(Found::Rejected(p)) => p,
                        _ => 0,
                    };
                    let msg = s.masker.mask(strip_trailing_blank(&view[start..]));
                    let message = String::from_utf8_lossy(&msg)
                        .lines()
                        .map(|l| format!("  | {l}"))
                        .collect::<Vec<_>>()
                        .join("\n");
                    return Err(DialogError::Rejected {
                        step: step.name.clone(),
                        index: i + 1,
                        total,
                        message,
                    });
                }
                None => {}
            }
            if s.closed {
                return Err(DialogError::Closed {
                    step: step.name.clone(),
                    index: i + 1,
                    total,
                    expected: describe(&candidates),
                    last_lines: s.last_lines(),
                });
            }
            let wake = nudge_at.map_or(deadline, |n| n.min(deadline));
            let got = s.read_until(wake).await.map_err(io_err)?;
            if got {
                // output resets the nudge timer: only a quiet console is nudged
                nudge_at = step.nudge.map(|n| TokioInstant::now() + n);
                continue;
            }
            if TokioInstant::now() >= deadline {
                return Err(DialogError::Timeout {
                    step: step.name.clone(),
                    index: i + 1,
                    total,
                    timeout: step.timeout,
                    expected: describe(&candidates),
                    last_lines: s.last_lines(),
                });
            }
            // the nudge timer fired: press Enter
            s.send("", false).await.map_err(io_err)?;
            nudge_at = step.nudge.map(|n| TokioInstant::now() + n);
        };
        let step = &profile.steps[matched];
        let io_err = |source| DialogError::Io {
            step: step.name.clone(),
            source,
        };
        if step.secret {
            // wait for the prompt to settle; if more output comes and the prompt is no longer
            // at the end, go back to waiting for it
            let limit = TokioInstant::now() + step.timeout;
            s.settle(profile.settle, limit).await.map_err(io_err)?;
            if s.find(&[(matched, step)], &[]).is_none() {
                i = matched;
                continue;
            }
        }
        progress(matched + 1, total, step);
        steps_run.push(step.name.clone());
        if let Some(text) = &step.send {
            s.send(text, step.secret).await.map_err(io_err)?;
            s.answered = true;
        }
        i = matched + 1;
    }
    Ok(steps_run)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pattern as a profile compiles it: anchored at the end, trailing blanks allowed.
    fn at_end(p: &str) -> Regex {
        Regex::new(&format!(r"(?:{p})[ \t\n]*\z")).unwrap()
    }

    fn matches(raw: &[u8], pattern: &str) -> bool {
        let mut out = Vec::new();
        // byte by byte: the cleaner keeps its state across reads
        let mut cleaner = Cleaner::new();
        for b in raw {
            cleaner.feed(std::slice::from_ref(b), &mut out);
        }
        prompt_at_end(&out, &[at_end(pattern)])
    }

    const SUDO: &str = r"\[sudo\] password for [^:\n]*:";

    #[test]
    fn a_prompt_split_by_system_lines_matches_whatever_the_line_breaks() {
        let kernel = [
            "[   42.1] random: crng init done",
            "[    5.123456] e1000: eth0 NIC Link is Up",
            "[12345.678901] x",
        ];
        let systemd = [
            "[  OK  ] Started \x1b[0;1;39msystemd-update-utmp.service\x1b[0m.",
            "[FAILED] Failed to start foo.service.",
            "[ TIME ] Timed out waiting for device.",
            "[ ***  ] A start job is running for bar (3s / 1min 30s)",
        ];
        let breaks = ["\r\n", "\n", "\r", "\n\r", "\r\r\n", "\r\n\r\n", "\n\n"];
        for line in kernel.iter().chain(&systemd) {
            for br in breaks {
                for after in breaks {
                    let raw = format!("[sudo] password for ad{br}{line}{after}min: ");
                    assert!(matches(raw.as_bytes(), SUDO), "{raw:?}");
                }
                // several system lines in a row
                let raw = format!(
                    "[sudo] password for ad{br}{line}{br}{}{br}{line}{br}min: ",
                    kernel[0]
                );
                assert!(matches(raw.as_bytes(), SUDO), "{raw:?}");
                // printed with no break before it, in the middle of the prompt
                let raw = format!("[sudo] password for ad{line}{br}min: ");
                assert!(matches(raw.as_bytes(), SUDO), "{raw:?}");
            }
        }
    }

    #[test]
    fn system_lines_do_not_make_false_prompts_or_hide_line_starts() {
        // not finished: the prompt has not come yet
        assert!(!matches(
            b"[sudo] password for ad\r\n[   42.1] random: crng",
            SUDO
        ));
        // a prompt that needs its own line start still finds it after a kernel line
        let login = r"(?:^|\n)vmmgr01 login:";
        assert!(matches(
            b"reboot\r\n[   42.000001] reboot: Restarting system\r\nvmmgr01 login: ",
            login
        ));
        assert!(matches(
            b"x\r\n[  OK  ] Reached target getty.\r\n\r\nvmmgr01 login: ",
            login
        ));
        // bracketed defaults are not system lines
        assert!(matches(
            b"Gateway [10.0.2.2]: ",
            r"Gateway(?: \[[^\]\n]*\])?:"
        ));
        assert!(!matches(
            b"password for ad\r\nsomething else\r\nmin: ",
            SUDO
        ));
    }
}
