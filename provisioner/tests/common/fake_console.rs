//! A scripted fake serial console that plays the seed's whole Management Node dialog: login,
//! forced password change (echo off), sudo, the installation wizard, the restart messages and
//! the new login prompt — with the nuisances of a real console on request: ANSI colours, CRLF
//! and LF mixed, kernel log lines dropped into the middle of prompts, systemd's terminal
//! queries, a slow per-byte echo, and a line rate (bytes per second) for the benchmark.
//!
//! It is generic over the stream, so the same script runs over a Unix socket, TCP, or an
//! in-memory duplex pipe (with tokio's paused clock).

#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// How the fake console behaves.
#[derive(Debug, Clone)]
pub struct Script {
    /// The name in the login prompt before the wizard.
    pub first_hostname: String,
    /// Colours around labels, kernel lines mid-prompt, terminal queries, CRLF/LF mixed.
    pub noisy: bool,
    /// Delay before echoing each typed byte (the seed's slow console: 1 ms).
    pub echo_delay: Option<Duration>,
    /// The line rate in bytes per second, both directions (115200 baud ≈ 11520 B/s).
    pub rate: Option<u32>,
    /// Debian 12's real wording, as the VM suite's console shows it: "New password:",
    /// "(administrator enforced).", no "password updated" line, the message of the day before
    /// sudo, and on restart the shutdown broadcast, the shell prompt and GRUB's menu (cursor
    /// addressing). Otherwise the older PAM wording ("Enter new UNIX password:").
    pub new_pam: bool,
    /// Refuse the hostname answer with this message (once).
    pub reject_hostname: Option<String>,
    /// Stop after this many prompts: the next prompt never comes (the console stays open).
    pub hang_after_prompts: Option<usize>,
    /// Close the connection after this many prompts.
    pub drop_after_prompts: Option<usize>,
    /// Echo everything typed, passwords included (a console that ignores no-echo).
    pub echo_secrets: bool,
    /// Show nothing until Enter is pressed (an idle serial console).
    pub silent_until_enter: bool,
    /// Print the sudo prompt split by a kernel line and a systemd line, each on lines of
    /// their own with this line break around them (`[sudo] password for ad` BREAK
    /// `[   42.1] random: crng init done` BREAK … `min: `).
    pub split_sudo: Option<&'static str>,
    /// Put terminal controls in the console's text: ESC sequences, BEL, 8-bit CSI (raw 0x9b
    /// and UTF-8 `c2 9b`), bidi overrides — in the wizard's banner and in the refusal of
    /// `reject_hostname`.
    pub hostile: bool,
}

/// Terminal controls a hostile console prints: a title change, BEL, a screen clear as 8-bit
/// CSI (raw and UTF-8), a right-to-left override and an isolate.
pub const HOSTILE: &[u8] =
    b"\x1b]0;pwned\x07\x07\x9b2J\xc2\x9b31mred\xe2\x80\xaeexe.txt\xe2\x81\xa6x\xc2\x85";

impl Default for Script {
    fn default() -> Self {
        Script {
            first_hostname: "pexipmcumgr".into(),
            noisy: true,
            echo_delay: None,
            rate: None,
            new_pam: false,
            reject_hostname: None,
            hang_after_prompts: None,
            drop_after_prompts: None,
            echo_secrets: false,
            silent_until_enter: false,
            split_sudo: None,
            hostile: false,
        }
    }
}

/// What the fake console was told, for the test to check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Typed {
    /// Every answer line, in order.
    pub lines: Vec<String>,
    /// Bytes the console sent.
    pub sent: u64,
    /// Bytes the console received.
    pub received: u64,
    /// True when the dialog reached the final login prompt.
    pub finished: bool,
}

struct Console<S> {
    io: S,
    script: Script,
    typed: Typed,
    prompts: usize,
    /// When the line is free again (rate pacing).
    line_free: Instant,
}

enum Stop {
    Hang,
    Drop,
    Closed,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Console<S> {
    /// Holds the line for `n` bytes at the script's rate. The schedule is absolute, so a timer
    /// that fires late (tokio's timers have millisecond granularity) is caught up by the
    /// following bytes of the same burst, as a UART clocking continuously would; time spent
    /// waiting for the other side is idle line time (see [`Console::line`]). Sleeps only once
    /// at least 1 ms is owed.
    async fn pace(&mut self, n: usize) {
        if let Some(rate) = self.script.rate {
            self.line_free += Duration::from_secs_f64(n as f64 / f64::from(rate));
            if self.line_free > Instant::now() + Duration::from_millis(1) {
                tokio::time::sleep_until(self.line_free).await;
            }
        }
    }

    async fn out(&mut self, text: &str) -> Result<(), Stop> {
        self.out_bytes(text.as_bytes()).await
    }

    async fn out_bytes(&mut self, text: &[u8]) -> Result<(), Stop> {
        self.pace(text.len()).await;
        self.typed.sent += text.len() as u64;
        self.io.write_all(text).await.map_err(|_| Stop::Closed)?;
        self.io.flush().await.map_err(|_| Stop::Closed)
    }

    /// A prompt: counted, possibly the last one.
    async fn prompt(&mut self, label: &str, rest: &str) -> Result<(), Stop> {
        if self.script.hang_after_prompts == Some(self.prompts) {
            return Err(Stop::Hang);
        }
        if self.script.drop_after_prompts == Some(self.prompts) {
            return Err(Stop::Drop);
        }
        self.prompts += 1;
        if !self.script.noisy {
            return self.out(&format!("{label}{rest}")).await;
        }
        // a kernel line in the middle of every third prompt, colours on the label
        if self.prompts % 3 == 0 && label.len() > 4 {
            let (a, b) = label.split_at(label.len() / 2);
            let kernel = format!(
                "[   {:>3}.{:06}] e1000: eth0 NIC Link is Up 1000 Mbps\r\n",
                self.prompts,
                123_456 + self.prompts
            );
            self.out(&format!("\x1b[1;36m{a}")).await?;
            self.out(&kernel).await?;
            self.out(&format!("{b}\x1b[0m{rest}")).await
        } else {
            self.out(&format!("\x1b[1;36m{label}\x1b[0m{rest}")).await
        }
    }

    /// Reads a line ended by CR (a LF after it is dropped); echoes unless `secret`.
    async fn line(&mut self, secret: bool) -> Result<String, Stop> {
        let mut line = Vec::new();
        loop {
            let mut b = [0u8; 1];
            let n = self.io.read(&mut b).await.map_err(|_| Stop::Closed)?;
            if n == 0 {
                return Err(Stop::Closed);
            }
            // the wait for this byte was idle line time: the schedule restarts from now
            self.line_free = self.line_free.max(Instant::now());
            self.typed.received += 1;
            self.pace(1).await;
            match b[0] {
                b'\r' => break,
                b'\n' if line.is_empty() => continue,
                b'\n' => break,
                c => line.push(c),
            }
            if !secret || self.script.echo_secrets {
                if let Some(d) = self.script.echo_delay {
                    tokio::time::sleep(d).await;
                }
                let echo = [b[0]];
                self.pace(1).await;
                self.typed.sent += 1;
                self.io.write_all(&echo).await.map_err(|_| Stop::Closed)?;
            }
        }
        // alternate CRLF and LF line endings after answers
        let nl = if self.typed.lines.len() % 2 == 0 {
            "\r\n"
        } else {
            "\n"
        };
        self.out(nl).await?;
        let s = String::from_utf8_lossy(&line).into_owned();
        self.typed.lines.push(s.clone());
        Ok(s)
    }

    async fn ask(&mut self, label: &str, default: Option<&str>) -> Result<String, Stop> {
        let rest = match default {
            Some(d) => format!(" [{d}]: "),
            None => ": ".to_owned(),
        };
        self.prompt(label, &rest).await?;
        let answer = self.line(false).await?;
        Ok(if answer.is_empty() {
            default.unwrap_or("").to_owned()
        } else {
            answer
        })
    }

    async fn play(&mut self) -> Result<(), Stop> {
        let host = self.script.first_hostname.clone();
        if self.script.silent_until_enter {
            loop {
                let mut b = [0u8; 1];
                if self.io.read(&mut b).await.map_err(|_| Stop::Closed)? == 0 {
                    return Err(Stop::Closed);
                }
                self.typed.received += 1;
                if b[0] == b'\r' {
                    break;
                }
            }
        }
        if self.script.noisy {
            // boot output before anything was typed: not a refusal of anything
            self.out("Error: no medium found on /dev/sr0\r\n").await?;
        }
        self.out(&format!(
            "\r\n\x1b]0;{host}\x07Debian GNU/Linux 12 {host} ttyS0\r\n\r\n"
        ))
        .await?;
        loop {
            self.prompt(&format!("{host} login"), ": ").await?;
            if self.line(false).await? == "admin" {
                break;
            }
            self.out("\r\nLogin incorrect\r\n").await?;
        }
        let (enforced, new, retype) = if self.script.new_pam {
            (
                "administrator enforced",
                "New password",
                "Retype new password",
            )
        } else {
            (
                "root enforced",
                "Enter new UNIX password",
                "Retype new UNIX password",
            )
        };
        let period = if self.script.new_pam { "." } else { "" };
        self.out(&format!(
            "You are required to change your password immediately ({enforced}){period}\n"
        ))
        .await?;
        self.prompt(new, ": ").await?;
        let pw = self.line(true).await?;
        self.prompt(retype, ": ").await?;
        if self.line(true).await? != pw {
            self.out("Sorry, passwords do not match.\r\npasswd: Authentication token manipulation error\r\n").await?;
            return Err(Stop::Hang);
        }
        if self.script.new_pam {
            self.out(&format!(
                "\r\nLinux {host} 6.1.0-56-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 \
                 (2026-11-16) x86_64\r\n\r\nThe programs included with the Debian GNU/Linux \
                 system are free software;\r\n\r\nDebian GNU/Linux comes with ABSOLUTELY NO \
                 WARRANTY, to the extent\r\npermitted by applicable law.\r\n"
            ))
            .await?;
        } else {
            self.out("passwd: password updated successfully\r\n")
                .await?;
        }
        if self.script.noisy {
            // systemd asks the terminal for its size and background colour
            self.out("\x1b[6n\x1b]11;?\x1b\\").await?;
        }
        match self.script.split_sudo {
            Some(br) => {
                self.prompts += 1;
                self.out(&format!(
                    "[sudo] password for ad{br}[   42.1] random: crng init done{br}\
                     [  OK  ] Started \x1b[0;1;39msystemd-update-utmp.service\x1b[0m.{br}min: "
                ))
                .await?;
            }
            None => self.prompt("[sudo] password for admin", ": ").await?,
        }
        if self.line(true).await? != pw {
            self.out("Sorry, try again.\r\n").await?;
            return Err(Stop::Hang);
        }
        self.out("\r\nnodeboot installation wizard").await?;
        if self.script.hostile {
            self.out_bytes(HOSTILE).await?;
        }
        self.out("\r\n\r\n").await?;
        self.ask("IP address", Some("10.0.2.15")).await?;
        self.ask("Network mask", Some("255.255.255.0")).await?;
        self.ask("Gateway", Some("10.0.2.2")).await?;
        let mut hostname = self.ask("Hostname", None).await?;
        if let Some(msg) = self.script.reject_hostname.take() {
            self.out(&format!("Invalid: {msg}")).await?;
            if self.script.hostile {
                self.out_bytes(HOSTILE).await?;
            }
            self.out("\r\n  use 1 to 63 letters, digits and hyphens\r\n")
                .await?;
            hostname = self.ask("Hostname", None).await?;
        }
        self.ask("Domain suffix", None).await?;
        self.ask("DNS servers", Some("10.0.2.3")).await?;
        self.ask("NTP servers", None).await?;
        self.ask("Web administration username", Some("admin"))
            .await?;
        self.prompt("Web administration password", ": ").await?;
        let web = self.line(true).await?;
        self.prompt("Re-enter the web administration password", ": ")
            .await?;
        if self.line(true).await? != web {
            self.out("Invalid: the two passwords differ\r\n").await?;
            return Err(Stop::Hang);
        }
        self.ask("Enable incident reporting? (y/n)", None).await?;
        self.ask("Send deployment and usage statistics? (y/n)", None)
            .await?;
        self.out(&format!(
            "\nSummary:\n  IP address                    10.0.2.15\n  Hostname                      {hostname}\n\n"
        ))
        .await?;
        if self
            .ask("Apply this configuration and restart? (y/n)", None)
            .await?
            != "y"
        {
            return Err(Stop::Hang);
        }
        self.out("\r\nApplying the configuration...\r\nThe configuration is applied. The node restarts now.\r\n").await?;
        if self.script.new_pam {
            self.out(&format!(
                "\r\nBroadcast message from root@{host} on pts/0 (Thu 2026-11-26 10:14:11 \
                 UTC):\r\n\r\nThe system will reboot now!\r\n\r\n\x1b[?2004hadmin@{host}:~$ "
            ))
            .await?;
        } else {
            self.out("[  OK  ] Stopped target \x1b[0;1;39mMulti-User System\x1b[0m.\r\n")
                .await?;
        }
        self.out("[   42.000001] reboot: Restarting system\r\n")
            .await?;
        if self.script.new_pam {
            self.out(
                "\x1b[2J\x1b[1;1H\x1b[m\x1b[37m\x1b[40m\x1b[m\x1b[37m\x1b[40m\x1b[1;1H\
                 GNU GRUB  version 2.06-13+deb12u2\x1b[m\x1b[3;2H+------------------------+\
                 \x1b[4;2H|*Debian GNU/Linux (nodeboot node)|\x1b[10;1H   The highlighted \
                 entry will be executed automatically in 1s.\x1b[10;1H   The highlighted \
                 entry will be executed automatically in 0s.\x1b[2J\x1b[1;1H  Booting \
                 `Debian GNU/Linux (nodeboot node)'\r\n\r\n",
            )
            .await?;
        }
        self.out("[    0.000000] Linux version 6.1.0-28-amd64\r\n")
            .await?;
        self.out(&format!(
            "\r\n\x1b]0;{hostname}\x07Debian GNU/Linux 12 {hostname} ttyS0\r\n\r\n{hostname} login: "
        ))
        .await?;
        self.typed.finished = true;
        Ok(())
    }
}

/// Plays the script on `io` until the dialog ends, hangs or the peer goes away. Hanging
/// means: keep the connection open and read (and drop) whatever comes until the peer closes.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(io: S, script: Script) -> Typed {
    serve_with(io, script, || {}).await
}

/// [`serve`], calling `on_done` when the dialog has ended, before lingering on the line (a pty
/// test drops its own slave descriptor there, so that the master sees the end).
pub async fn serve_with<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    script: Script,
    on_done: impl FnOnce(),
) -> Typed {
    let mut c = Console {
        io,
        script,
        typed: Typed::default(),
        prompts: 0,
        line_free: Instant::now(),
    };
    let result = c.play().await;
    on_done();
    match result {
        Ok(()) | Err(Stop::Hang) => {
            // stay on the line like a real console until the other side leaves
            let mut buf = [0u8; 256];
            while let Ok(n) = c.io.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        }
        Err(Stop::Drop) | Err(Stop::Closed) => {}
    }
    c.typed
}
