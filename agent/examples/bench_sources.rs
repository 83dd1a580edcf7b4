//! Benchmark of the platform metadata sources (run by `scripts/bench-sources`): the cost of
//! one `source::platform::fetch` per platform against a fake metadata service on loopback
//! (every request of the platform's flow, Azure's ready report included), VMware's through a
//! fake `vmware-rpctool` (process starts), and the cost of `detect` on a machine where no
//! platform is detected (what every boot of such a machine pays). Prints numbers; asserts
//! nothing.
//!
//! Usage: bench_sources [RUNS]

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failure is a crash

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use nodeboot_agent::source::platform::{Budgets, Env, Platform, detect, fetch};

const MGMT: &str = r#"{"hostname":"mgr","domain":"example.com","ip":"10.0.0.5","mask":"255.255.255.0","gw":"10.0.0.1","dns":"10.0.0.2","ntp":"10.0.0.3","user":"admin","pass":"pbkdf2_sha256$600000$salt$aGFzaA==","admin_password":"$6$salt$hash","error_reports":false,"enable_analytics":false}"#;
const GOAL: &str = "<GoalState><Incarnation>1</Incarnation><Container><ContainerId>c</ContainerId><RoleInstanceList><RoleInstance><InstanceId>i</InstanceId></RoleInstance></RoleInstanceList></Container></GoalState>";

fn answer(path: &str) -> (u16, String) {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    match path {
        "/opc/v2/instance/" => (
            200,
            format!(r#"{{"id":"ocid1","metadata":{{"management_node_config":{MGMT}}}}}"#),
        ),
        "/computeMetadata/v1/instance/attributes/management_node_config" => (200, MGMT.into()),
        "/openstack/latest/user_data" => (200, format!(r#"{{"management_node_config":{MGMT}}}"#)),
        "/latest/api/token" => (200, "AQAEAtoken==".into()),
        "/latest/user-data" => (200, format!(r#"{{"management_node_config":{MGMT}}}"#)),
        "/metadata/instance/compute/userData?api-version=2021-01-01&format=text" => {
            (200, b64(&format!(r#"{{"management_node_config":{MGMT}}}"#)))
        }
        "/machine/?comp=goalstate" => (200, GOAL.into()),
        "/machine/?comp=health" => (200, String::new()),
        _ => (404, String::new()),
    }
}

async fn fake() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    let (code, body) = answer(&req.uri().to_string());
                    let mut r = Response::new(Full::new(Bytes::from(body)));
                    *r.status_mut() = hyper::StatusCode::from_u16(code).unwrap();
                    Ok::<_, Infallible>(r)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

fn stats(mut v: Vec<Duration>) -> String {
    v.sort();
    let q = |p: f64| v[((v.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0;
    format!(
        "median {:.3} ms, p90 {:.3} ms, max {:.3} ms",
        q(0.5),
        q(0.9),
        q(1.0)
    )
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = rt.block_on(fake());
    let env = Env {
        metadata: addr,
        wire_server: Some(addr),
        lease_dir: PathBuf::from("/nonexistent"),
        interface: None,
        rpctool: PathBuf::from("/nonexistent"),
        azure_ovf_env: None,
        budgets: Budgets::default(),
    };
    println!("fetch against a fake service on loopback, {runs} runs each:");
    for p in [
        Platform::Oracle,
        Platform::Gce,
        Platform::OpenStack,
        Platform::Ec2,
        Platform::Azure,
    ] {
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            let f = rt.block_on(fetch(&p, &env)).unwrap();
            times.push(t.elapsed());
            assert!(f.is_some());
        }
        println!("  {:<22} {}", p.title(), stats(times));
    }

    let dir = tempfile::tempdir().unwrap();
    let tool = dir.path().join("vmware-rpctool");
    let value = base64::engine::general_purpose::STANDARD.encode(MGMT);
    std::fs::write(
        &tool,
        format!(
            "#!/bin/sh\ncase \"$1\" in\n  \"info-get guestinfo.nodeboot.config\") echo '{value}' ;;\n  \"info-get guestinfo.nodeboot.config.encoding\") echo base64 ;;\n  *) exit 1 ;;\nesac\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    let vm_env = Env {
        rpctool: tool,
        ..env.clone()
    };
    let vm_runs = runs.min(50);
    let mut times = Vec::with_capacity(vm_runs);
    for _ in 0..vm_runs {
        let t = Instant::now();
        let f = rt.block_on(fetch(&Platform::Vmware, &vm_env)).unwrap();
        times.push(t.elapsed());
        assert!(f.is_some());
    }
    println!(
        "  {:<22} {} ({vm_runs} runs, 3 runs of a /bin/sh fake rpctool each)",
        "VMware",
        stats(times)
    );

    let dmi = tempfile::tempdir().unwrap();
    for (k, v) in [
        ("sys_vendor", "QEMU"),
        ("product_name", "Standard PC (Q35 + ICH9, 2009)"),
        ("product_serial", ""),
        ("product_uuid", "6b1f3a52-0d4e-4f0e-9d8e-1d2b3c4d5e6f"),
        ("chassis_asset_tag", ""),
    ] {
        std::fs::write(dmi.path().join(k), format!("{v}\n")).unwrap();
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        assert!(detect(dmi.path(), "ro quiet console=ttyS0").is_none());
        times.push(t.elapsed());
    }
    println!(
        "detect, no platform (QEMU DMI fixture, nothing probed): {}",
        stats(times)
    );
}
