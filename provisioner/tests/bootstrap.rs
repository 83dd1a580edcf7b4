//! `nodeboot bootstrap` against a scripted fake console (Unix socket, TCP, a serial line on a
//! pty) and in process with tokio's paused clock: the whole seed dialog completes, and each
//! failure (refused answer, dropped connection, missing prompt) is reported precisely with no
//! secret shown.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::fake_console::{self, Script, Typed};
use common::{OS_PASSWORD, WEB_PASSWORD};
use nodeboot::console::engine::{DialogError, ExpectError, Match, Session, run_dialog};
use nodeboot::console::profile::{BUILTIN, Profile};
use nodeboot::console::{Passwords, dialog_vars, load_answers};
use nodeboot_config::Secret;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs the real `nodeboot bootstrap` binary against a fake console served on `listener`.
fn bootstrap_against<L>(
    dir: &Path,
    console: &str,
    extra: &[&str],
    accept: impl FnOnce() -> L,
) -> (Output, Typed)
where
    L: std::future::Future<Output = Typed> + Send + 'static,
{
    let mut cmd = common::bootstrap(dir, console);
    cmd.args(extra);
    let rt = runtime();
    rt.block_on(async {
        let server = tokio::spawn(accept());
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        let typed = server.await.unwrap();
        (out, typed)
    })
}

/// Runs the real `nodeboot bootstrap` against a fake console following `script` on a unix
/// socket in `dir`.
fn bootstrap_over_a_unix_socket(dir: &Path, extra: &[&str], script: Script) -> (Output, Typed) {
    let sock = dir.join("serial.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    listener.set_nonblocking(true).unwrap();
    bootstrap_against(
        dir,
        &format!("unix:{}", sock.display()),
        extra,
        move || async move {
            let listener = tokio::net::UnixListener::from_std(listener).unwrap();
            let (stream, _) = listener.accept().await.unwrap();
            fake_console::serve(stream, script).await
        },
    )
}

/// The built-in dialog profile, filled in from [`common::answers`] and the test passwords.
fn builtin_profile() -> Profile {
    let dir = tempfile::tempdir().unwrap();
    let (answers, _) = common::answers(dir.path());
    let config = load_answers(&answers).unwrap();
    let passwords = Passwords {
        os: Secret::new(OS_PASSWORD.into()),
        web: Secret::new(WEB_PASSWORD.into()),
    };
    let vars = dialog_vars(&config, &passwords).unwrap();
    Profile::load(BUILTIN, "built-in", &vars).unwrap()
}

/// A runtime whose clock is paused: timeouts pass instantly and deterministically.
fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

fn assert_no_secret(what: &str, s: &str) {
    assert!(
        !s.contains(OS_PASSWORD),
        "{what} shows the OS password:\n{s}"
    );
    assert!(
        !s.contains(WEB_PASSWORD),
        "{what} shows the web password:\n{s}"
    );
}

#[test]
fn the_seed_dialog_completes_over_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let script = Script {
        echo_delay: Some(std::time::Duration::from_millis(1)),
        ..Script::default()
    };
    let (out, typed) = bootstrap_over_a_unix_socket(dir.path(), &[], script);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(typed.finished);
    assert_eq!(typed.lines, common::expected_lines());
    assert!(stderr.contains("[ 1/20] login"), "{stderr}");
    assert!(stderr.contains("[20/20] login-after-restart"), "{stderr}");
    assert!(
        stderr.contains(
            "bootstrap complete: mgr01.example.com answered the wizard and restarted (18 steps"
        ),
        "{stderr}"
    );
    assert_no_secret("stderr", &stderr);
    let transcript = std::fs::read_to_string(dir.path().join("transcript.log")).unwrap();
    assert_no_secret("the transcript", &transcript);
    assert!(
        transcript.contains("Hostname: [>mgr01]\nmgr01\n"),
        "{transcript}"
    );
    assert!(transcript.contains("[>mgr01]"), "{transcript}");
    assert_eq!(transcript.matches("[>***]").count(), 5, "{transcript}");
    assert!(transcript.ends_with("mgr01 login: "), "{transcript}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("transcript.log"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn the_seed_dialog_completes_over_tcp_with_debian12_wording() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let script = Script {
        new_pam: true,
        echo_delay: Some(std::time::Duration::from_millis(1)),
        ..Script::default()
    };
    let s = script;
    let (out, typed) = bootstrap_against(
        dir.path(),
        &format!("tcp:{addr}"),
        &[],
        move || async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let (stream, _) = listener.accept().await.unwrap();
            fake_console::serve(stream, s).await
        },
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(typed.finished);
    assert_eq!(typed.lines, common::expected_lines());
}

/// A pty pair stands in for the cable: bootstrap opens the slave (as `serial:` at a baud
/// rate, or as `pty:`), the fake console answers on the master.
fn dialog_over_a_pty(console_prefix: &str, suffix: &str) {
    let dir = tempfile::tempdir().unwrap();
    let pty = nix::pty::openpty(None, None).unwrap();
    // raw from the start, as a serial line is: no echo or line editing by the pty itself
    let mut raw = nix::sys::termios::tcgetattr(&pty.slave).unwrap();
    nix::sys::termios::cfmakeraw(&mut raw);
    nix::sys::termios::tcsetattr(&pty.slave, nix::sys::termios::SetArg::TCSANOW, &raw).unwrap();
    let slave = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&pty.slave)
    ))
    .unwrap();
    let (master, slave_fd) = (pty.master, pty.slave);
    let (out, typed) = bootstrap_against(
        dir.path(),
        &format!("{console_prefix}{}{suffix}", slave.display()),
        &[],
        move || async move {
            let stream = nodeboot::console::transport::FdStream::from_fd(master).unwrap();
            // the test's own slave descriptor goes once the dialog is over, so that the
            // master sees the end when bootstrap closes its side
            fake_console::serve_with(stream, Script::default(), move || drop(slave_fd)).await
        },
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(typed.finished);
    assert_eq!(typed.lines, common::expected_lines());
}

#[test]
fn the_seed_dialog_completes_over_a_serial_line() {
    dialog_over_a_pty("serial:", "@115200");
}

#[test]
fn the_seed_dialog_completes_over_a_pty_device() {
    dialog_over_a_pty("pty:", "");
}

#[test]
fn a_refused_answer_is_reported_with_the_consoles_message() {
    let dir = tempfile::tempdir().unwrap();
    let script = Script {
        reject_hostname: Some("hostname \"mgr01\" is already taken".into()),
        ..Script::default()
    };
    let (out, _) = bootstrap_over_a_unix_socket(dir.path(), &[], script);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("nodeboot: the console refused the answer before step \"domain-suffix\" (10 of 20):\n  | Invalid: hostname \"mgr01\" is already taken\n  |   use 1 to 63 letters, digits and hyphens\n  | Hostname:"),
        "{stderr}"
    );
    assert_no_secret("stderr", &stderr);
}

#[test]
fn a_dropped_connection_is_reported_with_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let script = Script {
        drop_after_prompts: Some(6),
        ..Script::default()
    };
    let (out, _) = bootstrap_over_a_unix_socket(dir.path(), &[], script);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("nodeboot: the console closed the connection during step \"gateway\" (8 of 20), waiting for /Gateway(?: \\[[^\\]\\n]*\\])?:/ (gateway)\nlast lines received:\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("  | IP address [10.0.2.15]: 10.0.2.15"),
        "{stderr}"
    );
    assert_no_secret("stderr", &stderr);
}

#[test]
fn bad_secrets_stop_before_the_console_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let (answers, secrets) = common::answers(dir.path());
    let run = |secrets: &Path| {
        Command::new(common::nodeboot())
            .args(["bootstrap", "--console", "unix:/nonexistent/console.sock"])
            .arg("--answers")
            .arg(&answers)
            .arg("--secrets-file")
            .arg(secrets)
            .output()
            .unwrap()
    };
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(&secrets);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "secrets file {p} has mode 0644: its group or other users may access it (a file with secrets must be 0600 or stricter) (help: chmod 600 {p})",
            p = secrets.display()
        )),
        "{stderr}"
    );
    let wrong = dir.path().join("wrong.secrets");
    std::fs::write(
        &wrong,
        format!("os_password={OS_PASSWORD}\nweb_password=not it\n"),
    )
    .unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = run(&wrong);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("the web administration password given does not match <web-admin password-hash> of the answers file"),
        "{stderr}"
    );
    assert_no_secret("stderr", &stderr);
}

/// In process, over an in-memory pipe, with tokio's clock paused: the 60-second step timeout
/// passes instantly and deterministically.
#[test]
fn a_prompt_that_never_comes_times_out_naming_the_step_with_secrets_masked() {
    let profile = builtin_profile();
    let rt = paused_runtime();
    let mut transcript = Vec::new();
    let err = rt.block_on(async {
        let (ours, theirs) = tokio::io::duplex(4096);
        // a console that echoes even passwords, then never shows the IP address prompt
        let script = Script {
            echo_secrets: true,
            hang_after_prompts: Some(4),
            ..Script::default()
        };
        let server = tokio::spawn(fake_console::serve(theirs, script));
        let secrets = vec![
            OS_PASSWORD.as_bytes().to_vec(),
            WEB_PASSWORD.as_bytes().to_vec(),
        ];
        let err = run_dialog(
            ours,
            &profile,
            secrets,
            Some(&mut transcript as &mut dyn std::io::Write),
            &mut |_, _, _| {},
        )
        .await
        .unwrap_err();
        server.abort();
        err
    });
    let DialogError::Timeout { .. } = &err else {
        panic!("{err}")
    };
    let msg = err.to_string();
    assert!(
        msg.starts_with("step \"ip-address\" (6 of 20) timed out after 120s waiting for /IP address(?: \\[[^\\]\\n]*\\])?:/ (ip-address)\nlast lines received:\n"),
        "{msg}"
    );
    // the echoed passwords are in the stream, masked
    assert!(msg.contains("  | [sudo] password for admin: ***"), "{msg}");
    assert_no_secret("the error", &msg);
    let transcript = String::from_utf8(transcript).unwrap();
    assert!(
        transcript.contains("Enter new UNIX password: [>***]\n***\n"),
        "{transcript}"
    );
    // the end of the output is in the transcript too, though the dialog failed
    assert!(
        transcript.ends_with("nodeboot installation wizard\n\n"),
        "{transcript:?}"
    );
    assert_no_secret("the transcript", &transcript);
}

/// An idle serial console shows nothing until Enter: the login step presses Enter each time
/// the console has been quiet for its nudge time (3 s, passed instantly on the paused clock).
#[test]
fn a_silent_console_is_woken_with_enter() {
    let profile = builtin_profile();
    let rt = paused_runtime();
    let (report, typed) = rt.block_on(async {
        let (ours, theirs) = tokio::io::duplex(4096);
        let script = Script {
            silent_until_enter: true,
            ..Script::default()
        };
        let server = tokio::spawn(fake_console::serve(theirs, script));
        let report = run_dialog(ours, &profile, Vec::new(), None, &mut |_, _, _| {})
            .await
            .unwrap();
        (report, server.await.unwrap())
    });
    assert!(typed.finished);
    assert_eq!(typed.lines, common::expected_lines());
    assert_eq!(report.steps_run.first().map(String::as_str), Some("login"));
    assert_eq!(
        report.steps_run.last().map(String::as_str),
        Some("login-after-restart")
    );
}

/// The dialog is data: the built-in profile printed, edited and given back with --profile.
#[test]
fn an_edited_profile_drives_the_dialog() {
    let dir = tempfile::tempdir().unwrap();
    let printed = Command::new(common::nodeboot())
        .args(["bootstrap", "--print-profile"])
        .output()
        .unwrap();
    assert!(printed.status.success());
    let builtin = String::from_utf8(printed.stdout).unwrap();
    // this console always asks for sudo: make the step required, and say so in its name
    let edited = builtin.replace(
        "name = \"sudo\"\nexpect = ['\\[sudo\\] password for [^:\\n]*:']\nsend = \"{os_password}\"\nsecret = true\noptional = true",
        "name = \"sudo-required\"\nexpect = ['\\[sudo\\] password for [^:\\n]*:']\nsend = \"{os_password}\"\nsecret = true",
    );
    assert_ne!(
        edited, builtin,
        "the sudo step was not found in the printed profile"
    );
    let profile = dir.path().join("edited.toml");
    std::fs::write(&profile, edited).unwrap();
    let profile_arg = profile.display().to_string();
    let (out, typed) =
        bootstrap_over_a_unix_socket(dir.path(), &["--profile", &profile_arg], Script::default());
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("[ 5/20] sudo-required"), "{stderr}");
    assert!(typed.finished);

    // a broken profile is refused before the console is opened, naming the step
    std::fs::write(
        &profile,
        "[[step]]\nname = \"sudo\"\nexpect = 'x'\nsend = \"{sudo_password}\"\n",
    )
    .unwrap();
    let (answers, secrets) = common::answers(dir.path());
    let out = Command::new(common::nodeboot())
        .args([
            "bootstrap",
            "--console",
            "unix:/nonexistent.sock",
            "--profile",
            &profile_arg,
        ])
        .arg("--answers")
        .arg(&answers)
        .arg("--secrets-file")
        .arg(&secrets)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("nodeboot: {profile_arg}: step 1 (\"sudo\"): unknown variable {{sudo_password}} (help: known variables are address, dns_servers,")),
        "{stderr}"
    );
}

#[test]
fn a_prompt_split_by_system_lines_is_answered_whatever_the_line_breaks() {
    for br in ["\r\n", "\n", "\r", "\n\r", "\r\r\n"] {
        let dir = tempfile::tempdir().unwrap();
        let script = Script {
            split_sudo: Some(br),
            ..Script::default()
        };
        let (out, typed) = bootstrap_over_a_unix_socket(dir.path(), &[], script);
        let stderr = text(&out.stderr);
        assert!(out.status.success(), "{br:?}: {stderr}");
        assert!(typed.finished, "{br:?}");
        assert_eq!(typed.lines, common::expected_lines(), "{br:?}");
        assert!(stderr.contains("] sudo\n"), "{br:?}: {stderr}");
    }
}

/// No character of `s` that could drive a terminal: C0 (but newline and tab), C1, bidi.
fn unsafe_chars(s: &str) -> Vec<char> {
    s.chars()
        .filter(|&c| c != '\n' && nodeboot_config::text::is_unsafe_char(c))
        .collect()
}

#[test]
fn console_controls_reach_neither_the_operators_terminal_nor_the_transcript() {
    let dir = tempfile::tempdir().unwrap();
    let script = Script {
        hostile: true,
        reject_hostname: Some("hostname \"mgr01\" is already taken".into()),
        ..Script::default()
    };
    let (out, _) = bootstrap_over_a_unix_socket(dir.path(), &[], script);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).expect("stderr is UTF-8, no raw 0x9b");
    assert_eq!(unsafe_chars(&stderr), vec![], "{stderr:?}");
    assert!(
        stderr.contains("  | Invalid: hostname \"mgr01\" is already takenredexe.txtx\n"),
        "the console's words are relayed, inert: {stderr}"
    );
    let transcript = std::fs::read(dir.path().join("transcript.log")).unwrap();
    let transcript = String::from_utf8(transcript).expect("transcript is UTF-8, no raw 0x9b");
    assert_eq!(unsafe_chars(&transcript), vec![], "{transcript:?}");
    assert!(
        transcript.contains("nodeboot installation wizardredexe.txtx\n"),
        "{transcript}"
    );
    assert!(!transcript.contains('\r'), "{transcript:?}");
}

#[test]
fn a_transcript_open_to_others_or_behind_a_link_is_refused_before_the_console_is_touched() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let transcript = dir.path().join("transcript.log");
    std::fs::write(&transcript, "earlier run\n").unwrap();
    std::fs::set_permissions(&transcript, std::fs::Permissions::from_mode(0o644)).unwrap();
    // a console that would accept the connection: it must never be reached
    let sock = dir.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    listener.set_nonblocking(true).unwrap();
    let console = format!("unix:{}", sock.display());
    let out = common::bootstrap(dir.path(), &console).output().unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "transcript {p} has mode 0644: its group or other users may access it (a file with secrets must be 0600 or stricter) (help: chmod 600 {p})",
            p = transcript.display()
        )),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&transcript).unwrap(),
        "earlier run\n"
    );
    assert_eq!(
        std::fs::metadata(&transcript).unwrap().permissions().mode() & 0o777,
        0o644,
        "nothing changed"
    );

    // a link in the transcript's place (to a file the operator may not mean to overwrite)
    std::fs::remove_file(&transcript).unwrap();
    let target = dir.path().join("important");
    std::fs::write(&target, "keep\n").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&target, &transcript).unwrap();
    let out = common::bootstrap(dir.path(), &console).output().unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("is a symbolic link: refused"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep\n");
    assert!(listener.accept().is_err(), "the console was contacted");
}

/// The engine scripted step by step (`Session::expect` / `send`, what the VM suite uses) over
/// a real Unix socket pair: the pattern whose match ends first wins, groups are captured from
/// the cleaned text with system lines cut out, a match uses the output up to its end, a send
/// starts a new window, and every secret is masked in captures, errors and the transcript.
#[test]
fn a_session_expects_captures_and_consumes_over_a_socket() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let re = |p: &str| regex::bytes::Regex::new(p).unwrap();
    let wait = std::time::Duration::from_secs(10);
    let mut transcript = Vec::new();
    runtime().block_on(async {
        let (ours, mut theirs) = tokio::net::UnixStream::pair().unwrap();
        let secrets = vec![OS_PASSWORD.as_bytes().to_vec()];
        let mut s = Session::new(
            ours,
            secrets,
            Some(&mut transcript as &mut dyn std::io::Write),
        );
        theirs
            .write_all(
                b"\x1b[1mCertificate fingerprint:\x1b[0m\r\n  SHA256:ab:cd\r\n\r\nnode login: ",
            )
            .await
            .unwrap();
        let banner = [re(r"(?m)^(\S+) login:"), re(r"fingerprint:\s+(SHA256:\S+)")];
        let m = s.expect(&banner, wait).await.unwrap();
        assert_eq!(
            m,
            Match {
                index: 1,
                groups: vec![
                    Some("fingerprint:\n  SHA256:ab:cd".into()),
                    Some("SHA256:ab:cd".into())
                ]
            }
        );
        // the login prompt after the banner is still there, and only once
        let m = s.expect(&banner, wait).await.unwrap();
        assert_eq!((m.index, m.groups[1].as_deref()), (0, Some("node")));
        let e = s
            .expect(&banner, std::time::Duration::from_millis(50))
            .await
            .unwrap_err();
        let ExpectError::Timeout { .. } = &e else {
            panic!("{e}")
        };
        assert!(
            e.to_string().starts_with(
                "timed out after 50ms waiting for /(?m)^(\\S+) login:/ or /fingerprint:\\s+(SHA256:\\S+)/\nlast lines received:\n"
            ),
            "{e}"
        );

        // a send is the text and CR; what came before it is not matched again
        s.send(OS_PASSWORD, true).await.unwrap();
        let mut typed = vec![0u8; OS_PASSWORD.len() + 1];
        theirs.read_exact(&mut typed).await.unwrap();
        assert_eq!(typed, format!("{OS_PASSWORD}\r").as_bytes());
        // an echoed secret, and a kernel line inside the output
        theirs
            .write_all(
                format!("{OS_PASSWORD}\r\nok 1\r\n[   42.1] random: crng init done\r\nok 2\r\n==END==\r\n")
                    .as_bytes(),
            )
            .await
            .unwrap();
        let m = s.expect(&[re(r"(?s)^(.*?)==END==")], wait).await.unwrap();
        assert_eq!(m.groups[1].as_deref(), Some("***\nok 1\nok 2\n"));
        // the console goes away
        theirs.write_all(b"bye\r\n").await.unwrap();
        drop(theirs);
        let e = s.expect(&banner, wait).await.unwrap_err();
        let ExpectError::Closed { last_lines, .. } = &e else {
            panic!("{e}")
        };
        assert!(
            last_lines.ends_with(
                "  | node login: ***\n  | ok 1\n  | [   42.1] random: crng init done\n  | ok 2\n  | ==END==\n  | bye"
            ),
            "{e}"
        );
        s.finish().unwrap();
    });
    let transcript = String::from_utf8(transcript).unwrap();
    assert!(transcript.contains("node login: [>***]\n"), "{transcript}");
    assert!(transcript.ends_with("==END==\nbye\n"), "{transcript:?}");
    assert_no_secret("the transcript", &transcript);
}
