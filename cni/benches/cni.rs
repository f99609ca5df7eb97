//! Wall time of CNI calls, process start included, as a runtime sees them: pdipam-cni beside
//! Debian's `host-local`, measured the same way in the same run, on the same file system.
//!
//! - `cni_quiet/*`, `cni_loaded/*`: the IPAM plugin called directly (spawn, write the
//!   configuration, wait), ADD and DEL, on a node already holding 100 pods.
//! - `ptp_quiet/*`, `ptp_loaded/*`: an ADD and its DEL through Debian's `ptp`, as a runtime
//!   calls the main plugin (veth, addresses and routes in a network namespace; as root only).
//! - `loaded`: while a background writer the bench starts and stops itself keeps the disk busy
//!   (1 MiB writes as fast as it can over a 256 MiB file, a sync every 32 MiB as an image pull
//!   syncs each layer), on the same file system.
//! - The two plugins are measured side by side: after each measured call, the other plugin's
//!   ADD and DEL run untimed, so both meet the same conditions.
//! - `cni_*/floor/*`: in the same conditions, a process that does nothing, and one that
//!   overwrites a 4 KiB page in place and syncs it: the least a call that keeps its change
//!   durable can cost (pdipam-cni pays one such sync per change; on a disk with a volatile write
//!   cache and no FUA each sync is a flush of the device's cache, which waits for what other
//!   writers queued before it).
//!
//! `cargo bench -p pdipam-cni` (host-local and ptp from `containernetworking-plugins`; without
//! them only pdipam-cni is measured directly).

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PDIPAM_CNI: &str = env!("CARGO_BIN_EXE_pdipam-cni");
const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

fn plugins_dir() -> Option<PathBuf> {
    ["/usr/lib/cni", "/opt/cni/bin"]
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join("host-local").is_file())
}

/// One call with `env` added to the CNI variables; returns its wall time.
fn call(plugin: &Path, verb: &str, container: &str, netns: &str, conf: &[u8]) -> Duration {
    let own = Path::new(PDIPAM_CNI).parent().unwrap();
    let cni_path = match plugins_dir() {
        Some(d) => format!("{}:{}", own.display(), d.display()),
        None => own.display().to_string(),
    };
    let start = Instant::now();
    let mut child = Command::new(plugin)
        .env_clear()
        .env("PATH", PATH)
        .env("CNI_COMMAND", verb)
        .env("CNI_CONTAINERID", container)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", cni_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the plugin");
    // A plugin may answer VERSION without reading its stdin: a closed pipe is no error here.
    let _ = child.stdin.take().unwrap().write_all(conf);
    let out = child.wait_with_output().unwrap();
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "{} {verb}: {}{}",
        plugin.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

fn state_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cni-bench-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An IPAM plugin and its network configuration (main plugin `ptp`, which the direct calls
/// ignore).
struct Ipam {
    name: &'static str,
    path: PathBuf,
    conf: Vec<u8>,
}

fn ipams() -> Vec<Ipam> {
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
            "routes": [{"dst": "0.0.0.0/0"}],
            "cooldownSeconds": 0,
        }
    });
    out.push(Ipam {
        name: "pdipam-cni",
        path: PathBuf::from(PDIPAM_CNI),
        conf: conf.to_string().into_bytes(),
    });
    match plugins_dir() {
        Some(plugins) => {
            let dir = state_dir("host-local");
            let conf = json!({
                "cniVersion": "1.0.0", "name": "bench", "type": "ptp",
                "ipam": {
                    "type": "host-local", "dataDir": dir,
                    "ranges": [[{"subnet": "10.0.0.0/16", "gateway": "10.0.0.1"}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                }
            });
            out.push(Ipam {
                name: "host-local",
                path: plugins.join("host-local"),
                conf: conf.to_string().into_bytes(),
            });
        }
        None => eprintln!("host-local not installed: measuring pdipam-cni only"),
    }
    out
}

/// Keeps the disk busy until dropped: 1 MiB writes as fast as it can over a 256 MiB file on the
/// state's file system, synced every 32 MiB.
struct BackgroundWriter {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl BackgroundWriter {
    fn start() -> Self {
        let path = state_dir("writer").join("layer");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut f = std::fs::File::create(&path).unwrap();
            let chunk = vec![0x5a_u8; 1 << 20];
            let mut written = 0u64;
            while !flag.load(Ordering::Relaxed) {
                f.write_all(&chunk).unwrap();
                written += 1;
                if written.is_multiple_of(32) {
                    f.sync_data().unwrap();
                }
                if written.is_multiple_of(256) {
                    // Over the same blocks again: a steady load, without the bursts of
                    // writeback that truncating a file being rewritten sets off.
                    std::io::Seek::rewind(&mut f).unwrap();
                }
            }
            written
        });
        // Let the writer fill the page cache and reach its steady state first.
        std::thread::sleep(Duration::from_secs(2));
        BackgroundWriter {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for BackgroundWriter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let mib = t.join().unwrap_or(0);
            eprintln!("background writer: {mib} MiB written");
        }
    }
}

/// The other plugin, whose calls run untimed between the measured ones: both plugins are
/// measured in the same conditions (the same files changing beside them, the same moments of
/// the background writer), not one after the other.
fn other(ipams: &[Ipam], i: usize) -> Option<&Ipam> {
    ipams
        .iter()
        .enumerate()
        .find(|(j, _)| *j != i)
        .map(|(_, o)| o)
}

/// ADD and DEL called directly.
fn direct(c: &mut Criterion, condition: &str, ipams: &[Ipam], n: &mut u64) {
    let mut group = c.benchmark_group(format!("cni_{condition}"));
    group.sample_size(30);
    group.warm_up_time(Duration::from_secs(1));
    if condition == "loaded" {
        group.measurement_time(Duration::from_secs(8));
    }
    let ns = "/var/run/netns/bench";
    floors(&mut group, ipams.get(1), ns, n);
    for ipam in ipams {
        if condition == "quiet" {
            // The floor: a call that starts the process and reads no state.
            group.bench_function(format!("{}/VERSION", ipam.name), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| call(&ipam.path, "VERSION", "v", ns, br#"{"cniVersion":"1.0.0"}"#))
                        .sum()
                })
            });
        }
    }
    for (i, ipam) in ipams.iter().enumerate() {
        let other = other(ipams, i);
        for measured in ["ADD", "DEL"] {
            group.bench_function(format!("{}/{measured}", ipam.name), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        *n += 1;
                        let id = format!("c{n}");
                        let add = call(&ipam.path, "ADD", &id, ns, &ipam.conf);
                        let del = call(&ipam.path, "DEL", &id, ns, &ipam.conf);
                        total += if measured == "ADD" { add } else { del };
                        if let Some(o) = other {
                            call(&o.path, "ADD", &id, ns, &o.conf);
                            call(&o.path, "DEL", &id, ns, &o.conf);
                        }
                    }
                    total
                })
            });
        }
    }
    group.finish();
}

/// The floors, in the same conditions as the plugins (the baseline's ADD and DEL run untimed
/// after each): `floor/spawn` starts a process that does nothing (`true`), `floor/spawn+sync`
/// one that overwrites a 4 KiB page of a file in place and syncs it (`dd ... conv=fdatasync`):
/// the least a call that keeps its change durable can take, what pdipam-cni pays beyond a
/// plugin that never syncs.
fn floors(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    baseline: Option<&Ipam>,
    ns: &str,
    n: &mut u64,
) {
    let page = state_dir("floor").join("page");
    std::fs::write(&page, vec![b' '; 4096]).unwrap();
    let of = format!("of={}", page.display());
    let programs: [(&str, Vec<&str>); 2] = [
        ("spawn", vec!["true"]),
        (
            "spawn+sync",
            vec![
                "dd",
                "if=/dev/zero",
                &of,
                "bs=4096",
                "count=1",
                "conv=notrunc,fdatasync",
                "status=none",
            ],
        ),
    ];
    for (name, argv) in programs {
        group.bench_function(format!("floor/{name}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let ok = Command::new(argv[0])
                        .args(&argv[1..])
                        .env("PATH", PATH)
                        .status()
                        .is_ok_and(|s| s.success());
                    total += start.elapsed();
                    assert!(ok, "{argv:?}");
                    if let Some(o) = baseline {
                        *n += 1;
                        let id = format!("f{n}");
                        call(&o.path, "ADD", &id, ns, &o.conf);
                        call(&o.path, "DEL", &id, ns, &o.conf);
                    }
                }
                total
            })
        });
    }
}

/// A network namespace that lives as long as the value.
struct Netns(String);

impl Netns {
    fn new(name: &str) -> Option<Self> {
        let ip = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .env("PATH", PATH)
                .output()
                .is_ok_and(|o| o.status.success())
        };
        ip(&["netns", "del", name]);
        ip(&["netns", "add", name]).then(|| Netns(name.into()))
    }

    fn path(&self) -> String {
        format!("/var/run/netns/{}", self.0)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.0])
            .env("PATH", PATH)
            .output();
    }
}

/// The namespaces for the calls through ptp: the bench's main thread (which spawns every
/// plugin) moves into a "host" namespace of its own, so the veths and routes ptp makes never
/// touch the machine's network; the pods' side is a second namespace.
fn enter_ptp_host() -> Option<(Netns, Netns)> {
    use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
    plugins_dir().filter(|d| d.join("ptp").is_file())?;
    let host = Netns::new("pdipam-bench-host")?;
    let pod = Netns::new("pdipam-bench-pod")?;
    let f = std::fs::File::open(host.path()).ok()?;
    move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&f),
        Some(LinkNameSpaceType::Network),
    )
    .ok()?;
    Some((host, pod))
}

/// An ADD and its DEL through ptp: what a pod's network costs a runtime.
fn through_ptp(c: &mut Criterion, condition: &str, ipams: &[Ipam], pod: &Netns, n: &mut u64) {
    let ptp = plugins_dir().unwrap().join("ptp");
    let mut group = c.benchmark_group(format!("ptp_{condition}"));
    group.sample_size(30);
    group.warm_up_time(Duration::from_secs(1));
    if condition == "loaded" {
        group.measurement_time(Duration::from_secs(8));
    }
    for (i, ipam) in ipams.iter().enumerate() {
        let other = other(ipams, i);
        group.bench_function(format!("{}/ADD+DEL", ipam.name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    *n += 1;
                    let id = format!("c{n}");
                    total += call(&ptp, "ADD", &id, &pod.path(), &ipam.conf);
                    total += call(&ptp, "DEL", &id, &pod.path(), &ipam.conf);
                    if let Some(o) = other {
                        call(&ptp, "ADD", &id, &pod.path(), &o.conf);
                        call(&ptp, "DEL", &id, &pod.path(), &o.conf);
                    }
                }
                total
            })
        });
    }
    group.finish();
}

fn calls(c: &mut Criterion) {
    let ipams = ipams();
    // A node already running 100 pods: the state every call reads and writes.
    for ipam in &ipams {
        for i in 0..100 {
            call(
                &ipam.path,
                "ADD",
                &format!("resident{i}"),
                "/var/run/netns/bench",
                &ipam.conf,
            );
        }
    }
    let mut n = 0u64;
    direct(c, "quiet", &ipams, &mut n);
    {
        let _writer = BackgroundWriter::start();
        direct(c, "loaded", &ipams, &mut n);
    }
    match enter_ptp_host() {
        Some((_host, pod)) => {
            through_ptp(c, "quiet", &ipams, &pod, &mut n);
            let _writer = BackgroundWriter::start();
            through_ptp(c, "loaded", &ipams, &pod, &mut n);
        }
        None => eprintln!("not root, or no ptp: the calls through ptp are not measured"),
    }
}

criterion_group!(benches, calls);
criterion_main!(benches);
