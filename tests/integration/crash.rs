//! Crash test: a child process assigns and releases pods through a `WriteThroughNode` and is
//! killed with SIGKILL at random moments, 200 times. After each kill the checkpoint must restore
//! to a state that passes `verify()`, holds every allocation the child acknowledged (reported on
//! its stdout pipe before the kill) and nothing that was never requested.
//!
//! The child is this test binary itself, re-run with `PDIPAM_CRASH_CHILD_DIR` set: then
//! `crash_child_entry` runs the child loop instead of returning.

use pdipam::{
    persist::{NodeCheckpoint, WriteThroughNode},
    Clock, Node, PodKey, PodRequest, SystemClock,
};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const CHILD_ENV: &str = "PDIPAM_CRASH_CHILD_DIR";
const KEYS: u64 = 120;

fn key(n: u64) -> PodKey {
    PodKey::new("net", format!("ctr-{n}"), "eth0")
}

fn fresh_node() -> Node {
    crate::node_concurrency::nine_prefix_node(Arc::new(SystemClock), Duration::ZERO)
}

/// The child: restore (or start), then assign and release at random forever, saying on stdout
/// what it is about to do (`W`) and what completed (`A key addr`, `R key`).
fn child(dir: &Path) -> ! {
    let path = dir.join("node.json");
    let node = match NodeCheckpoint::read(&path) {
        Ok(cp) => cp.restore("node.json", Arc::new(SystemClock)).unwrap().node,
        Err(_) => fresh_node(),
    };
    let w = WriteThroughNode::new(node, &path, None).unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY").unwrap();
    out.flush().unwrap();
    let mut rng = SystemClock.now().as_unix_nanos() | 1;
    loop {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let n = (rng >> 8) % KEYS;
        if (rng >> 40) & 1 == 0 {
            writeln!(out, "W assign {n}").unwrap();
            out.flush().unwrap();
            if let Ok(a) = w.assign(PodRequest::new(key(n))) {
                writeln!(out, "A {n} {}", a.address).unwrap();
            }
        } else {
            writeln!(out, "W release {n}").unwrap();
            out.flush().unwrap();
            if w.release(&key(n)).is_ok() {
                writeln!(out, "R {n}").unwrap();
            }
        }
        out.flush().unwrap();
    }
}

#[test]
fn crash_child_entry() {
    // Only a child process started by the test below does anything here.
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(Path::new(&dir));
    }
}

#[test]
fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    // SIGKILL kills the process, not the machine: the page cache survives it, so a tmpfs
    // (where fsync is nearly free) tests the same thing many times faster than a disk.
    let base = Path::new("/dev/shm");
    let base = if base.is_dir() {
        base.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("pdipam-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let exe = std::env::current_exe().unwrap();
    // What the child acknowledged: key -> address.
    let mut acked: BTreeMap<u64, IpAddr> = BTreeMap::new();
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut total_ops = 0usize;
    let mut acknowledged_lines = 0usize;
    for round in 0..200 {
        let mut child = Command::new(&exe)
            .args([
                "crash::crash_child_entry",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // The kill comes at a random moment of the child's work, not of its start-up.
        let mut lines: Vec<String> = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                panic!("round {round}: the child did not start within 60 s");
            };
            // The harness may print "test crash::crash_child_entry ... " on the same line.
            let ready = line.ends_with("READY");
            lines.push(line);
            if ready {
                break;
            }
        }
        // Then it gets through a random number of acknowledged operations (so every round does
        // work, however slow the machine), and dies at a random moment of the next ones.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let wanted = 1 + (rng % 24) as usize;
        let mut seen = 0;
        while seen < wanted {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                panic!("round {round}: the child acknowledged nothing for 60 s");
            };
            seen += usize::from(line.starts_with("A ") || line.starts_with("R "));
            lines.push(line);
        }
        acknowledged_lines += wanted;
        std::thread::sleep(Duration::from_micros(rng / 24 % 2000));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        reader.join().unwrap();
        lines.extend(rx.try_iter());
        let mut in_flight: Option<(String, u64)> = None;
        for line in &lines {
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.as_slice() {
                ["W", op, n] => in_flight = Some((op.to_string(), n.parse().unwrap())),
                ["A", n, addr] => {
                    // Only fresh assignments count as work (a repeated key writes nothing).
                    if acked
                        .insert(n.parse().unwrap(), addr.parse().unwrap())
                        .is_none()
                    {
                        total_ops += 1;
                    }
                    in_flight = None;
                }
                ["R", n] => {
                    acked.remove(&n.parse::<u64>().unwrap());
                    total_ops += 1;
                    in_flight = None;
                }
                _ => {} // the test harness's own lines, or a line cut by the kill
            }
        }
        let path = dir.join("node.json");
        let restored = NodeCheckpoint::read(&path)
            .unwrap_or_else(|e| panic!("round {round}: {e}"))
            .restore("node.json", Arc::new(SystemClock))
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        restored.node.verify().unwrap();
        assert!(restored.quarantined.is_empty());
        let on_disk: BTreeMap<u64, IpAddr> = restored
            .node
            .pods()
            .into_iter()
            .map(|p| (p.key.container_id()[4..].parse().unwrap(), p.address))
            .collect();
        // Every acknowledged allocation survived, at its address...
        for (n, addr) in &acked {
            let in_flight_release = in_flight.as_ref() == Some(&("release".to_string(), *n));
            match on_disk.get(n) {
                Some(a) => assert_eq!(a, addr, "round {round}: key {n} moved"),
                None => assert!(
                    in_flight_release,
                    "round {round}: acknowledged key {n} lost"
                ),
            }
        }
        // ...and nothing is there that was not acknowledged, except the request in flight.
        for n in on_disk.keys() {
            let in_flight_assign = in_flight.as_ref() == Some(&("assign".to_string(), *n));
            assert!(
                acked.contains_key(n) || in_flight_assign,
                "round {round}: key {n} invented"
            );
        }
        // The disk is the truth from here on (an in-flight operation may have landed).
        acked = on_disk;
    }
    eprintln!("{total_ops} acknowledged assignments and releases over 200 kills");
    // Not vacuous: every round waited for its operations before the kill (no timing involved).
    assert!(acknowledged_lines >= 200 && total_ops > 0);
    let _ = std::fs::remove_dir_all(&dir);
}
