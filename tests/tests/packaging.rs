//! The agent's Debian package, built for real by `packaging/build-deb` from the workspace's
//! agent binaries (`nodeboot-agent`, `nodeboot-acquire`, `nodeboot-wizard`) and read back with
//! dpkg-deb: files, control fields, maintainer scripts, units accepted by systemd, the console
//! login hook and its sudo grant, man pages and completions generated from the clap
//! definitions; and the operator's package (`nodeboot`, `nodeboot-image`).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use nodeboot_tests::require::{require, tool};
use nodeboot_tests::run::stdout_of;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Whether dpkg-deb and dpkg-shlibdeps are there (see `nodeboot_tests::require`).
fn dpkg_dev() -> bool {
    require(
        tool("dpkg-deb") && tool("dpkg-shlibdeps"),
        "dpkg-deb and dpkg-shlibdeps (Debian dpkg-dev)",
    )
}

/// The listing of `deb` (`dpkg-deb --contents`), each of `paths` asserted to be in it.
fn contents_holding(deb: &Path, paths: &[&str]) -> String {
    let contents = stdout_of(Command::new("dpkg-deb").arg("--contents").arg(deb));
    for path in paths {
        assert!(
            contents.contains(path),
            "{path} missing from the package:\n{contents}"
        );
    }
    contents
}

/// Unpacks `deb` with its control files (`dpkg-deb --raw-extract`) into `dir/tree`.
fn extract(deb: &Path, dir: &Path) -> PathBuf {
    let tree = dir.join("tree");
    stdout_of(
        Command::new("dpkg-deb")
            .arg("--raw-extract")
            .arg(deb)
            .arg(&tree),
    );
    tree
}

/// The package's control fields, and its `Depends: ` line.
fn control_of(deb: &Path) -> (String, String) {
    let control = stdout_of(Command::new("dpkg-deb").arg("--field").arg(deb));
    let depends = control
        .lines()
        .find(|l| l.starts_with("Depends: "))
        .unwrap()
        .to_owned();
    (control, depends)
}

/// `md5sum --check` of the extracted package's DEBIAN/md5sums: every file is as listed.
fn md5sums_match(tree: &Path) {
    stdout_of(
        Command::new("md5sum")
            .arg("--check")
            .arg("--quiet")
            .arg(tree.join("DEBIAN/md5sums"))
            .current_dir(tree),
    );
}

/// Runs `packaging/build-deb --package NAME` on the workspace's binaries; prints the path.
fn build_deb(package: &str, programs: &[&str], out: &Path) -> String {
    let mut cmd = Command::new(repo().join("packaging/build-deb"));
    cmd.arg("--package").arg(package);
    for program in programs {
        cmd.arg("--binary").arg(common::binary(program));
    }
    cmd.arg("--docgen")
        .arg(common::binary("nodeboot-docgen"))
        .arg("--out")
        .arg(out);
    stdout_of(&mut cmd)
}

#[test]
fn the_deb_holds_the_agent_units_docs_and_scripts() {
    if !dpkg_dev() || !require(tool("systemd-analyze"), "systemd-analyze (Debian systemd)") {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let printed = build_deb(
        "nodeboot-agent",
        &[
            "nodeboot-agent",
            "nodeboot-acquire",
            "nodeboot-wizard",
            "nodeboot-check",
        ],
        out.path(),
    );
    let deb = PathBuf::from(printed.trim());
    assert!(deb.starts_with(out.path()) && deb.exists(), "{printed}");
    assert!(
        deb.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("nodeboot-agent_0.1.0_")
    );

    let (control, depends) = control_of(&deb);
    assert!(control.contains("Package: nodeboot-agent\n"), "{control}");
    let depends = depends.as_str();
    assert!(
        depends.contains("libc6 (>= ") && depends.ends_with(", systemd"),
        "{depends}"
    );

    let contents = contents_holding(
        &deb,
        &[
            "./usr/bin/nodeboot-agent",
            "./usr/bin/nodeboot-acquire",
            "./usr/bin/nodeboot-wizard",
            "./usr/bin/nodeboot-check",
            "./usr/lib/systemd/system/nodeboot-check.service",
            "./usr/share/man/man1/nodeboot-check.1.gz",
            "./usr/lib/systemd/system/nodeboot-agent.service",
            "./usr/lib/systemd/system/nodeboot-ssh-host-keys.service",
            "./usr/lib/systemd/system/nodeboot-acquire.service",
            "./usr/lib/systemd/system/serial-getty@.service.d/nodeboot.conf",
            "./usr/lib/systemd/system/getty@.service.d/nodeboot.conf",
            "./etc/profile.d/nodeboot-wizard.sh",
            "./etc/sudoers.d/nodeboot-wizard",
            "./etc/issue.d/nodeboot.issue -> /run/issue.d/nodeboot.issue",
            "./usr/share/man/man1/nodeboot-agent.1.gz",
            "./usr/share/man/man1/nodeboot-agent-serve.1.gz",
            "./usr/share/man/man1/nodeboot-agent-apply.1.gz",
            "./usr/share/bash-completion/completions/nodeboot-agent",
            "./usr/share/zsh/vendor-completions/_nodeboot-agent",
            "./usr/share/fish/vendor_completions.d/nodeboot-agent.fish",
            "./usr/share/man/man1/nodeboot-acquire.1.gz",
            "./usr/share/bash-completion/completions/nodeboot-acquire",
            "./usr/share/zsh/vendor-completions/_nodeboot-acquire",
            "./usr/share/fish/vendor_completions.d/nodeboot-acquire.fish",
            "./usr/share/man/man1/nodeboot-wizard.1.gz",
            "./usr/share/bash-completion/completions/nodeboot-wizard",
            "./usr/share/zsh/vendor-completions/_nodeboot-wizard",
            "./usr/share/fish/vendor_completions.d/nodeboot-wizard.fish",
            "./usr/share/doc/nodeboot-agent/copyright",
        ],
    );
    assert!(
        !contents.contains("generate-docs"),
        "the hidden command got a man page"
    );
    assert!(
        !contents.contains("nodeboot-agent-acquire"),
        "acquire is its own binary, not a subcommand of the agent:\n{contents}"
    );
    assert!(
        !contents.contains("nodeboot-agent-wizard"),
        "the wizard is its own binary, not a subcommand of the agent:\n{contents}"
    );

    let tree = extract(&deb, out.path());
    assert_eq!(
        std::fs::read_to_string(tree.join("DEBIAN/conffiles")).unwrap(),
        "/etc/profile.d/nodeboot-wizard.sh\n/etc/sudoers.d/nodeboot-wizard\n"
    );
    for script in ["postinst", "prerm", "postrm"] {
        stdout_of(
            Command::new("sh")
                .arg("-n")
                .arg(tree.join("DEBIAN").join(script)),
        );
    }
    stdout_of(
        Command::new("sh")
            .arg("-n")
            .arg(tree.join("etc/profile.d/nodeboot-wizard.sh")),
    );
    // The login hook runs the wizard's own binary through sudo, and the grant names that
    // binary with no arguments and nothing else (no daemon, no --root or --answers of admin's).
    let hook = std::fs::read_to_string(tree.join("etc/profile.d/nodeboot-wizard.sh")).unwrap();
    assert!(
        hook.contains("\n            sudo /usr/bin/nodeboot-wizard\n")
            && hook.contains("[ -x /usr/bin/nodeboot-wizard ]"),
        "{hook}"
    );
    assert!(!hook.contains("nodeboot-agent wizard"), "{hook}");
    let sudoers = std::fs::read_to_string(tree.join("etc/sudoers.d/nodeboot-wizard")).unwrap();
    let rules: Vec<&str> = sudoers
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        rules,
        [
            "Defaults!/usr/bin/nodeboot-wizard env_reset, !lecture",
            "admin ALL=(root) /usr/bin/nodeboot-wizard \"\"",
        ],
        "{sudoers}"
    );
    // The granted binary is the package's: it runs and answers as nodeboot-wizard.
    let version = stdout_of(Command::new(tree.join("usr/bin/nodeboot-wizard")).arg("--version"));
    assert!(version.starts_with("nodeboot-wizard "), "{version}");
    // md5sums covers every regular file.
    let sums = std::fs::read_to_string(tree.join("DEBIAN/md5sums")).unwrap();
    assert!(sums.contains(" usr/bin/nodeboot-agent\n"), "{sums}");
    assert!(sums.contains(" usr/bin/nodeboot-acquire\n"), "{sums}");
    assert!(sums.contains(" usr/bin/nodeboot-wizard\n"), "{sums}");
    md5sums_match(&tree);

    // The man page is the clap definition's: serve's --listen option is documented.
    let page = stdout_of(Command::new("sh").arg("-c").arg(format!(
        "gzip -dc {}",
        tree.join("usr/share/man/man1/nodeboot-agent-serve.1.gz")
            .display()
    )));
    assert!(page.contains(".TH nodeboot-agent-serve 1"), "{page}");
    assert!(page.contains("\\-\\-listen"), "{page}");

    // The unit: systemd accepts it, with its binary where the package puts it.
    let unit = std::fs::read_to_string(tree.join("usr/lib/systemd/system/nodeboot-agent.service"))
        .unwrap();
    // Unconfigured, or the first boot after an apply (its read-only status window).
    assert!(unit.contains("ConditionPathExists=|!/var/lib/nodeboot/configured.json\n"));
    assert!(unit.contains("ConditionPathExists=|/run/nodeboot/health.json\n"));
    assert!(unit.contains("Type=notify\n") && unit.contains("Restart=on-failure\n"));
    assert!(
        !unit.contains("network-online.target"),
        "the agent must not wait for the network to be online"
    );
    let acquire =
        std::fs::read_to_string(tree.join("usr/lib/systemd/system/nodeboot-acquire.service"))
            .unwrap();
    assert!(acquire.contains("ConditionPathExists=!/var/lib/nodeboot/configured.json\n"));
    assert!(
        acquire.contains("Type=oneshot\n") && acquire.contains("Before=nodeboot-agent.service\n")
    );
    assert!(
        !acquire.contains("network-online.target"),
        "with no platform, acquire must not wait for the network"
    );
    assert!(
        acquire.contains("\nExecStart=/usr/bin/nodeboot-acquire\n")
            && acquire.contains("\nDocumentation=man:nodeboot-acquire(1)\n"),
        "{acquire}"
    );
    // The unit's binary is the package's: it runs and answers as nodeboot-acquire.
    let version = stdout_of(Command::new(tree.join("usr/bin/nodeboot-acquire")).arg("--version"));
    assert!(version.starts_with("nodeboot-acquire "), "{version}");
    let getty =
        std::fs::read_to_string(tree.join("usr/lib/systemd/system/getty@.service.d/nodeboot.conf"))
            .unwrap();
    assert!(getty.contains("After=nodeboot-acquire.service nodeboot-agent.service\n"));
    assert!(
        getty.contains("\nAfter=nodeboot-check.service\n"),
        "{getty}"
    );
    let check = std::fs::read_to_string(tree.join("usr/lib/systemd/system/nodeboot-check.service"))
        .unwrap();
    for line in [
        "\nConditionPathExists=/var/lib/nodeboot/check-pending.json\n",
        "\nType=notify\n",
        "\nBefore=nodeboot-agent.service\n",
        "\nExecStart=/usr/bin/nodeboot-check\n",
        "\nStandardOutput=journal+console\n",
    ] {
        assert!(check.contains(line), "{line:?} missing from:\n{check}");
    }
    {
        let units = out.path().join("units");
        std::fs::create_dir(&units).unwrap();
        for unit in [
            "nodeboot-agent.service",
            "nodeboot-ssh-host-keys.service",
            "nodeboot-acquire.service",
            "nodeboot-check.service",
        ] {
            std::fs::copy(
                tree.join("usr/lib/systemd/system").join(unit),
                units.join(unit),
            )
            .unwrap();
        }
        let verify = Command::new("systemd-analyze")
            .arg("verify")
            .arg(units.join("nodeboot-agent.service"))
            .arg(units.join("nodeboot-ssh-host-keys.service"))
            .arg(units.join("nodeboot-acquire.service"))
            .arg(units.join("nodeboot-check.service"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&verify.stderr);
        // Tolerated: the agent is not installed on the test machine, and man lookups.
        for line in err.lines().filter(|l| l.contains("nodeboot")) {
            assert!(
                line.contains("/usr/bin/nodeboot-agent is not executable")
                    || line.contains("/usr/bin/nodeboot-acquire is not executable")
                    || line.contains("/usr/bin/nodeboot-check is not executable")
                    || line.contains("man nodeboot"),
                "systemd-analyze verify: {line}"
            );
        }
    }
}

#[test]
fn the_operator_deb_holds_nodeboot_and_nodeboot_image_with_their_docs() {
    if !dpkg_dev() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let printed = build_deb("nodeboot", &["nodeboot", "nodeboot-image"], out.path());
    let deb = PathBuf::from(printed.trim());
    assert_eq!(
        deb.file_name().unwrap().to_string_lossy(),
        format!(
            "nodeboot_0.1.0_{}.deb",
            stdout_of(Command::new("dpkg").arg("--print-architecture")).trim()
        )
    );
    let (control, depends) = control_of(&deb);
    assert!(control.contains("Package: nodeboot\n"), "{control}");
    let depends = depends.as_str();
    assert!(depends.contains("libc6 (>= "), "{depends}");
    assert!(!depends.contains("systemd"), "{depends}");

    let contents = contents_holding(
        &deb,
        &[
            "./usr/bin/nodeboot",
            "./usr/bin/nodeboot-image",
            "./usr/share/man/man1/nodeboot.1.gz",
            "./usr/share/man/man1/nodeboot-push.1.gz",
            "./usr/share/man/man1/nodeboot-bootstrap.1.gz",
            "./usr/share/man/man1/nodeboot-image.1.gz",
            "./usr/share/man/man1/nodeboot-image-bake.1.gz",
            "./usr/share/bash-completion/completions/nodeboot",
            "./usr/share/bash-completion/completions/nodeboot-image",
            "./usr/share/zsh/vendor-completions/_nodeboot",
            "./usr/share/fish/vendor_completions.d/nodeboot-image.fish",
            "./usr/share/doc/nodeboot/copyright",
        ],
    );
    for absent in ["nodeboot-agent", "systemd", "etc/"] {
        assert!(
            !contents.contains(absent),
            "{absent} in the operator's package:\n{contents}"
        );
    }

    // The packaged programs run, and the man page is the clap definition's.
    let tree = extract(&deb, out.path());
    let version = stdout_of(Command::new(tree.join("usr/bin/nodeboot")).arg("--version"));
    assert_eq!(version.trim(), "nodeboot 0.1.0");
    let help = stdout_of(Command::new(tree.join("usr/bin/nodeboot-image")).arg("--help"));
    assert!(help.contains("bake"), "{help}");
    let page = stdout_of(Command::new("sh").arg("-c").arg(format!(
        "gzip -dc {}",
        tree.join("usr/share/man/man1/nodeboot-push.1.gz").display()
    )));
    assert!(page.contains(".TH nodeboot-push 1"), "{page}");
    assert!(page.contains("\\-\\-fingerprint"), "{page}");
    md5sums_match(&tree);
}
