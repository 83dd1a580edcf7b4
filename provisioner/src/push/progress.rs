//! What the operator sees while a push runs: a live line per active node and an overall bar
//! on a terminal (indicatif), plain timestamped log lines otherwise, nothing with `--json`.
//!
//! Only names, addresses, states and error texts pass through here, never a file's content
//! or a token.

use std::io::Write as _;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Live bars on the terminal (stderr).
    Live,
    /// One line per event on stderr.
    Lines,
    /// Nothing (machine output on stdout).
    Quiet,
}

impl Mode {
    /// Live on a terminal, lines otherwise; quiet when machine output was asked for.
    pub fn choose(json: bool) -> Self {
        use std::io::IsTerminal as _;
        if json {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Live
        } else {
            Mode::Lines
        }
    }
}

/// The display for a whole run.
#[derive(Debug)]
pub struct Display {
    mode: Mode,
    started: Instant,
    bars: Option<(MultiProgress, ProgressBar)>,
}

impl Display {
    /// A display for `total` nodes doing `verb` ("push", "status").
    pub fn new(mode: Mode, total: u64, verb: &str) -> Self {
        let bars = (mode == Mode::Live).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
            let overall = multi.add(ProgressBar::new(total));
            overall.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} done, {msg} {elapsed}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            overall.set_prefix(verb.to_string());
            overall.enable_steady_tick(Duration::from_millis(500));
            (multi, overall)
        });
        Display {
            mode,
            started: Instant::now(),
            bars,
        }
    }

    /// The handle one node's task reports through.
    pub fn node(&self, name: &str) -> NodeProgress {
        let bar = self.bars.as_ref().map(|(multi, overall)| {
            let bar = multi.insert_before(overall, ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix:20} {msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(name.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            (bar, overall.clone(), multi.clone())
        });
        NodeProgress {
            name: name.to_string(),
            mode: self.mode,
            started: self.started,
            bar,
            last: std::sync::Mutex::new(String::new()),
        }
    }

    /// Prints a line above the live display (or on stderr), e.g. a first-use notice.
    pub fn note(&self, line: &str) {
        match (&self.bars, self.mode) {
            (Some((multi, _)), _) => {
                let _ = multi.println(line);
            }
            (None, Mode::Lines) => eprintln!("{line}"),
            (None, _) => {}
        }
    }

    /// Hides the live display while the operator answers a question on the terminal.
    pub fn pause(&self) {
        if let Some((multi, _)) = &self.bars {
            let _ = multi.clear();
            multi.set_draw_target(ProgressDrawTarget::hidden());
        }
    }

    /// Shows the live display again after [`Display::pause`].
    pub fn resume(&self) {
        if let Some((multi, _)) = &self.bars {
            multi.set_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        }
    }

    /// Removes the live display before the summary is printed.
    pub fn finish(&self) {
        if let Some((multi, overall)) = &self.bars {
            overall.finish_and_clear();
            let _ = multi.clear();
        }
        let _ = std::io::stderr().flush();
    }
}

/// One node's progress: a spinner line on a terminal, log lines otherwise.
#[derive(Debug)]
pub struct NodeProgress {
    name: String,
    mode: Mode,
    started: Instant,
    bar: Option<(ProgressBar, ProgressBar, MultiProgress)>,
    /// The last step logged: a log line is written only when the step changes (a node polled
    /// every few hundred milliseconds while it reboots would otherwise flood the log).
    last: std::sync::Mutex<String>,
}

impl NodeProgress {
    /// The node is now doing `what` ("connecting", "waiting for the node (attempt 3)").
    pub fn step(&self, what: &str) {
        match (&self.bar, self.mode) {
            (Some((bar, _, _)), _) => bar.set_message(what.to_string()),
            (None, Mode::Lines) => {
                if let Ok(mut last) = self.last.lock() {
                    if *last == what {
                        return;
                    }
                    what.clone_into(&mut last);
                }
                self.line(what);
            }
            (None, _) => {}
        }
    }

    /// The node is done: its line leaves the live area and `outcome` is printed above it.
    pub fn finish(&self, ok: bool, outcome: &str) {
        match (&self.bar, self.mode) {
            (Some((bar, overall, multi)), _) => {
                bar.finish_and_clear();
                multi.remove(bar);
                let mark = if ok { "ok  " } else { "FAIL" };
                let _ = multi.println(format!("{mark} {}: {outcome}", self.name));
                overall.inc(1);
                if !ok {
                    overall.set_message("some failed");
                }
            }
            (None, Mode::Lines) => self.line(outcome),
            (None, _) => {}
        }
    }

    fn line(&self, what: &str) {
        let t = self.started.elapsed().as_secs_f64();
        eprintln!("[{t:7.2}s] {}: {what}", self.name);
    }
}
