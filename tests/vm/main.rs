//! The end-to-end VM suite (`tests/vm/run` builds the image and runs this): boots the node
//! image in QEMU with its serial console on a Unix socket and guest port 8443 forwarded to
//! loopback, and drives the seed's flow from outside, as an operator would.
//!
//! 1. configure: wait for the banner's certificate fingerprint on the console; `nodeboot push
//!    --wait` a file whose gateway does not exist (10.0.2.1) pinned to it: the node applies it,
//!    reboots, finds the gateway silent for the file's 10 s of grace, rolls back and serves
//!    8443 again, and push reports `rolled back: <reason>` (the banner shows it too); then the
//!    real file: push reports `healthy`, the node reboots to `vmnode01 login:`, the suite logs
//!    in on the console and checks hostname, address, routes, resolver, time servers, and that
//!    8443 serves the checks read-only and refuses uploads (409).
//! 2. reject: boot the baked image under UEFI (OVMF) with the disk on virtio-scsi (Google's
//!    UEFI machines), upload a bad configuration, see it
//!    rejected with its errors, the node still unconfigured and serving; then the `admin`
//!    first login (forced password change) and `systemd-analyze` for the boot figures.
//! 3. management: boot the pristine image again; at its login prompt the suite hands the
//!    serial socket over to `nodeboot bootstrap --console unix:SOCK` (the seed's Management
//!    Node dialog: login, forced password change, sudo, the wizard, the reboot, up to
//!    `vmmgr01 login:`), takes it back, logs in with the new password and checks the applied
//!    configuration and the node identity; no secret may appear in any output or transcript.
//! 4. nocloud, ovfenv, oracle: the unattended first boot (docs/sources.md), with nobody typing
//!    and no push: the pristine image boots with a NoCloud medium (vfat, label `CIDATA`, made
//!    by mkfs.vfat and mcopy, on a virtio disk), with an OVF environment ISO (made by xorriso,
//!    on an IDE CD-ROM: `nodeboot.config` is the configuration in base64), or with Oracle Cloud's DMI
//!    asset tag and a fake metadata service at 169.254.169.254 answering `/opc/v2/instance/`
//!    with the Management Node JSON (QEMU runs in a network namespace of its own whose loopback
//!    holds that address, so the guest reaches it through its default route and nothing leaves
//!    the namespace). Each node must configure itself, reboot to its configured login prompt,
//!    and pass the checks of scenario 1 (oracle: those its JSON carries) from inside. oracle
//!    boots Oracle Cloud's emulated mode: an IDE disk and an e1000 NIC.
//!
//! configure boots VMware's paravirtual devices (PVSCSI disk, VMXNET3 NIC) under BIOS, as the
//! OVA deploys by default. The other scenarios boot SeaBIOS with virtio devices; see
//! [`Hardware`]. (Debian's OVMF has no PVSCSI driver, so VMware's set is booted by SeaBIOS.)
//! 5. powerloss: boot a writable qcow2 overlay of the image to its banner and save the machine
//!    there; for each kill point load it, `nodeboot push` the configuration, SIGKILL QEMU at a
//!    fixed delay after the 202 and boot the same disk again. The node must be unconfigured
//!    and serving 8443 with the image's files, or configured as in scenario 1 with every file
//!    of the configuration, never a mix; after a clean power-off `e2fsck -fn` must be clean.
//!
//! Every VM runs in a network namespace of its own (a [`Lab`]): QEMU's user network, the
//! forwarded port 8443 and small DNS, NTP and TCP services for the node's checks after its
//! reboot, and nothing else; no traffic leaves the namespace.
//! Prints timings and "vm: N passed, M failed"; the serial transcripts are kept as artifacts.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use nodeboot::console::engine::{ExpectError, Session};
use nodeboot_tests::netlab::{Netns, Responders};
use regex::Regex;
use regex::bytes::Regex as BytesRegex;

/// The admin password whose SHA-512 crypt hash is in `fixtures/node.xml` (test-only).
const CONFIGURED_PASSWORD: &str = "vm-suite-Passw0rd";
/// The password the reject scenario sets at the forced first-login change (test-only).
const FIRST_LOGIN_PASSWORD: &str = "Fresh-vm-Passw0rd-2";
const NEW_HOSTNAME: &str = "vmnode01";
/// The OS admin password `nodeboot bootstrap` sets at the forced change (its hash is in
/// `fixtures/mgmt.xml`; test-only).
const MGMT_OS_PASSWORD: &str = "Mgmt-vm-Passw0rd-3";
/// The web administration password bootstrap gives the wizard (hash in `fixtures/mgmt.xml`).
const MGMT_WEB_PASSWORD: &str = "Web-vm-Passw0rd-4";
const MGMT_HOSTNAME: &str = "vmmgr01";
const FINGERPRINT_RE: &str = r"SHA256:(?:[0-9a-f]{2}:){31}[0-9a-f]{2}";
/// The console dialog's prompts (matched at the end of what the console printed).
const LOGIN_PROMPT: &str = r"login:\s*$";
const PASSWORD_PROMPT: &str = r"Password:\s*$";
/// PAM's wording varies between versions ("New password:", "Enter new UNIX password:").
const NEW_PASSWORD_PROMPT: &str = r"(New|new) (UNIX )?password:\s*$";
const RETYPE_PROMPT: &str = r"(Retype|retype) new (UNIX )?password:\s*$";
const SUDO_PROMPT: &str = r"\[sudo\] password for admin:\s*$";
const SHELL_PROMPT: &str = r"\$ $";
/// The wizard's first question (the address, with the DHCP-given default).
const WIZARD_FIRST_QUESTION: &str = r"IP address \[10\.0\.2\.15\]:\s*$";

/// What a configured node's shell reports of itself: hostname, address, routes, resolvers,
/// time servers and the state of the agent.
const NODE_REPORT: &str = "hostname; ip -4 -o addr show dev eth0; ip -4 route; cat /etc/resolv.conf; \
     grep -E '^(server|pool) ' /etc/chrony/chrony.conf; \
     echo agent=$(systemctl is-active nodeboot-agent.service); \
     echo listeners=$(ss -Htln 'sport = :8443' | wc -l); \
     echo checks=$(systemctl show -P Result nodeboot-check.service)";

type Fallible<T> = Result<T, String>;

/// The end-to-end VM suite: boots the node image in QEMU and drives the seed's flow from
/// outside (run it with tests/vm/run, which builds the image).
#[derive(Debug, clap::Parser)]
#[command(name = "nodeboot-vm-suite", max_term_width = 80)]
struct Cli {
    /// The node image (raw) to boot
    #[arg(long, value_name = "RAW", required_unless_present = "list")]
    image: Option<PathBuf>,
    /// The image the reject scenario boots [default: --image]; tests/vm/run passes the
    /// output of `nodeboot-image bake` here, so a baked image is booted too
    #[arg(long, value_name = "RAW")]
    reject_image: Option<PathBuf>,
    /// The `nodeboot` binary that pushes and bootstraps
    #[arg(long, value_name = "PATH", required_unless_present = "list")]
    nodeboot: Option<PathBuf>,
    /// Where serial transcripts and timings go
    #[arg(long, value_name = "DIR", default_value = "artifacts/vm")]
    artifacts: PathBuf,
    /// Guest memory in MiB
    #[arg(long = "memory", value_name = "MIB", default_value_t = 1024)]
    memory_mib: u32,
    /// Run this scenario only
    #[arg(long, value_enum)]
    only: Option<Only>,
    /// Print the names of the scenarios that would run and exit (tests/vm/run checks
    /// --only this way before it builds anything)
    #[arg(long)]
    list: bool,
}

/// The scenarios, in the order they run, by the name `--only` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Only {
    Configure,
    Reject,
    Management,
    Nocloud,
    Ovfenv,
    Oracle,
    Powerloss,
}

type Scenario = fn(&Options) -> Fallible<()>;

impl Only {
    fn name(self) -> String {
        clap::ValueEnum::to_possible_value(&self)
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    }

    fn scenario(self) -> Scenario {
        match self {
            Only::Configure => configure,
            Only::Reject => reject,
            Only::Management => management,
            Only::Nocloud => nocloud,
            Only::Ovfenv => ovfenv,
            Only::Oracle => oracle,
            Only::Powerloss => powerloss,
        }
    }

    /// The scenarios to run: all of them, or the one `--only` names.
    fn selected(only: Option<Only>) -> Vec<Only> {
        <Only as clap::ValueEnum>::value_variants()
            .iter()
            .copied()
            .filter(|s| only.is_none_or(|o| o == *s))
            .collect()
    }
}

#[derive(Debug)]
struct Options {
    image: PathBuf,
    /// The image the reject scenario boots (default: `image`).
    reject_image: Option<PathBuf>,
    nodeboot: PathBuf,
    artifacts: PathBuf,
    fixtures: PathBuf,
    memory_mib: u32,
}

fn main() -> ExitCode {
    // clap refuses an unknown scenario or argument (exit 2, the valid names listed)
    let cli = <Cli as clap::Parser>::parse();
    let selected = Only::selected(cli.only);
    if cli.list {
        for s in selected {
            println!("{}", s.name());
        }
        return ExitCode::SUCCESS;
    }
    let (Some(image), Some(nodeboot)) = (cli.image, cli.nodeboot) else {
        eprintln!("vm: --image and --nodeboot are required");
        return ExitCode::from(2);
    };
    let opts = Options {
        image,
        reject_image: cli.reject_image,
        nodeboot,
        artifacts: cli.artifacts,
        fixtures: Path::new(env!("CARGO_MANIFEST_DIR")).join("vm/fixtures"),
        memory_mib: cli.memory_mib,
    };
    if let Err(e) = std::fs::create_dir_all(&opts.artifacts) {
        eprintln!("vm: creating {}: {e}", opts.artifacts.display());
        return ExitCode::FAILURE;
    }
    let (mut passed, mut failed) = (0, 0);
    for which in selected {
        let name = which.name();
        println!("vm: scenario {name}");
        let start = Instant::now();
        match which.scenario()(&opts) {
            Ok(()) => {
                passed += 1;
                println!(
                    "vm: scenario {name} passed in {:.1} s",
                    start.elapsed().as_secs_f64()
                );
            }
            Err(e) => {
                failed += 1;
                println!(
                    "vm: scenario {name} FAILED after {:.1} s: {e}",
                    start.elapsed().as_secs_f64()
                );
            }
        }
    }
    println!("vm: {passed} passed, {failed} failed");
    if failed == 0 && passed > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

// ---------------------------------------------------------------------------------------
// Scenarios

fn configure(opts: &Options) -> Fallible<()> {
    let mut vm = Vm::start_on(
        opts,
        "configure",
        &snapshot_drive(&opts.image),
        &[],
        None,
        VMWARE_BIOS,
    )?;
    let ready = vm.wait_ready()?;
    println!(
        "vm:   boot to banner {:.1} s, to 8443 ready {:.1} s",
        ready.banner_s, ready.https_s
    );

    // A wrong gateway first: the node applies it, reboots, finds its gateway silent for the
    // file's 10 s of grace, rolls back to the generic image and serves 8443 again.
    let upload = Instant::now();
    let out = push_wait(&vm, opts, "wrong-gateway.xml", &ready.fingerprint)?;
    println!(
        "vm:   nodeboot push --wait (wrong gateway):\n{}",
        indent(&out.text)
    );
    if out.ok
        || !out
            .text
            .contains("rolled back: gateway 10.0.2.1 did not answer")
    {
        return Err(format!(
            "push --wait did not report the rollback (exit {}):\n{}",
            if out.ok { "0" } else { "non-zero" },
            out.text
        ));
    }
    println!(
        "vm:   upload to rolled back and serving 8443 again {:.1} s",
        upload.elapsed().as_secs_f64()
    );
    let banner = vm.console.wait_for(
        r"rolled back: gateway 10\.0\.2\.1[^\r\n]*",
        Duration::from_secs(120),
        "the rollback's reason on the console banner",
    )?;
    println!("vm:   console: {}", banner.first().map_or("", |s| s.trim()));

    // The corrected file: applied, rebooted, every check passing.
    let upload = Instant::now();
    let out = push_wait(&vm, opts, "node.xml", &ready.fingerprint)?;
    println!("vm:   nodeboot push --wait:\n{}", indent(&out.text));
    if !out.ok || !out.text.contains("healthy") {
        return Err(format!("push --wait did not report healthy:\n{}", out.text));
    }
    vm.console.wait_for(
        &format!(r"{NEW_HOSTNAME} login:"),
        Duration::from_secs(300),
        "the configured node's login prompt",
    )?;
    println!(
        "vm:   upload to healthy and `{NEW_HOSTNAME} login:` {:.1} s",
        upload.elapsed().as_secs_f64()
    );

    vm.console.login("admin", CONFIGURED_PASSWORD)?;
    let report = vm.console.shell(NODE_REPORT, Duration::from_secs(60))?;
    println!("vm:   inside the node:\n{}", indent(&report));
    check_configured(&report)?;
    // What the checks cost the boot (docs/benchmarks.md): their unit's time, and whether the
    // login prompt waited for it.
    let timing = vm.console.shell(
        "systemctl is-system-running --wait >/dev/null; \
         systemd-analyze blame --no-pager | grep nodeboot; \
         systemd-analyze critical-chain serial-getty@ttyS0.service --no-pager | tail -n +3",
        Duration::from_secs(90),
    )?;
    println!("vm:   the checks' share of the boot:\n{}", indent(&timing));
    read_only_window(&vm)?;
    vm.shutdown()
}

/// `nodeboot push --wait` of `fixture` pinned to `fingerprint`: through the apply, the reboot
/// and the checks, to the node's verdict (healthy, unhealthy or rolled back).
fn push_wait(vm: &Vm, opts: &Options, fixture: &str, fingerprint: &str) -> Fallible<Ran> {
    run(vm.host(&opts.nodeboot).args([
        "push",
        &format!("127.0.0.1:{}", vm.port),
        &opts.fixtures.join(fixture).to_string_lossy(),
        "--fingerprint",
        fingerprint,
        "--timeout",
        "120",
        "--wait",
        "--wait-timeout",
        "480",
    ]))
}

/// The name the oracle scenario's Management Node JSON gives the node.
const ORACLE_HOSTNAME: &str = "vmoci01";

/// NoCloud: the configuration as `user-data` on a vfat medium labelled `CIDATA` (made by
/// mkfs.vfat and mcopy, as cloud-localds does with `--filesystem vfat`), on a virtio disk.
fn nocloud(opts: &Options) -> Fallible<()> {
    let dir = scenario_dir(opts, "nocloud")?;
    let user_data = dir.join("user-data");
    let meta_data = dir.join("meta-data");
    std::fs::copy(opts.fixtures.join("node.xml"), &user_data)
        .map_err(|e| format!("copying the configuration: {e}"))?;
    std::fs::write(&meta_data, "instance-id: vm-suite-nocloud\n").map_err(|e| e.to_string())?;
    let image = dir.join("seed.vfat");
    tool(
        Command::new("mkfs.vfat")
            .args(["-n", "CIDATA", "-C"])
            .arg(&image)
            .arg("2048"),
    )?;
    tool(
        Command::new("mcopy")
            .arg("-i")
            .arg(&image)
            .arg(&user_data)
            .arg(&meta_data)
            .arg("::"),
    )?;
    let drive = format!("file={},if=virtio,format=raw,readonly=on", image.display());
    let vm = Vm::start_with(
        opts,
        "nocloud",
        &snapshot_drive(&opts.image),
        &["-drive", &drive],
        None,
    )?;
    unattended(vm, NEW_HOSTNAME, CONFIGURED_PASSWORD, check_configured)
}

/// An OVF environment disc (what vSphere attaches with the "iso" transport): `ovf-env.xml`
/// with `nodeboot.config`, the configuration in base64, on an IDE CD-ROM.
fn ovfenv(opts: &Options) -> Fallible<()> {
    use base64::Engine as _;
    let dir = scenario_dir(opts, "ovfenv")?;
    let disc = dir.join("disc");
    std::fs::create_dir_all(&disc).map_err(|e| e.to_string())?;
    let xml = std::fs::read(opts.fixtures.join("node.xml")).map_err(|e| e.to_string())?;
    let config = base64::engine::general_purpose::STANDARD.encode(xml);
    let env = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1"
    xmlns:oe="http://schemas.dmtf.org/ovf/environment/1" oe:id="vm-suite">
  <PropertySection>
    <Property oe:key="nodeboot.config" oe:value="{config}"/>
  </PropertySection>
</Environment>
"#
    );
    std::fs::write(disc.join("ovf-env.xml"), env).map_err(|e| e.to_string())?;
    let iso = dir.join("ovf-env.iso");
    tool(
        Command::new("xorriso")
            .args(["-as", "mkisofs", "-quiet", "-o"])
            .arg(&iso)
            .args(["-V", "OVF ENV", "-J", "-r"])
            .arg(&disc),
    )?;
    let drive = format!("file={},if=ide,media=cdrom,readonly=on", iso.display());
    let vm = Vm::start_with(
        opts,
        "ovfenv",
        &snapshot_drive(&opts.image),
        &["-drive", &drive],
        None,
    )?;
    unattended(vm, NEW_HOSTNAME, CONFIGURED_PASSWORD, check_configured)
}

/// Oracle Cloud: the chassis asset tag `OracleCloud.com`, and the instance metadata
/// (IMDSv2, `Authorization: Bearer Oracle`) carrying the Management Node JSON under
/// `metadata.management_node_config`, served at 169.254.169.254:80 inside the namespace QEMU
/// runs in.
fn oracle(opts: &Options) -> Fallible<()> {
    let hash = password_hash(opts)?;
    let config = serde_json::json!({
        "hostname": ORACLE_HOSTNAME,
        "domain": "nodeboot.test",
        "ip": "10.0.2.15",
        "mask": "255.255.255.0",
        "gw": "10.0.2.2",
        "dns": "10.0.2.3",
        "ntp": "10.0.2.2",
        "user": "webadmin",
        "pass": hash,
        "admin_password": hash,
        "error_reports": false,
        "enable_analytics": false,
        "contact_email_address": "ops@nodeboot.test",
    });
    let instance = serde_json::json!({
        "id": "ocid1.instance.oc1..vmsuite",
        "metadata": { "management_node_config": config },
    })
    .to_string();
    let lab = Lab::new("oracle")?;
    let server = lab.serve_metadata(instance)?;
    let vm = Vm::start_on(
        opts,
        "oracle",
        &snapshot_drive(&opts.image),
        &["-smbios", "type=3,asset=OracleCloud.com"],
        Some(lab),
        ORACLE_EMULATED,
    )?;
    let result = unattended(vm, ORACLE_HOSTNAME, CONFIGURED_PASSWORD, |report| {
        check_node(report, ORACLE_HOSTNAME)
    });
    let served = server.requests();
    println!(
        "vm:   the fake metadata service answered: {}",
        served.join(", ")
    );
    result?;
    if !served
        .iter()
        .any(|r| r.starts_with("GET /opc/v2/instance/ 200"))
    {
        return Err(format!(
            "the node did not read /opc/v2/instance/ with the Bearer header: {served:?}"
        ));
    }
    Ok(())
}

/// The hash of [`CONFIGURED_PASSWORD`] that `fixtures/node.xml` carries.
fn password_hash(opts: &Options) -> Fallible<String> {
    let xml = std::fs::read_to_string(opts.fixtures.join("node.xml")).map_err(|e| e.to_string())?;
    let re = Regex::new(r"<password-hash>([^<]+)</password-hash>").map_err(|e| e.to_string())?;
    re.captures(&xml)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_owned())
        .ok_or_else(|| "fixtures/node.xml has no <password-hash>".into())
}

/// Waits for a node that configures itself: from power-on to `<hostname> login:` with
/// nobody typing (the unconfigured banner may never show: the configuration is applied
/// before the agent starts), then logs in and checks the node from inside.
fn unattended(
    mut vm: Vm,
    hostname: &str,
    password: &str,
    check: impl Fn(&str) -> Fallible<()>,
) -> Fallible<()> {
    vm.console.wait_for(
        &format!(r"{hostname} login:"),
        Duration::from_secs(420),
        "the configured node's login prompt (unattended)",
    )?;
    println!(
        "vm:   power-on to `{hostname} login:`, unattended: {:.1} s",
        vm.started.elapsed().as_secs_f64()
    );
    // nodeboot-acquire prints to the console how long the sources took.
    let log = std::fs::read_to_string(&vm.serial_log).unwrap_or_default();
    match log.lines().find(|l| l.contains("configuration from ")) {
        Some(line) => println!("vm:   {}", line.trim()),
        None => return Err("nodeboot-acquire's line is not on the console".into()),
    }
    vm.console.login("admin", password)?;
    let report = vm.console.shell(NODE_REPORT, Duration::from_secs(60))?;
    println!("vm:   inside the node:\n{}", indent(&report));
    check(&report)?;
    read_only_window(&vm)?;
    vm.shutdown()
}

/// What every scenario's configured node reports of itself (`NODE_REPORT`): its hostname, and
/// the values all the scenarios' files, JSON and answers share (10.0.2.15/24, gateway, DNS,
/// search domain, NTP), with 8443 serving the read-only status of the first boot.
fn check_node(report: &str, hostname: &str) -> Fallible<()> {
    check_all(
        report,
        &[
            (format!("^{hostname}\\r?$"), "the hostname"),
            (
                r"eth0\s+inet 10\.0\.2\.15/24".into(),
                "10.0.2.15/24 on eth0",
            ),
            (
                r"^default via 10\.0\.2\.2 dev eth0".into(),
                "the default route via 10.0.2.2",
            ),
            (r"^nameserver 10\.0\.2\.3".into(), "the DNS server"),
            (r"^search nodeboot\.test".into(), "the search domain"),
            (
                r"^server 10\.0\.2\.2\b".into(),
                "the NTP server in chrony.conf",
            ),
            // The first boot after the apply serves its status read-only (the window).
            (
                r"agent=active".into(),
                "the agent serving the read-only status",
            ),
            (r"listeners=1".into(), "8443 listening (read-only)"),
        ],
    )
}

/// A fresh directory for a scenario's media under the artifacts.
fn scenario_dir(opts: &Options, name: &str) -> Fallible<PathBuf> {
    let dir = opts.artifacts.join(format!("{name}.media"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Runs a tool that must succeed (the media builders).
fn tool(cmd: &mut Command) -> Fallible<()> {
    let out = run(cmd)?;
    if out.ok {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed (run tests/vm/setup):\n{}",
            out.text
        ))
    }
}

fn snapshot_drive(image: &Path) -> String {
    format!("file={},format=raw,if=virtio,snapshot=on", image.display())
}

/// The network a VM runs in: a namespace of the suite's own with only its loopback, where
/// QEMU's user network runs unrestricted (nothing can leave the namespace) and where the
/// services the node's checks reach wait (docs/apply.md, "After the reboot"): DNS on
/// 127.0.0.1:53 (the guest's 10.0.2.3 forwards there: the namespace's resolv.conf names it),
/// NTP on 127.0.0.1:123 and the management node's TCP 443 (the guest's 10.0.2.2 is the
/// namespace's loopback). Host-side tools that talk to the guest run inside it too
/// ([`Vm::host`]).
struct Lab {
    ns: Netns,
    responders: Option<Responders>,
    /// `/etc/netns/<name>`: what `ip netns exec` mounts over `/etc` (resolv.conf).
    etc: PathBuf,
}

/// The names the lab's DNS server knows: every node the suite configures, at its address.
const LAB_ZONE: [&str; 3] = [
    "vmnode01.nodeboot.test",
    "vmmgr01.nodeboot.test",
    "vmoci01.nodeboot.test",
];

impl Lab {
    fn new(scenario: &str) -> Fallible<Lab> {
        let name = format!("nodeboot-vm-{scenario}");
        let etc = PathBuf::from("/etc/netns").join(&name);
        std::fs::create_dir_all(&etc).map_err(|e| format!("creating {}: {e}", etc.display()))?;
        std::fs::write(etc.join("resolv.conf"), "nameserver 127.0.0.1\n")
            .map_err(|e| format!("writing {}/resolv.conf: {e}", etc.display()))?;
        let ns = Netns::new(&name)?;
        let local = |port| std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let zone = LAB_ZONE
            .iter()
            .map(|n| ((*n).to_owned(), std::net::Ipv4Addr::new(10, 0, 2, 15)))
            .collect();
        let responders = ns.serve_checks(local(53), local(123), local(443), zone)?;
        Ok(Lab {
            ns,
            responders: Some(responders),
            etc,
        })
    }

    /// Serves Oracle's IMDSv2 instance document at 169.254.169.254:80 in the namespace.
    /// Anything else, or a request without the Bearer header, is 404.
    fn serve_metadata(&self, instance: String) -> Fallible<FakeMetadata> {
        self.ns
            .ip(&["addr", "add", "169.254.169.254/32", "dev", "lo"])?;
        let addr = std::net::SocketAddr::from(([169, 254, 169, 254], 80));
        let listener = self
            .ns
            .spawn(move || {
                std::net::TcpListener::bind(addr).map_err(|e| format!("binding {addr}: {e}"))
            })
            .join()
            .map_err(|_| "the metadata service's thread panicked".to_owned())??;
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let line = answer_metadata(stream, &instance);
                if let Ok(mut log) = seen.lock() {
                    log.push(line);
                }
            }
        });
        Ok(FakeMetadata { log })
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(r) = self.responders.take() {
            println!("vm:   the lab's services answered: {}", r.summary());
        }
        let _ = std::fs::remove_dir_all(&self.etc);
    }
}

/// What the fake metadata service was asked: "METHOD PATH STATUS" per request.
struct FakeMetadata {
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FakeMetadata {
    fn requests(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// Answers one HTTP/1.1 request (head only, at most 16 KiB) and closes the connection.
fn answer_metadata(mut stream: std::net::TcpStream, instance: &str) -> String {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut lines = head.lines();
    let request = lines.next().unwrap_or_default();
    let mut parts = request.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("?"), parts.next().unwrap_or("?"));
    let bearer = lines.any(|l| l.eq_ignore_ascii_case("authorization: bearer oracle"));
    let (status, body) = if method == "GET" && path == "/opc/v2/instance/" && bearer {
        ("200 OK", instance)
    } else {
        ("404 Not Found", "")
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    format!("{method} {path} {}", &status[..3])
}

fn reject(opts: &Options) -> Fallible<()> {
    let image = opts.reject_image.as_deref().unwrap_or(&opts.image);
    let mut vm = Vm::start_on(
        opts,
        "reject",
        &snapshot_drive(image),
        &[],
        None,
        GOOGLE_UEFI,
    )?;
    let ready = vm.wait_ready()?;
    println!(
        "vm:   boot to banner {:.1} s, to 8443 ready {:.1} s",
        ready.banner_s, ready.https_s
    );
    let pin = verified_pin(&vm, &ready.fingerprint)?;
    let out = run(vm.host("curl").args([
        "-sS",
        "--max-time",
        "60",
        "--cacert",
        &pin.cert_file.to_string_lossy(),
        "--pinnedpubkey",
        &pin.spki,
        "--resolve",
        &format!("{}:{}:127.0.0.1", pin.name, vm.port),
        "-H",
        "Content-Type: text/xml",
        "--data-binary",
        &format!("@{}", opts.fixtures.join("bad.xml").display()),
        "-w",
        "\nhttp_code=%{http_code}\n",
        &format!("https://{}:{}/configuration/bootstrap", pin.name, vm.port),
    ]))?;
    println!("vm:   bad configuration answered:\n{}", indent(&out.text));
    if !Regex::new(r"http_code=4(00|22)")
        .map_err(|e| e.to_string())?
        .is_match(&out.text)
    {
        return Err(format!(
            "the bad configuration was not rejected with 400/422:\n{}",
            out.text
        ));
    }
    for needle in ["bad_host!", "hostname", "netmask"] {
        if !out.text.contains(needle) {
            return Err(format!(
                "the rejection does not mention {needle:?}:\n{}",
                out.text
            ));
        }
    }
    let status = run(vm.host(&opts.nodeboot).args([
        "status",
        &format!("127.0.0.1:{}", vm.port),
        "--fingerprint",
        &ready.fingerprint,
        "--json",
    ]))?;
    println!(
        "vm:   status after the rejection: {}",
        first_lines(&status.text, 3)
    );
    if !status.ok || !status.text.contains("unconfigured") {
        return Err(format!(
            "the node is not unconfigured and serving after the rejection:\n{}",
            status.text
        ));
    }
    // The seed's first console login: admin, forced password change, then the wizard hook
    // (sudo asks for the new password). Interrupt the wizard and read the boot figures once
    // the boot has finished (jobs such as the first boot's host keys may still run at login).
    vm.console.first_login("admin", FIRST_LOGIN_PASSWORD)?;
    let analyze = vm.console.shell(
        "systemctl is-system-running --wait >/dev/null; systemd-analyze time; \
         systemd-analyze blame --no-pager | head -n 12; \
         systemd-analyze blame --no-pager | grep nodeboot",
        Duration::from_secs(90),
    )?;
    println!(
        "vm:   systemd-analyze in the unconfigured node:\n{}",
        indent(&analyze)
    );
    if !analyze.contains("nodeboot-agent.service") {
        return Err("systemd-analyze blame does not list nodeboot-agent.service".into());
    }
    if let Some(share) = agent_share(&analyze) {
        println!("vm:   {share}");
    }
    // The waiting agent's memory on the node's own kernel, after the page, the status and a
    // refused upload (docs/benchmarks.md, "Agent size budget").
    let memory = vm.console.shell(
        "grep -E '^(VmRSS|RssAnon|RssFile|RssShmem):' \
         /proc/$(systemctl show -p MainPID --value nodeboot-agent.service)/status",
        Duration::from_secs(30),
    )?;
    if !memory.contains("VmRSS:") {
        return Err(format!("no VmRSS for the waiting agent:\n{memory}"));
    }
    println!(
        "vm:   the waiting agent's memory on the node: {}",
        memory.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    vm.shutdown()
}

/// The seed's Management Node flow over the serial console, driven by `nodeboot bootstrap`.
fn management(opts: &Options) -> Fallible<()> {
    let mut vm = Vm::boot(opts, "management")?;
    vm.console.wait_for(
        r"(?m)^nodeboot login:",
        Duration::from_secs(300),
        "the unconfigured node's login prompt",
    )?;
    println!(
        "vm:   boot to `nodeboot login:` {:.1} s",
        vm.started.elapsed().as_secs_f64()
    );
    // The passwords reach bootstrap through a 0600 file; the answers file holds hashes only.
    let secrets = vm.dir.join("mgmt.secrets");
    write_private(
        &secrets,
        &format!("os_password={MGMT_OS_PASSWORD}\nweb_password={MGMT_WEB_PASSWORD}\n"),
    )?;
    let transcript = opts.artifacts.join("management.bootstrap.log");
    let _ = std::fs::remove_file(&transcript);
    let answers = opts.fixtures.join("mgmt.xml");
    // QEMU's serial socket takes one client at a time: the suite lets go of it for bootstrap
    // and connects again afterwards.
    let (out, dialog_s) = vm.handover(|socket| {
        run_timed(
            Command::new(&opts.nodeboot)
                .arg("bootstrap")
                .arg("--console")
                .arg(format!("unix:{}", socket.display()))
                .arg("--answers")
                .arg(&answers)
                .arg("--secrets-file")
                .arg(&secrets)
                .arg("--transcript")
                .arg(&transcript),
        )
    })?;
    let out = out?;
    let _ = std::fs::remove_file(&secrets);
    // Everything the suite prints in this scenario is checked first: no secret in it.
    no_secret(&out.text, "nodeboot bootstrap's output")?;
    let mut timed: Vec<String> = out
        .lines
        .iter()
        .map(|(t, line)| format!("{t:>6.1} s  {line}"))
        .collect();
    timed.extend(out.stdout.lines().map(str::to_string));
    println!("vm:   nodeboot bootstrap:\n{}", indent(&timed.join("\n")));
    if !out.ok {
        return Err("nodeboot bootstrap failed (see above and the transcript)".into());
    }
    // Bootstrap prints "[n/N] step" when the step's prompt has come and its answer is sent:
    // the first is the login prompt (shown after the 3 s nudge: the prompt was on the console
    // before bootstrap connected), "confirm" is the wizard's last answer.
    let at = |step: &str| {
        out.lines
            .iter()
            .find(|(_, line)| line.ends_with(&format!("] {step}")))
            .map_or(f64::NAN, |(t, _)| *t)
    };
    let (login, confirm) = (at("login"), at("confirm"));
    println!(
        "vm:   bootstrap start to `{MGMT_HOSTNAME} login:` {dialog_s:.1} s: login prompt \
         {login:.1} s (nudge), login to the wizard's last answer {:.1} s, apply and reboot \
         {:.1} s",
        confirm - login,
        dialog_s - confirm
    );

    vm.console.send_line("")?;
    vm.console.wait_for(
        &format!(r"(?m)^{MGMT_HOSTNAME} login:"),
        Duration::from_secs(60),
        "the configured node's login prompt",
    )?;
    vm.console.login("admin", MGMT_OS_PASSWORD)?;
    let report = vm.console.shell(NODE_REPORT, Duration::from_secs(60))?;
    no_secret(&report, "the node's report")?;
    println!("vm:   inside the node:\n{}", indent(&report));
    check_node(&report, MGMT_HOSTNAME)?;
    // /etc/nodeboot/node.json is root's (0600); admin's one sudo grant, the wizard, shows
    // it on a configured node. sudo asks for the password set by bootstrap.
    let identity = vm.console.sudo_shell(
        "sudo -k; sudo /usr/bin/nodeboot-wizard",
        MGMT_OS_PASSWORD,
        Duration::from_secs(60),
    )?;
    no_secret(&identity, "the wizard's output")?;
    println!("vm:   the node's identity:\n{}", indent(&identity));
    check_all(
        &identity,
        &[
            (
                "This node is already configured".into(),
                "the wizard seeing a configured node",
            ),
            (r"Role\s+management$".into(), "role management"),
            (
                format!(r"Host name\s+{MGMT_HOSTNAME}\.nodeboot\.test$"),
                "the host name",
            ),
            (r"IP address\s+10\.0\.2\.15$".into(), "the address"),
            (
                r"Web administration username\s+webadmin$".into(),
                "the web administration user",
            ),
            (
                r"Enable incident reporting\s+yes$".into(),
                "incident reporting on",
            ),
            (
                r"Send deployment and usage statistics\s+no$".into(),
                "usage statistics off",
            ),
        ],
    )?;
    // From outside: 8443 serves the checks read-only and refuses uploads.
    read_only_window(&vm)?;
    vm.shutdown()?;
    // The transcripts are artifacts: no secret in them, in either direction.
    let mode = std::fs::metadata(&transcript)
        .map_err(|e| format!("reading {}: {e}", transcript.display()))?
        .permissions();
    if std::os::unix::fs::PermissionsExt::mode(&mode) & 0o077 != 0 {
        return Err(format!("{} is readable by others", transcript.display()));
    }
    let bootstrap_log = std::fs::read_to_string(&transcript).map_err(|e| e.to_string())?;
    if !bootstrap_log.contains("[>***]") || !bootstrap_log.contains("vmmgr01 login:") {
        return Err(format!(
            "{} does not hold the masked dialog",
            transcript.display()
        ));
    }
    for file in [&transcript, &opts.artifacts.join("management.serial.log")] {
        let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
        no_secret(
            &String::from_utf8_lossy(&bytes),
            &file.display().to_string(),
        )?;
    }
    println!(
        "vm:   transcript (secrets masked): {}",
        transcript.display()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Power loss

/// When the power is cut, counted from the moment `nodeboot push` has the node's 202 (the
/// agent starts applying once that reply has gone out, and reboots 5 s after the apply).
#[derive(Clone, Copy)]
enum KillAt {
    /// This long after the 202.
    Delay(Duration),
    /// As soon as the guest has asked its disk for this many flushes since the 202 (QEMU's
    /// `info blockstats`, polled): the apply's barriers (syncfs) are what flushes an otherwise
    /// idle node's disk, so the first ones are the commit barrier at work.
    Flushes(u64),
}

#[derive(Clone, Copy)]
struct KillPoint {
    name: &'static str,
    at: KillAt,
}

const KILL_POINTS: [KillPoint; 5] = [
    KillPoint {
        name: "202 + 0 ms",
        at: KillAt::Delay(Duration::from_millis(0)),
    },
    KillPoint {
        name: "1st disk flush",
        at: KillAt::Flushes(1),
    },
    KillPoint {
        name: "3rd disk flush",
        at: KillAt::Flushes(3),
    },
    KillPoint {
        name: "202 + 1 s",
        at: KillAt::Delay(Duration::from_secs(1)),
    },
    // The agent reboots 5 s after the apply: the shutdown for the reboot is under way.
    KillPoint {
        name: "202 + 6 s (rebooting)",
        at: KillAt::Delay(Duration::from_secs(6)),
    },
];

/// The files a configuration writes or removes (render.rs and state.rs), plus the journal:
/// after a power cut each must be as the image had it (unconfigured) or as the configuration
/// makes it (configured), all of them the same way.
const APPLY_TARGETS: [&str; 18] = [
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/chrony/chrony.conf",
    "/etc/shadow",
    "/etc/passwd",
    "/etc/systemd/network/10-nodeboot-eth0.network",
    "/etc/systemd/network/10-nodeboot-eth1.network",
    "/etc/ssh/sshd_config.d/50-nodeboot.conf",
    "/etc/ssh/sshd_not_to_be_run",
    "/etc/nodeboot/node.json",
    "/etc/nodeboot/tls/node.crt",
    "/etc/nodeboot/tls/node.key",
    "/home/admin/.ssh/authorized_keys",
    "/var/lib/nodeboot/applied.xml",
    "/var/lib/nodeboot/original.json",
    "/var/lib/nodeboot/configured.json",
    "/var/lib/nodeboot/journal.json",
];
const APPLY_RECORD: &str = "/var/lib/nodeboot/configured.json";

/// Each target's bytes (None: absent).
type Files = std::collections::BTreeMap<&'static str, Option<Vec<u8>>>;

/// One kill point's result, for the summary table.
struct PowerLoss {
    point: &'static str,
    outcome: &'static str,
    recovery: String,
    seconds: f64,
}

/// Boots the node once to its banner on a writable qcow2 overlay of the image and saves the
/// machine there (`savevm`); then, for each kill point, starts a copy of that overlay from the
/// saved state (`-loadvm`), pushes the configuration, cuts the power (SIGKILL to QEMU) at the
/// kill point and boots the same disk again. The node must come back either unconfigured and
/// serving 8443 with the image's files, or configured with every file of the configuration,
/// never a mix; after a clean power-off `e2fsck -fn` of the root file system must be clean.
fn powerloss(opts: &Options) -> Fallible<()> {
    let work = opts.artifacts.join("powerloss.disks");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("creating {}: {e}", work.display()))?;
    let work = std::fs::canonicalize(&work).map_err(|e| e.to_string())?;
    let image =
        std::fs::canonicalize(&opts.image).map_err(|e| format!("{}: {e}", opts.image.display()))?;
    let pristine = {
        let offset = root_partition_offset(&image)?;
        let mount = Mounted::read_only(&image, offset, &work.join("pristine.mnt"))?;
        read_targets(&mount.dir)?
    };
    let xml = std::fs::read(opts.fixtures.join("node.xml")).map_err(|e| e.to_string())?;

    // One boot to the banner, saved: every kill point starts from here.
    let saved = work.join("saved.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-F",
        "raw",
        "-b",
        &image.to_string_lossy(),
        &saved.to_string_lossy(),
    ])?;
    let fingerprint = {
        let mut vm = Vm::start(
            opts,
            "powerloss-first-boot",
            &format!("file={},format=qcow2,if=virtio", saved.display()),
            &[],
        )?;
        let ready = vm.wait_ready()?;
        let t = Instant::now();
        let out = vm.monitor("savevm ready", Duration::from_secs(300))?;
        if !out.trim().is_empty() {
            return Err(format!("savevm: {out}"));
        }
        println!(
            "vm:   boot to banner {:.1} s, to 8443 ready {:.1} s; machine saved in {:.1} s",
            ready.banner_s,
            ready.https_s,
            t.elapsed().as_secs_f64()
        );
        let _ = vm.monitor("quit", Duration::from_secs(60));
        ready.fingerprint
    };

    let mut rows = Vec::new();
    let mut failures = Vec::new();
    let mut reference: Option<Files> = None;
    for (i, point) in KILL_POINTS.iter().enumerate() {
        let start = Instant::now();
        let result = kill_and_reboot(
            opts,
            &work,
            &saved,
            i,
            *point,
            &fingerprint,
            &xml,
            &pristine,
            &mut reference,
        );
        let seconds = start.elapsed().as_secs_f64();
        match result {
            Ok((outcome, recovery)) => {
                println!(
                    "vm:   kill at {}: {outcome} ({recovery}), fsck clean, {seconds:.1} s",
                    point.name
                );
                rows.push(PowerLoss {
                    point: point.name,
                    outcome,
                    recovery,
                    seconds,
                });
            }
            Err(e) => {
                println!("vm:   kill at {}: FAILED: {e}", point.name);
                failures.push(format!("{}: {e}", point.name));
                rows.push(PowerLoss {
                    point: point.name,
                    outcome: "FAILED",
                    recovery: String::new(),
                    seconds,
                });
            }
        }
    }
    println!("vm:   kill point             | after the next boot | recovery at start | time");
    for r in &rows {
        println!(
            "vm:   {:<22} | {:<19} | {:<17} | {:.0} s",
            r.point, r.outcome, r.recovery, r.seconds
        );
    }
    if failures.is_empty() {
        let _ = std::fs::remove_dir_all(&work);
        Ok(())
    } else {
        // The failed kill points' disks stay for a look (qemu-img convert, e2fsck, mount).
        Err(format!(
            "{} (disks kept in {})",
            failures.join("; "),
            work.display()
        ))
    }
}

/// One kill point: load the saved machine, push, kill, boot again, check; returns the outcome
/// ("unconfigured" or "configured") and what the agent's recovery logged at the next start.
#[allow(clippy::too_many_arguments)]
fn kill_and_reboot(
    opts: &Options,
    work: &Path,
    saved: &Path,
    index: usize,
    point: KillPoint,
    fingerprint: &str,
    xml: &[u8],
    pristine: &Files,
    reference: &mut Option<Files>,
) -> Fallible<(&'static str, String)> {
    let disk = work.join(format!("kill{index}.qcow2"));
    std::fs::copy(saved, &disk).map_err(|e| format!("copying {}: {e}", saved.display()))?;
    let drive = format!("file={},format=qcow2,if=virtio", disk.display());

    // Power on from the saved banner, push, cut the power.
    let mut vm = Vm::start(
        opts,
        &format!("powerloss-{index}-killed"),
        &drive,
        &["-loadvm", "ready"],
    )?;
    vm.wait_https()?;
    let before = vm.disk_stats()?;
    let out = run(vm.host(&opts.nodeboot).args([
        "push",
        &format!("127.0.0.1:{}", vm.port),
        &opts.fixtures.join("node.xml").to_string_lossy(),
        "--fingerprint",
        fingerprint,
        "--timeout",
        "120",
    ]))?;
    let accepted = Instant::now();
    if !out.ok {
        return Err(format!("nodeboot push failed:\n{}", out.text));
    }
    let at_kill = match point.at {
        KillAt::Delay(delay) => {
            std::thread::sleep(delay.saturating_sub(accepted.elapsed()));
            None
        }
        KillAt::Flushes(n) => {
            let deadline = accepted + Duration::from_secs(120);
            loop {
                let now = vm.disk_stats()?;
                if now.flushes >= before.flushes + n || Instant::now() > deadline {
                    break Some(now);
                }
            }
        }
    };
    vm.kill()?;
    let killed_ms = accepted.elapsed().as_secs_f64() * 1000.0;
    let flushes = at_kill.map_or(String::new(), |s| {
        format!(
            ", {} flushes and {} writes after the 202",
            s.flushes - before.flushes,
            s.writes - before.writes
        )
    });
    drop(vm);
    println!(
        "vm:   kill at {}: SIGKILL {killed_ms:.0} ms after the 202{flushes}",
        point.name
    );

    // The same disk again: unconfigured and serving, or configured. Nothing in between.
    let mut vm = Vm::start(opts, &format!("powerloss-{index}-after"), &drive, &[])?;
    let (which, caps) = vm.console.wait_for_any(
        &[
            // The unconfigured banner; a configured node's first boot shows one too (its
            // checks, read-only), which is not this.
            &format!(
                r"(?s)waiting for its configuration.*?Certificate fingerprint:\s+({FINGERPRINT_RE})"
            ),
            r"(?m)^(\S+) login:",
        ],
        Duration::from_secs(300),
        "the banner (unconfigured) or a login prompt (configured)",
    )?;
    let boot_s = vm.started.elapsed().as_secs_f64();
    let outcome = if which == 0 {
        let seen = caps.get(1).cloned().unwrap_or_default();
        vm.wait_https()?;
        let status = run(vm.host(&opts.nodeboot).args([
            "status",
            &format!("127.0.0.1:{}", vm.port),
            "--fingerprint",
            &seen,
            "--json",
        ]))?;
        if !status.ok || !status.text.contains("unconfigured") {
            return Err(format!(
                "the banner came back but the node is not unconfigured:\n{}",
                status.text
            ));
        }
        vm.console.wait_for(
            r"(?m)^nodeboot login:",
            Duration::from_secs(120),
            "the unconfigured node's login prompt",
        )?;
        "unconfigured"
    } else {
        let host = caps.get(1).cloned().unwrap_or_default();
        if host != NEW_HOSTNAME {
            return Err(format!(
                "`{host} login:` without the agent's banner: neither unconfigured and serving \
                 nor configured"
            ));
        }
        vm.console.login("admin", CONFIGURED_PASSWORD)?;
        let report = vm.console.shell(NODE_REPORT, Duration::from_secs(60))?;
        check_configured(&report).map_err(|e| format!("{e}; the node reported:\n{report}"))?;
        read_only_window(&vm)?;
        "configured"
    };
    println!(
        "vm:   kill at {}: next boot {outcome}, prompt after {boot_s:.1} s",
        point.name
    );

    // A clean power-off (ACPI power button), then the disk from outside.
    vm.monitor("system_powerdown", Duration::from_secs(30))?;
    vm.wait_exit(Duration::from_secs(180), "the ACPI power button")?;
    drop(vm);
    let raw = work.join(format!("kill{index}.raw"));
    qemu_img(&[
        "convert",
        "-O",
        "raw",
        &disk.to_string_lossy(),
        &raw.to_string_lossy(),
    ])?;
    let _ = std::fs::remove_file(&disk);
    let offset = root_partition_offset(&raw)?;
    let fsck = run(Command::new("e2fsck")
        .arg("-fn")
        .arg(format!("{}?offset={offset}", raw.display())))?;
    if !fsck.ok {
        return Err(format!(
            "e2fsck -fn of the root file system is not clean:\n{}",
            fsck.text
        ));
    }
    let (files, leftovers, recovery) = {
        let mount = Mounted::read_only(&raw, offset, &work.join(format!("kill{index}.mnt")))?;
        (
            read_targets(&mount.dir)?,
            apply_leftovers(&mount.dir),
            agent_recovery_log(&mount.dir),
        )
    };
    let _ = std::fs::remove_file(&raw);
    if !leftovers.is_empty() {
        return Err(format!(
            "staged, backup or journal files left behind: {}",
            leftovers.join(", ")
        ));
    }
    match outcome {
        "unconfigured" => {
            let changed: Vec<&str> = APPLY_TARGETS
                .iter()
                .copied()
                .filter(|t| files.get(t) != pristine.get(t))
                .collect();
            if !changed.is_empty() {
                return Err(format!(
                    "unconfigured, but not as the image had them (a mix): {}",
                    changed.join(", ")
                ));
            }
        }
        _ => {
            let applied = files
                .get("/var/lib/nodeboot/applied.xml")
                .cloned()
                .flatten();
            if applied.as_deref() != Some(xml) {
                return Err("configured, but applied.xml is not the pushed file".into());
            }
            let record = files
                .get(APPLY_RECORD)
                .cloned()
                .flatten()
                .unwrap_or_default();
            if !String::from_utf8_lossy(&record).contains(&nodeboot_config::digest(xml)) {
                return Err("configured, but the apply record names another file".into());
            }
            // Every configured outcome has the same files (the record holds the apply's time).
            match reference {
                None => *reference = Some(files),
                Some(first) => {
                    let differ: Vec<&str> = APPLY_TARGETS
                        .iter()
                        .copied()
                        .filter(|t| *t != APPLY_RECORD && files.get(t) != first.get(t))
                        .collect();
                    if !differ.is_empty() {
                        return Err(format!(
                            "configured, but these differ from an earlier configured outcome (a \
                             mix): {}",
                            differ.join(", ")
                        ));
                    }
                }
            }
        }
    }
    Ok((outcome, recovery))
}

/// Runs qemu-img; its errors are the error.
fn qemu_img(args: &[&str]) -> Fallible<()> {
    let out = run(Command::new("qemu-img").args(args))?;
    if out.ok {
        Ok(())
    } else {
        Err(format!("qemu-img {}: {}", args.join(" "), out.text.trim()))
    }
}

/// The byte offset of the root file system: the first Linux (type 83) partition of the raw
/// disk, as sfdisk reads the partition table.
fn root_partition_offset(raw: &Path) -> Fallible<u64> {
    let dump = run(Command::new("sfdisk").arg("--dump").arg(raw))?;
    if !dump.ok {
        return Err(format!("sfdisk --dump {}: {}", raw.display(), dump.text));
    }
    let sector: u64 = Regex::new(r"(?m)^sector-size:\s*(\d+)")
        .map_err(|e| e.to_string())?
        .captures(&dump.text)
        .and_then(|c| c[1].parse().ok())
        .unwrap_or(512);
    // MBR type 83, or GPT's Linux file system type (the image's root, partition 1).
    Regex::new(r"(?m)start=\s*(\d+),.*type=(83|0FC63DAF-8483-4772-8E79-3D69D8477DE4)")
        .map_err(|e| e.to_string())?
        .captures(&dump.text)
        .and_then(|c| c[1].parse::<u64>().ok())
        .map(|start| start * sector)
        .ok_or_else(|| format!("no Linux partition in {}:\n{}", raw.display(), dump.text))
}

/// A read-only mount of a disk's root file system (loop device at an offset; the ext4 journal
/// is not replayed), unmounted on drop.
struct Mounted {
    dir: PathBuf,
}

impl Mounted {
    fn read_only(raw: &Path, offset: u64, dir: &Path) -> Fallible<Mounted> {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let out = run(Command::new("mount")
            .args(["-t", "ext4", "-o"])
            .arg(format!("ro,noload,loop,offset={offset}"))
            .arg(raw)
            .arg(dir))?;
        if !out.ok {
            return Err(format!("mounting {}: {}", raw.display(), out.text.trim()));
        }
        Ok(Mounted {
            dir: dir.to_owned(),
        })
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn read_targets(root: &Path) -> Fallible<Files> {
    let mut files = Files::new();
    for t in APPLY_TARGETS {
        let path = root.join(t.trim_start_matches('/'));
        let bytes = match std::fs::read(&path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        files.insert(t, bytes);
    }
    Ok(files)
}

/// Staged (`.NAME.nodeboot-new`) and backup (`.NAME.nodeboot-old`) files and the journal
/// anywhere an apply writes: none may outlive the next start of the agent.
fn apply_leftovers(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs: Vec<PathBuf> = ["etc", "home/admin", "var/lib/nodeboot"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.contains(".nodeboot-new")
                || name.contains(".nodeboot-old")
                || name == "journal.json"
                || name == ".journal.json.tmp"
            {
                found.push(format!(
                    "/{}",
                    path.strip_prefix(root).unwrap_or(&path).display()
                ));
            }
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(path);
            }
        }
    }
    found.sort();
    found
}

/// What the node logged about an interrupted apply, from the disk's persistent journal: the
/// boot-time recovery runs in the first of nodeboot-acquire, nodeboot-check and the agent to
/// start (`apply::recover_at_boot`), so all three units are read.
fn agent_recovery_log(root: &Path) -> String {
    let out = run(Command::new("journalctl")
        .arg("--directory")
        .arg(root.join("var/log/journal"))
        .args(["--no-pager", "-o", "cat"])
        .args(["-u", "nodeboot-acquire.service"])
        .args(["-u", "nodeboot-check.service"])
        .args(["-u", "nodeboot-agent.service"]));
    let text = out.map(|o| o.text).unwrap_or_default();
    if text.contains("rolled back an interrupted apply") {
        "rolled back".into()
    } else if text.contains("completed an interrupted apply") {
        "rolled forward".into()
    } else if text.contains("listening on") {
        "none needed".into()
    } else {
        // A configured node's agent does not start again; its last words may be lost.
        "agent not started".into()
    }
}

/// What the configure scenario's node reports of itself (`NODE_REPORT`) once configured from
/// `fixtures/node.xml`: hostname, address, routes, resolver, time servers, the agent stopped.
fn check_configured(report: &str) -> Fallible<()> {
    check_node(report, NEW_HOSTNAME)?;
    check_all(
        report,
        &[(
            r"^192\.168\.77\.0/24 via 10\.0\.2\.2 dev eth0".into(),
            "the configured static route",
        )],
    )
}

/// Fails when one of the management scenario's passwords appears in `text`.
fn no_secret(text: &str, what: &str) -> Fallible<()> {
    if [MGMT_OS_PASSWORD, MGMT_WEB_PASSWORD]
        .iter()
        .any(|s| text.contains(s))
    {
        return Err(format!("a password appears in {what}"));
    }
    Ok(())
}

/// Each `(pattern, what)` must match `text` (multi-line: `$` is a line end).
fn check_all(text: &str, expect: &[(String, &str)]) -> Fallible<()> {
    for (pattern, what) in expect {
        let re = Regex::new(&format!("(?m){pattern}")).map_err(|e| e.to_string())?;
        if !re.is_match(text) {
            return Err(format!("inside the node: expected {what} (/{pattern}/)"));
        }
    }
    Ok(())
}

/// Writes a file only its owner can read (created 0600, never widened).
fn write_private(path: &Path, content: &str) -> Fallible<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    f.write_all(content.as_bytes())
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------
// The virtual machine

struct Vm {
    child: Child,
    /// The network namespace QEMU runs in (dropped after QEMU: fields drop in order).
    lab: Lab,
    port: u16,
    console: Console,
    started: Instant,
    dir: PathBuf,
    socket: PathBuf,
    /// QEMU's human monitor (HMP) socket.
    monitor: PathBuf,
    /// The raw serial log (`<scenario>.serial.log`), appended to after a handover.
    serial_log: PathBuf,
}

/// The virtual hardware a scenario boots on: the firmware, the disk's bus, the NIC's model.
#[derive(Clone, Copy)]
struct Hardware {
    firmware: Firmware,
    disk: DiskBus,
    nic: &'static str,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Firmware {
    SeaBios,
    /// Debian's `ovmf`, with a copy of its variable store per boot.
    Ovmf,
}

#[derive(Clone, Copy)]
enum DiskBus {
    Virtio,
    /// A SCSI controller of this QEMU device name (`pvscsi`: VMware's paravirtual SCSI;
    /// `virtio-scsi-pci`) with the disk on it.
    Scsi(&'static str),
    /// The PIIX IDE controller of QEMU's `pc` machine.
    Ide,
}

/// KVM's usual devices under SeaBIOS (most scenarios).
const VIRTIO: Hardware = Hardware {
    firmware: Firmware::SeaBios,
    disk: DiskBus::Virtio,
    nic: "virtio-net-pci",
};
/// A VMware guest with BIOS firmware (what an OVA without a firmware setting deploys as) and
/// its paravirtual devices (configure). Debian's OVMF has no PVSCSI driver.
const VMWARE_BIOS: Hardware = Hardware {
    firmware: Firmware::SeaBios,
    disk: DiskBus::Scsi("pvscsi"),
    nic: "vmxnet3",
};
/// UEFI with the disk on virtio-scsi, as Google's machines (reject).
const GOOGLE_UEFI: Hardware = Hardware {
    firmware: Firmware::Ovmf,
    disk: DiskBus::Scsi("virtio-scsi-pci"),
    nic: "virtio-net-pci",
};
/// Oracle Cloud's emulated launch mode: BIOS, an IDE-class disk, an e1000 NIC (oracle).
const ORACLE_EMULATED: Hardware = Hardware {
    firmware: Firmware::SeaBios,
    disk: DiskBus::Ide,
    nic: "e1000",
};

const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS.fd";

impl Hardware {
    fn describe(&self) -> String {
        let firmware = match self.firmware {
            Firmware::SeaBios => "SeaBIOS",
            Firmware::Ovmf => "OVMF",
        };
        let disk = match self.disk {
            DiskBus::Virtio => "virtio",
            DiskBus::Scsi(controller) => controller,
            DiskBus::Ide => "IDE",
        };
        format!("{firmware}, {disk} disk, {} NIC", self.nic)
    }

    /// QEMU's arguments for the firmware (OVMF's variable store copied into `dir`), the disk
    /// `drive` (a `-drive` value written for virtio) and the NIC on netdev `n0`.
    fn args(&self, drive: &str, dir: &Path) -> Fallible<Vec<String>> {
        let mut args = Vec::new();
        if self.firmware == Firmware::Ovmf {
            let vars = dir.join("OVMF_VARS.fd");
            std::fs::copy(OVMF_VARS, &vars)
                .map_err(|e| format!("copying {OVMF_VARS}: {e} (run tests/vm/setup)"))?;
            args.push("-drive".to_string());
            args.push(format!(
                "if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"
            ));
            args.push("-drive".to_string());
            args.push(format!(
                "if=pflash,format=raw,unit=1,file={}",
                vars.display()
            ));
        }
        match self.disk {
            DiskBus::Virtio => args.extend(["-drive".to_string(), drive.to_string()]),
            DiskBus::Ide => {
                args.extend(["-drive".to_string(), drive.replace("if=virtio", "if=ide")])
            }
            DiskBus::Scsi(controller) => args.extend([
                "-drive".to_string(),
                drive.replace("if=virtio", "if=none,id=disk0"),
                "-device".to_string(),
                format!("{controller},id=scsi0"),
                "-device".to_string(),
                "scsi-hd,drive=disk0,bus=scsi0.0,bootindex=0".to_string(),
            ]),
        }
        // Other NICs than virtio boot without their PXE ROM: the firmware goes to the disk.
        let rom = if self.nic == "virtio-net-pci" {
            ""
        } else {
            ",romfile="
        };
        args.extend([
            "-device".to_string(),
            format!("{},netdev=n0{rom}", self.nic),
        ]);
        Ok(args)
    }
}

/// The agent's share of the boot from `systemd-analyze time` and `blame` output: the time of
/// its two units (the configuration sources, the endpoint) against userspace's. The first
/// boot's host-key unit is the image's, not the agent's, and is left out.
fn agent_share(analyze: &str) -> Option<String> {
    let userspace = Regex::new(r"\+ ([0-9.]+(?:min|ms|s)(?: [0-9.]+(?:ms|s))?) \(userspace\)")
        .ok()?
        .captures(analyze)
        .and_then(|c| seconds(&c[1]))?;
    let mut parts = Vec::new();
    let mut total = 0.0;
    for line in analyze.lines() {
        let line = line.trim();
        if let Some((time, unit)) = line.rsplit_once(' ') {
            if unit == "nodeboot-agent.service" || unit == "nodeboot-acquire.service" {
                if let Some(s) = seconds(time.trim()) {
                    if !parts.iter().any(|(u, _)| u == unit) {
                        total += s;
                        parts.push((unit.to_string(), s));
                    }
                }
            }
        }
    }
    if parts.is_empty() {
        return None;
    }
    let list: Vec<String> = parts
        .iter()
        .map(|(u, s)| format!("{u} {:.0} ms", s * 1000.0))
        .collect();
    Some(format!(
        "agent's share of systemd-analyze blame: {} = {:.0} ms of {userspace:.1} s userspace ({:.1} %)",
        list.join(" + "),
        total * 1000.0,
        100.0 * total / userspace
    ))
}

/// `1min 2.5s`, `3.2s`, `450ms` in seconds.
fn seconds(text: &str) -> Option<f64> {
    text.split_whitespace()
        .map(|w| {
            if let Some(v) = w.strip_suffix("min") {
                v.parse::<f64>().ok().map(|v| v * 60.0)
            } else if let Some(v) = w.strip_suffix("ms") {
                v.parse::<f64>().ok().map(|v| v / 1000.0)
            } else if let Some(v) = w.strip_suffix("us") {
                v.parse::<f64>().ok().map(|v| v / 1e6)
            } else {
                w.strip_suffix('s')?.parse::<f64>().ok()
            }
        })
        .sum()
}

/// Counters of the guest's disk requests.
#[derive(Clone, Copy)]
struct DiskStats {
    flushes: u64,
    writes: u64,
}

struct Ready {
    fingerprint: String,
    banner_s: f64,
    https_s: f64,
}

fn free_port() -> Fallible<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn kvm_usable() -> bool {
    Path::new("/dev/kvm").exists()
        && std::fs::read_to_string("/proc/cpuinfo")
            .is_ok_and(|c| c.contains(" vmx") || c.contains(" svm"))
}

impl Vm {
    fn boot(opts: &Options, name: &str) -> Fallible<Vm> {
        Vm::boot_image(opts, &opts.image, name)
    }

    /// Boots a throw-away snapshot of `image` (`snapshot=on`: the image itself never changes).
    fn boot_image(opts: &Options, image: &Path, name: &str) -> Fallible<Vm> {
        Vm::start(
            opts,
            name,
            &format!("file={},format=raw,if=virtio,snapshot=on", image.display()),
            &[],
        )
    }

    /// Starts QEMU with `drive` as its `-drive` option and `extra` arguments (such as
    /// `-loadvm`), its serial console drained into `<name>.serial.log` and its human monitor on
    /// a Unix socket (see [`Vm::monitor`]).
    fn start(opts: &Options, name: &str, drive: &str, extra: &[&str]) -> Fallible<Vm> {
        Vm::start_with(opts, name, drive, extra, None)
    }

    /// [`Vm::start`] in `lab` (default: a lab of the scenario's own; see [`Lab`]).
    fn start_with(
        opts: &Options,
        name: &str,
        drive: &str,
        extra: &[&str],
        lab: Option<Lab>,
    ) -> Fallible<Vm> {
        Vm::start_on(opts, name, drive, extra, lab, VIRTIO)
    }

    /// [`Vm::start_with`] on the virtual hardware `hw`.
    fn start_on(
        opts: &Options,
        name: &str,
        drive: &str,
        extra: &[&str],
        lab: Option<Lab>,
        hw: Hardware,
    ) -> Fallible<Vm> {
        let lab = match lab {
            Some(l) => l,
            None => Lab::new(name.split('-').next().unwrap_or(name))?,
        };
        let dir = opts.artifacts.join(format!("{name}.run"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let socket = dir.join("serial.sock");
        let port = free_port()?;
        let accel = if kvm_usable() {
            "kvm"
        } else {
            "tcg,thread=multi"
        };
        let monitor = dir.join("monitor.sock");
        let file = drive.split(',').next().unwrap_or(drive);
        let file = file.strip_prefix("file=").unwrap_or(file);
        println!(
            "vm:   booting {file} ({accel}, {}, port 8443 on 127.0.0.1:{port})",
            hw.describe()
        );
        let hw_args = hw.args(drive, &dir)?;
        let started = Instant::now();
        let child = lab
            .ns
            .command("qemu-system-x86_64")
            .args([
                "-machine",
                "pc",
                "-accel",
                accel,
                "-smp",
                "2",
                "-m",
                &opts.memory_mib.to_string(),
            ])
            .args([
                "-display",
                "none",
                "-monitor",
                &format!("unix:{},server=on,wait=off", monitor.display()),
                "-no-user-config",
                "-nodefaults",
            ])
            .args([
                "-chardev",
                &format!(
                    "socket,id=ser0,path={},server=on,wait=off",
                    socket.display()
                ),
            ])
            .args(["-serial", "chardev:ser0"])
            .args(&hw_args)
            .args(extra)
            .args([
                "-netdev",
                // The guest may reach out: only the lab's services are there.
                &format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:8443"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("qemu.stderr")).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("starting qemu-system-x86_64: {e} (run tests/vm/setup)"))?;
        let transcript = opts.artifacts.join(format!("{name}.serial.log"));
        let console = Console::connect(&socket, &transcript, false)?;
        Ok(Vm {
            child,
            lab,
            port,
            console,
            started,
            dir,
            socket,
            monitor,
            serial_log: transcript,
        })
    }

    /// `program`, to run where the guest's forwarded port is (the lab's namespace).
    fn host(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        self.lab.ns.command(program)
    }

    /// Lets go of the serial socket (QEMU serves one client at a time), runs `f` with its
    /// path, then connects again. While nobody is connected QEMU drops the guest's output.
    fn handover<T>(&mut self, f: impl FnOnce(&Path) -> T) -> Fallible<T> {
        self.console.close();
        let out = f(&self.socket);
        self.console = Console::connect(&self.socket, &self.serial_log, true)?;
        Ok(out)
    }

    /// Waits for the banner's fingerprint on the console and for HTTPS on the forwarded port.
    fn wait_ready(&mut self) -> Fallible<Ready> {
        let caps = self.console.wait_for(
            &format!(r"Certificate fingerprint:\s+({FINGERPRINT_RE})"),
            Duration::from_secs(300),
            "the agent's banner with the certificate fingerprint",
        )?;
        let banner_s = self.started.elapsed().as_secs_f64();
        let fingerprint = caps.into_iter().nth(1).ok_or("no fingerprint captured")?;
        self.wait_https()?;
        Ok(Ready {
            fingerprint,
            banner_s,
            https_s: self.started.elapsed().as_secs_f64(),
        })
    }

    /// Waits until the forwarded port answers HTTPS (any certificate).
    fn wait_https(&self) -> Fallible<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if curl_status(self)?.ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("port 8443 did not answer HTTPS within 120 s of the banner".into());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Runs one command on QEMU's human monitor (see [`monitor`]).
    fn monitor(&self, command: &str, timeout: Duration) -> Fallible<String> {
        monitor(&self.monitor, command, timeout)
    }

    /// The guest's disk requests so far (QEMU's `info blockstats`).
    fn disk_stats(&self) -> Fallible<DiskStats> {
        let text = self.monitor("info blockstats", Duration::from_secs(30))?;
        let sum = |field: &str| -> Fallible<u64> {
            let re = Regex::new(&format!(r"\b{field}=(\d+)")).map_err(|e| e.to_string())?;
            let values: Vec<u64> = re
                .captures_iter(&text)
                .filter_map(|c| c[1].parse().ok())
                .collect();
            if values.is_empty() {
                return Err(format!("no {field} in `info blockstats`: {text}"));
            }
            Ok(values.iter().sum())
        };
        Ok(DiskStats {
            flushes: sum("flush_operations")?,
            writes: sum("wr_operations")?,
        })
    }

    /// Cuts the power: SIGKILL to QEMU. The guest's page cache is lost; what it had written to
    /// the virtual disk stays (QEMU wrote it to the image file).
    fn kill(&mut self) -> Fallible<()> {
        self.child
            .kill()
            .map_err(|e| format!("killing QEMU: {e}"))?;
        let _ = self.child.wait();
        Ok(())
    }

    /// Waits for QEMU to exit by itself (the guest powered off).
    fn wait_exit(&mut self, timeout: Duration, what: &str) -> Fallible<()> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Ok(None) => {
                    return Err(format!(
                        "QEMU still running {} s after {what}",
                        timeout.as_secs()
                    ));
                }
                Err(e) => return Err(format!("waiting for QEMU: {e}")),
            }
        }
    }

    /// Ends the run: the disk is a throw-away snapshot, so QEMU is simply stopped (Drop).
    fn shutdown(self) -> Fallible<()> {
        drop(self);
        Ok(())
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Runs one command on the QEMU human monitor (HMP) at `socket`, through the console engine,
/// and returns what it printed before the next `(qemu)` prompt, its echo left out (nothing
/// for `quit`: QEMU closes the monitor).
fn monitor(socket: &Path, command: &str, timeout: Duration) -> Fallible<String> {
    let what = |e: String| format!("QEMU monitor ({command}): {e}");
    let prompt = BytesRegex::new(r"(?s)(.*?)\(qemu\) ").map_err(|e| what(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| what(e.to_string()))?;
    let output = runtime.block_on(async {
        let stream = tokio::net::UnixStream::connect(socket).await?;
        let mut session = Session::new(stream, Vec::new(), None);
        session
            .expect(std::slice::from_ref(&prompt), timeout)
            .await?;
        session.send(command, false).await?;
        match session.expect(std::slice::from_ref(&prompt), timeout).await {
            Ok(m) => Ok(m.groups.into_iter().nth(1).flatten().unwrap_or_default()),
            Err(ExpectError::Closed { .. }) if command == "quit" => Ok(String::new()),
            Err(e) => Err(e),
        }
    });
    let output = output.map_err(|e: ExpectError| what(e.to_string()))?;
    Ok(output
        .lines()
        .filter(|l| !l.contains(command))
        .collect::<Vec<_>>()
        .join("\n"))
}

// ---------------------------------------------------------------------------------------
// The serial console: drained continuously (a guest blocks on console writes otherwise),
// driven by the provisioner's expect engine (`nodeboot bootstrap`'s)

/// QEMU's serial socket as the engine's stream. A thread drains the socket for the whole run,
/// writes the raw bytes to the serial log and hands them on through an unbounded channel, so
/// the guest never waits for the suite; what the suite sends goes straight to the socket.
struct Drained {
    received: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
    /// The chunk being read, and how much of it has been.
    chunk: Vec<u8>,
    taken: usize,
    socket: UnixStream,
}

impl tokio::io::AsyncRead for Drained {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let this = &mut *self;
        if this.taken == this.chunk.len() {
            match this.received.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                // the draining thread has ended: the end of the stream
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(chunk)) => {
                    this.chunk = chunk;
                    this.taken = 0;
                }
            }
        }
        let n = buf.remaining().min(this.chunk.len() - this.taken);
        buf.put_slice(&this.chunk[this.taken..this.taken + n]);
        this.taken += n;
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for Drained {
    /// A blocking write: a few bytes of typing to a socket QEMU always reads.
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready((&self.socket).write(data))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready((&self.socket).flush())
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

struct Console {
    runtime: tokio::runtime::Runtime,
    /// The engine's session. It is given no secrets to mask: the suite looks for leaked
    /// passwords in what it captures, so it must see them.
    session: Session<'static, Drained>,
    stream: UnixStream,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Console {
    /// Connects to QEMU's serial socket and drains it on a thread; the raw bytes go to
    /// `transcript` (appended to when `append`).
    fn connect(socket: &Path, transcript: &Path, append: bool) -> Fallible<Console> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let stream = loop {
            match UnixStream::connect(socket) {
                Ok(s) => break s,
                Err(e) if Instant::now() > deadline => {
                    return Err(format!("connecting to {}: {e}", socket.display()));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        let mut reader = stream.try_clone().map_err(|e| e.to_string())?;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(transcript)
            .map_err(|e| format!("creating {}: {e}", transcript.display()))?;
        let (sender, received) = tokio::sync::mpsc::unbounded_channel();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let _ = log.write_all(&buf[..n]);
                        // the suite may have stopped listening (a failed scenario): keep draining
                        let _ = sender.send(buf[..n].to_vec());
                    }
                }
            }
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| format!("starting the async runtime: {e}"))?;
        let drained = Drained {
            received,
            chunk: Vec::new(),
            taken: 0,
            socket: stream.try_clone().map_err(|e| e.to_string())?,
        };
        Ok(Console {
            runtime,
            session: Session::new(drained, Vec::new(), None),
            stream,
            reader: Some(reader),
        })
    }

    /// Closes the connection (QEMU then accepts the next client) once the reader has logged
    /// everything it received.
    fn close(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }

    /// Types `text` and Enter.
    fn send_line(&mut self, text: &str) -> Fallible<()> {
        self.runtime
            .block_on(self.session.send(text, false))
            .map_err(|e| format!("writing to the console: {e}"))
    }

    /// Waits until `pattern` matches the console output after the last match or send;
    /// returns the capture groups (group 0 first). The error shows the last lines received.
    fn wait_for(&mut self, pattern: &str, timeout: Duration, what: &str) -> Fallible<Vec<String>> {
        self.wait_for_any(&[pattern], timeout, what)
            .map(|(_, caps)| caps)
    }

    /// The same for several patterns: which matched first, and its groups.
    fn wait_for_any(
        &mut self,
        patterns: &[&str],
        timeout: Duration,
        what: &str,
    ) -> Fallible<(usize, Vec<String>)> {
        let res: Vec<BytesRegex> = patterns
            .iter()
            .map(|p| BytesRegex::new(p))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let found = self
            .runtime
            .block_on(self.session.expect(&res, timeout))
            .map_err(|e| format!("waiting for {what}: {e}"))?;
        let groups = found
            .groups
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        Ok((found.index, groups))
    }

    /// Logs in with a known password and waits for a shell prompt.
    fn login(&mut self, user: &str, password: &str) -> Fallible<()> {
        self.send_line(user)?;
        self.wait_for(
            PASSWORD_PROMPT,
            Duration::from_secs(60),
            "the password prompt",
        )?;
        self.send_line(password)?;
        self.wait_for(
            SHELL_PROMPT,
            Duration::from_secs(60),
            "a shell prompt after logging in",
        )?;
        Ok(())
    }

    /// The seed's first login: the expired password must be changed; the profile hook then
    /// runs the wizard through sudo (which asks for the new password); the wizard's first
    /// question must come, then the wizard is interrupted to get a shell.
    fn first_login(&mut self, user: &str, new_password: &str) -> Fallible<()> {
        // An empty name makes getty print a fresh prompt, whatever came after the last one.
        self.send_line("")?;
        self.wait_for(LOGIN_PROMPT, Duration::from_secs(60), "a login prompt")?;
        self.send_line(user)?;
        let t = Duration::from_secs(60);
        self.wait_for(NEW_PASSWORD_PROMPT, t, "the forced password change")?;
        self.send_line(new_password)?;
        self.wait_for(RETYPE_PROMPT, t, "the password confirmation")?;
        self.send_line(new_password)?;
        self.wait_for(SUDO_PROMPT, t, "the wizard's sudo prompt")?;
        self.send_line(new_password)?;
        self.wait_for(WIZARD_FIRST_QUESTION, t, "the wizard's first question")?;
        // Leave the wizard (Ctrl-C, then Enter) for a shell.
        self.send_line("\x03")?;
        self.wait_for(SHELL_PROMPT, t, "a shell prompt after leaving the wizard")?;
        Ok(())
    }

    /// Runs `command` in the logged-in shell, answering sudo's password prompt (which must
    /// come) with `password`; returns what it printed after the password.
    fn sudo_shell(&mut self, command: &str, password: &str, timeout: Duration) -> Fallible<String> {
        self.send_line(&format!("{command}; echo ==END==$((6*7))"))?;
        self.wait_for(SUDO_PROMPT, timeout, "sudo's password prompt")?;
        self.send_line(password)?;
        let caps = self.wait_for(r"(?s)^(.*?)==END==42", timeout, "the command's output")?;
        Ok(caps.get(1).cloned().unwrap_or_default())
    }

    /// Runs `command` in the logged-in shell and returns what it printed.
    fn shell(&mut self, command: &str, timeout: Duration) -> Fallible<String> {
        // The end marker is computed by the shell, so the echoed command line never matches.
        self.send_line(&format!("echo ==BEGIN==; {command}; echo ==END==$((6*7))"))?;
        let caps = self.wait_for(
            r"(?s)==BEGIN==\n(.*?)==END==42",
            timeout,
            "the command's output",
        )?;
        Ok(caps.get(1).cloned().unwrap_or_default())
    }
}

// ---------------------------------------------------------------------------------------
// Host-side helpers

struct Ran {
    ok: bool,
    text: String,
}

fn run(cmd: &mut Command) -> Fallible<Ran> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("starting {:?}: {e}", cmd.get_program()))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(Ran {
        ok: out.status.success(),
        text,
    })
}

struct Timed {
    ok: bool,
    /// stdout and stderr.
    text: String,
    stdout: String,
    /// Each line of stderr with the seconds since the start when it came.
    lines: Vec<(f64, String)>,
}

/// Runs `cmd`, timestamping its stderr lines (progress) as they come; returns the outcome
/// and the total seconds.
fn run_timed(cmd: &mut Command) -> (Fallible<Timed>, f64) {
    use std::io::BufRead;
    let start = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return (Err(format!("starting {:?}: {e}", cmd.get_program())), 0.0),
    };
    let stdout = child.stdout.take().map(|mut out| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = out.read_to_string(&mut text);
            text
        })
    });
    let mut lines = Vec::new();
    if let Some(err) = child.stderr.take() {
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            lines.push((start.elapsed().as_secs_f64(), line));
        }
    }
    let status = child.wait();
    let elapsed = start.elapsed().as_secs_f64();
    let stdout = stdout.and_then(|h| h.join().ok()).unwrap_or_default();
    let mut text = stdout.clone();
    for (_, line) in &lines {
        text.push_str(line);
        text.push('\n');
    }
    let ok = status.is_ok_and(|s| s.success());
    (
        Ok(Timed {
            ok,
            text,
            stdout,
            lines,
        }),
        elapsed,
    )
}

/// The first boot after an apply, seen from outside: 8443 serves the status read-only with
/// the checks' verdict `healthy` (the lab answers every check), and refuses an upload (409).
fn read_only_window(vm: &Vm) -> Fallible<()> {
    let status = curl_status(vm)?;
    let report: nodeboot_config::api::StatusReport =
        serde_json::from_str(&status.text).map_err(|e| {
            format!(
                "the read-only status is not a status document ({e}):\n{}",
                status.text
            )
        })?;
    let health = report
        .health
        .ok_or_else(|| format!("the read-only status has no checks:\n{}", status.text))?;
    println!("vm:   8443 read-only: {}", health.summary());
    for c in &health.report.checks {
        println!(
            "vm:     {} {} {}: {} ({} ms)",
            if c.passed { "pass" } else { "FAIL" },
            c.kind,
            c.subject,
            c.reason,
            c.elapsed_ms
        );
    }
    if report.state != nodeboot_config::api::NodeState::Configured
        || health.phase != nodeboot_config::api::HealthPhase::Healthy
    {
        return Err(format!(
            "the node is not configured and healthy: {} ({})",
            report.state,
            health.summary()
        ));
    }
    let upload = run(vm.host("curl").args([
        "-sk",
        "--max-time",
        "30",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        "Content-Type: text/xml",
        // Refused for the node's state, whatever the body.
        "--data-binary",
        "<node-config schema=\"1\"/>",
        &format!("https://127.0.0.1:{}/configuration/bootstrap", vm.port),
    ]))?;
    if upload.text.trim() != "409" {
        return Err(format!(
            "an upload during the read-only window was answered {}, not 409",
            upload.text.trim()
        ));
    }
    Ok(())
}

/// `GET /api/v1/status` over HTTPS without trusting the certificate: used only to see whether
/// the port serves at all (the pinned checks use `nodeboot status` and `verified_pin`).
fn curl_status(vm: &Vm) -> Fallible<Ran> {
    let port = vm.port;
    run(vm.host("curl").args([
        "-sS",
        "-k",
        "--max-time",
        "5",
        &format!("https://127.0.0.1:{port}/api/v1/status"),
    ]))
}

struct Pin {
    cert_file: PathBuf,
    spki: String,
    name: String,
}

/// Fetches the node's certificate, checks its SHA-256 fingerprint against the one the console
/// showed, and returns what curl needs to pin it: the certificate as the only CA, its public
/// key hash for `--pinnedpubkey`, and a name the certificate holds.
fn verified_pin(vm: &Vm, fingerprint: &str) -> Fallible<Pin> {
    let port = vm.port;
    let dir = std::env::temp_dir().join(format!("nodeboot-vm-pin-{port}"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let cert_file = dir.join("node.pem");
    let fetched = run(vm.host("sh").args([
        "-c",
        &format!(
            "openssl s_client -connect 127.0.0.1:{port} </dev/null 2>/dev/null | openssl x509 -outform PEM > {}",
            cert_file.display()
        ),
    ]))?;
    if !fetched.ok {
        return Err(format!("fetching the node's certificate: {}", fetched.text));
    }
    let fp = run(Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&cert_file))?;
    let got = fp
        .text
        .trim()
        .rsplit('=')
        .next()
        .unwrap_or("")
        .to_lowercase();
    let want = fingerprint.trim_start_matches("SHA256:").to_lowercase();
    if got != want {
        return Err(format!(
            "the certificate on 8443 ({got}) is not the one on the console ({want})"
        ));
    }
    let spki = run(Command::new("sh").args([
        "-c",
        &format!(
            "openssl x509 -in {} -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | base64",
            cert_file.display()
        ),
    ]))?;
    let names = run(Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(&cert_file))?;
    let name = Regex::new(r"DNS:([A-Za-z0-9.-]+)")
        .map_err(|e| e.to_string())?
        .captures(&names.text)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_string())
        .ok_or_else(|| format!("no DNS name in the node's certificate: {}", names.text))?;
    Ok(Pin {
        cert_file,
        spki: format!("sha256//{}", spki.text.trim()),
        name,
    })
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("      {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn first_lines(text: &str, n: usize) -> String {
    text.lines().take(n).collect::<Vec<_>>().join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_refuses_an_unknown_scenario() {
        use clap::{CommandFactory, Parser};
        Cli::command().debug_assert();
        let base = ["vm", "--image", "i.raw", "--nodeboot", "nb"];
        let ok = Cli::try_parse_from(base.iter().chain(&["--only", "powerloss"])).unwrap();
        assert_eq!(ok.only, Some(Only::Powerloss));
        let err = Cli::try_parse_from(base.iter().chain(&["--only", "powerlos"])).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(
            text.contains("configure, reject, management, nocloud, ovfenv, oracle, powerloss"),
            "{text}"
        );
        // --list needs no image: tests/vm/run checks --only with it before building anything
        let list = Cli::try_parse_from(["vm", "--list", "--only", "reject"]).unwrap();
        assert_eq!(Only::selected(list.only), [Only::Reject]);
        assert_eq!(Only::selected(None).len(), 7);
        assert_eq!(Only::Management.name(), "management");
        let err = Cli::try_parse_from(["vm", "--list", "--only", "typo"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert_eq!(Cli::try_parse_from(["vm"]).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn the_hardware_sets_become_qemu_arguments_and_the_agent_share_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let drive = "file=/i.raw,format=raw,if=virtio,snapshot=on";
        assert_eq!(
            ORACLE_EMULATED.args(drive, dir.path()).unwrap(),
            [
                "-drive",
                "file=/i.raw,format=raw,if=ide,snapshot=on",
                "-device",
                "e1000,netdev=n0,romfile="
            ]
        );
        assert_eq!(
            VIRTIO.args(drive, dir.path()).unwrap()[2..],
            ["-device", "virtio-net-pci,netdev=n0"]
        );
        assert_eq!(
            VMWARE_BIOS.args(drive, dir.path()).unwrap(),
            [
                "-drive",
                "file=/i.raw,format=raw,if=none,id=disk0,snapshot=on",
                "-device",
                "pvscsi,id=scsi0",
                "-device",
                "scsi-hd,drive=disk0,bus=scsi0.0,bootindex=0",
                "-device",
                "vmxnet3,netdev=n0,romfile="
            ]
        );
        let uefi = GOOGLE_UEFI.args(drive, dir.path()).unwrap();
        assert_eq!(
            uefi[..4],
            [
                "-drive",
                "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd",
                "-drive",
                &format!(
                    "if=pflash,format=raw,unit=1,file={}",
                    dir.path().join("OVMF_VARS.fd").display()
                )
            ]
        );
        assert!(dir.path().join("OVMF_VARS.fd").is_file());
        let analyze = "Startup finished in 3.1s (kernel) + 9.8s (initrd) + 20.000s (userspace) = 32.9s\n\
            1.500s nodeboot-acquire.service\n  250ms nodeboot-agent.service\n\
            29.122s nodeboot-ssh-host-keys.service\n\
            250ms nodeboot-agent.service\n";
        assert_eq!(
            agent_share(analyze).unwrap(),
            "agent's share of systemd-analyze blame: nodeboot-acquire.service 1500 ms + \
             nodeboot-agent.service 250 ms = 1750 ms of 20.0 s userspace (8.8 %)"
        );
        assert_eq!(seconds("1min 2.5s"), Some(62.5));
    }

    /// A peer on the other end of a real Unix socket, as QEMU's serial chardev is: the suite's
    /// [`Console`] connects to it.
    fn console_pair(dir: &Path) -> (Console, UnixStream) {
        let socket = dir.join("serial.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let console = Console::connect(&socket, &dir.join("serial.log"), false).unwrap();
        let (peer, _) = listener.accept().unwrap();
        (console, peer)
    }

    const WAIT: Duration = Duration::from_secs(10);

    /// The prompts match the seed's dialog as a Debian 12 console prints it (colours, CRLF),
    /// through the provisioner's engine over a real socket; the raw bytes go to the log.
    #[test]
    fn prompts_match_the_console_dialog_through_the_engine() {
        let dir = tempfile::tempdir().unwrap();
        let (mut console, mut peer) = console_pair(dir.path());
        let cases = [
            (
                LOGIN_PROMPT,
                "\x1b[0;1mDebian GNU/Linux 12 vmnode01 ttyS0\x1b[0m\r\n\r\nvmnode01 login: ",
            ),
            (PASSWORD_PROMPT, "vmnode01 login: admin\r\nPassword: "),
            (
                NEW_PASSWORD_PROMPT,
                "You are required to change your password immediately (administrator enforced).\r\nNew password: ",
            ),
            (NEW_PASSWORD_PROMPT, "Enter new UNIX password: "),
            (RETYPE_PROMPT, "Retype new password: "),
            (
                SUDO_PROMPT,
                "\r\n[sudo] password for ad\r\n[   42.1] random: crng init done\r\nmin: ",
            ),
            (SHELL_PROMPT, "admin@vmnode01:~$ "),
            (
                WIZARD_FIRST_QUESTION,
                "nodeboot installation wizard\r\nIP address [10.0.2.15]: ",
            ),
        ];
        for (pattern, text) in cases {
            peer.write_all(text.as_bytes()).unwrap();
            console.wait_for(pattern, WAIT, pattern).unwrap();
        }
        // a shell prompt must be at the end: output after it is not a prompt
        peer.write_all(b"admin@vmnode01:~$ ls\r\n").unwrap();
        let err = console
            .wait_for(SHELL_PROMPT, Duration::from_millis(200), "a shell prompt")
            .unwrap_err();
        assert!(
            err.starts_with("waiting for a shell prompt: timed out after 200ms waiting for /\\$ $/\nlast lines received:\n"),
            "{err}"
        );
        assert!(err.ends_with("admin@vmnode01:~$ ls"), "{err}");
        // the banner's fingerprint is captured; the login prompt that follows it in the same
        // write is still there for the next wait
        peer.write_all(b"Certificate fingerprint:\r\n    SHA256:01:68:cb:67:90:48:2b:3f:e1:d5:1f:ed:59:89:f7:96:e9:57:6b:5d:8a:78:9e:b2:d0:13:5c:d4:bb:25:1b:97\r\n\r\nnodeboot login: ").unwrap();
        let (which, caps) = console
            .wait_for_any(
                &[
                    &format!(r"Certificate fingerprint:\s+({FINGERPRINT_RE})"),
                    r"(?m)^(\S+) login:",
                ],
                WAIT,
                "the banner or a login prompt",
            )
            .unwrap();
        assert_eq!(which, 0);
        assert!(caps[1].starts_with("SHA256:01:68:") && caps[1].ends_with(":1b:97"));
        let caps = console
            .wait_for(r"(?m)^(\S+) login:", WAIT, "the login prompt")
            .unwrap();
        assert_eq!(caps[1], "nodeboot");
        console.close();
        let log = std::fs::read(dir.path().join("serial.log")).unwrap();
        assert!(log.starts_with(b"\x1b[0;1mDebian GNU/Linux 12"));
        assert!(log.ends_with(b"nodeboot login: "));
    }

    /// `shell` types the command and returns its output between the markers, system lines cut
    /// out and line breaks made `\n`; `sudo_shell` answers sudo with the password.
    #[test]
    fn shell_commands_return_their_output() {
        let dir = tempfile::tempdir().unwrap();
        let (mut console, peer) = console_pair(dir.path());
        let answer = std::thread::spawn(move || {
            let mut out = peer.try_clone().unwrap();
            let mut peer = peer;
            let mut typed = Vec::new();
            let mut line = || {
                let mut got = Vec::new();
                let mut b = [0u8; 1];
                while peer.read(&mut b).unwrap() == 1 && b[0] != b'\r' {
                    got.push(b[0]);
                }
                String::from_utf8(got).unwrap()
            };
            let cmd = line();
            typed.push(cmd.clone());
            // the terminal echoes the command, then the shell runs it
            write!(
                out,
                "{cmd}\r\n==BEGIN==\r\nvmnode01\r\n[   42.100000] random: crng init done\r\nnameserver 10.0.2.3\r\n==END==42\r\nadmin@vmnode01:~$ "
            )
            .unwrap();
            let cmd = line();
            typed.push(cmd);
            out.write_all(b"\r\n[sudo] password for admin: ").unwrap();
            typed.push(line());
            out.write_all(
                b"\r\nThis node is already configured\r\nRole  management\r\n==END==42\r\n$ ",
            )
            .unwrap();
            typed
        });
        let report = console
            .shell("hostname; cat /etc/resolv.conf", WAIT)
            .unwrap();
        assert_eq!(report, "vmnode01\nnameserver 10.0.2.3\n");
        let out = console.sudo_shell("sudo wizard", "pw", WAIT).unwrap();
        assert_eq!(out, "\nThis node is already configured\nRole  management\n");
        assert_eq!(
            answer.join().unwrap(),
            [
                "echo ==BEGIN==; hostname; cat /etc/resolv.conf; echo ==END==$((6*7))",
                "sudo wizard; echo ==END==$((6*7))",
                "pw"
            ]
        );
    }

    /// The monitor helper against a real QEMU (a paused machine with nothing in it).
    #[test]
    fn the_qemu_monitor_answers_through_the_engine() {
        use nodeboot_tests::require::{require, tool};
        if !require(
            tool("qemu-system-x86_64"),
            "qemu-system-x86_64 (Debian qemu-system-x86; tests/vm/setup installs it)",
        ) {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("monitor.sock");
        let mut qemu = Command::new("qemu-system-x86_64")
            .args(["-machine", "none", "-S", "-display", "none", "-nodefaults"])
            .args(["-no-user-config", "-monitor"])
            .arg(format!("unix:{},server=on,wait=off", socket.display()))
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + WAIT;
        while !socket.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let status = monitor(&socket, "info status", WAIT);
        let quit = monitor(&socket, "quit", WAIT);
        let exited = qemu.wait().unwrap();
        assert_eq!(status.unwrap().trim(), "VM status: paused (prelaunch)");
        assert_eq!(quit.unwrap(), "");
        assert!(exited.success(), "{exited}");
    }
}
