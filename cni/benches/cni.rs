//! Wall time of one CNI call, process start included, as a runtime sees it: pdipam-cni beside
//! Debian's `host-local`, measured the same way (spawn, write the configuration, wait).
//!
//! `cargo bench -p pdipam-cni` (host-local from `containernetworking-plugins`; without it only
//! pdipam-cni is measured). The state directories live under the target directory, on the
//! same file system for both plugins.

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PDIPAM_CNI: &str = env!("CARGO_BIN_EXE_pdipam-cni");

fn host_local() -> Option<PathBuf> {
    ["/usr/lib/cni/host-local", "/opt/cni/bin/host-local"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// One call; returns its wall time.
fn call(plugin: &Path, verb: &str, container: &str, conf: &[u8]) -> Duration {
    let start = Instant::now();
    let mut child = Command::new(plugin)
        .env_clear()
        .env("CNI_COMMAND", verb)
        .env("CNI_CONTAINERID", container)
        .env("CNI_NETNS", "/var/run/netns/bench")
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the plugin");
    child.stdin.take().unwrap().write_all(conf).unwrap();
    let out = child.wait_with_output().unwrap();
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "{} {verb}: {}",
        plugin.display(),
        String::from_utf8_lossy(&out.stdout)
    );
    elapsed
}

fn state_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cni-bench-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn configs() -> Vec<(&'static str, PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let dir = state_dir("pdipam");
    let conf: Value = json!({
        "cniVersion": "1.0.0", "name": "bench", "type": "ptp",
        "ipam": {
            "type": "pdipam-cni", "dataDir": dir,
            // 16 prefixes (256 addresses), about as many pods as a big node holds.
            "prefixes": (0..16).map(|i| format!("10.0.{}.{}/28", 1 + i / 16, (i % 16) * 16))
                .collect::<Vec<_>>(),
            "subnets": ["10.0.0.0/16"],
            "cooldownSeconds": 0,
        }
    });
    out.push((
        "pdipam-cni",
        PathBuf::from(PDIPAM_CNI),
        conf.to_string().into_bytes(),
    ));
    match host_local() {
        Some(path) => {
            let dir = state_dir("host-local");
            let conf = json!({
                "cniVersion": "1.0.0", "name": "bench", "type": "ptp",
                "ipam": {
                    "type": "host-local", "dataDir": dir,
                    "ranges": [[{"subnet": "10.0.1.0/24", "gateway": "10.0.1.1"}]],
                }
            });
            out.push(("host-local", path, conf.to_string().into_bytes()));
        }
        None => eprintln!("host-local not installed: measuring pdipam-cni only"),
    }
    out
}

fn calls(c: &mut Criterion) {
    let mut group = c.benchmark_group("cni_call");
    group.sample_size(30);
    group.warm_up_time(Duration::from_secs(1));
    for (name, plugin, conf) in configs() {
        // A node already running 100 pods: the state every call reads and writes.
        for i in 0..100 {
            call(&plugin, "ADD", &format!("resident{i}"), &conf);
        }
        // The floor: a call that starts the process and reads no state.
        group.bench_function(format!("{name}/VERSION"), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| call(&plugin, "VERSION", "v", br#"{"cniVersion":"1.0.0"}"#))
                    .sum()
            })
        });
        let mut n = 0u64;
        group.bench_function(format!("{name}/ADD"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    n += 1;
                    let id = format!("c{n}");
                    total += call(&plugin, "ADD", &id, &conf);
                    call(&plugin, "DEL", &id, &conf);
                }
                total
            })
        });
        group.bench_function(format!("{name}/DEL"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    n += 1;
                    let id = format!("c{n}");
                    call(&plugin, "ADD", &id, &conf);
                    total += call(&plugin, "DEL", &id, &conf);
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, calls);
criterion_main!(benches);
