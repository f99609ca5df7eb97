//! The write path as the kernel sees it, through `strace`: how many syncs a call pays, and what
//! a call killed (or failed) exactly between its write and its sync leaves. `strace -e inject`
//! delivers the SIGKILL, or the error, as the plugin enters `fdatasync`: no hook in the plugin.

mod common;

use common::*;
use pdipam::persist::Generations;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};

/// Whether strace can trace here; otherwise the reason, and the tests skip (CI requires them
/// with `PDIPAM_CNI_STRACE_TESTS=require`).
fn strace_works() -> bool {
    let ok = Command::new("strace")
        .args(["-qq", "-e", "trace=none", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let why = "strace is missing or cannot trace here (apt-get install strace)";
        if std::env::var("PDIPAM_CNI_STRACE_TESTS").as_deref() == Ok("require") {
            panic!("PDIPAM_CNI_STRACE_TESTS=require, but: {why}");
        }
        eprintln!("skipped: {why}");
    }
    ok
}

/// One call of the plugin under strace with `options`; the reply, and what strace wrote.
fn traced(options: &[&str], verb: &str, container: &str, conf: &Value) -> (Reply, String) {
    let dir = std::env::temp_dir();
    let log = dir.join(format!("pdipam-strace-{}-{container}", std::process::id()));
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-o"])
        .arg(&log)
        .args(options)
        .arg(PLUGIN)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env_for(verb, container) {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start strace");
    feed(&mut child, conf.to_string().as_bytes());
    let out = child.wait_with_output().unwrap();
    let trace = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let reply = Reply {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    (reply, trace)
}

/// The sync system calls in a trace, by name.
fn syncs(trace: &str) -> BTreeMap<&'static str, usize> {
    let mut n = BTreeMap::new();
    for line in trace.lines() {
        let call = line
            .split_whitespace()
            .find(|w| w.contains('('))
            .and_then(|w| w.split('(').next())
            .unwrap_or("");
        for name in [
            "fsync",
            "fdatasync",
            "sync_file_range",
            "syncfs",
            "sync",
            "msync",
        ] {
            if call == name {
                *n.entry(name).or_insert(0) += 1;
            }
        }
    }
    n
}

fn conf(dir: &DataDir) -> Value {
    network(
        "1.0.0",
        dir.path(),
        json!({"prefixes": ["10.0.1.0/28", "10.0.1.16/28", "10.0.1.32/28"],
               "subnets": ["10.0.0.0/22"], "cooldownSeconds": 0}),
    )
}

const SYNC_CALLS: &[&str] = &[
    "-e",
    "trace=fsync,fdatasync,sync_file_range,syncfs,sync,msync",
];

#[test]
fn a_change_in_the_steady_state_costs_one_data_sync_and_no_directory_sync() {
    if !strace_works() {
        return;
    }
    let dir = DataDir::new("one-sync");
    let conf = conf(&dir);
    // The first calls create the network's directory and the checkpoint's two files.
    for c in ["w1", "w2", "w3"] {
        call("ADD", c, &conf).addresses();
    }
    for (verb, container) in [("ADD", "s1"), ("DEL", "s1"), ("ADD", "s2"), ("DEL", "w1")] {
        let (reply, trace) = traced(SYNC_CALLS, verb, container, &conf);
        assert!(reply.success, "{verb}: {reply:?}");
        assert_eq!(
            syncs(&trace),
            BTreeMap::from([("fdatasync", 1)]),
            "{verb} {container}: {trace}"
        );
    }
    // A call that changes nothing syncs nothing.
    for (verb, container) in [("CHECK", "s2"), ("DEL", "never-added"), ("ADD", "s2")] {
        let (reply, trace) = traced(SYNC_CALLS, verb, container, &conf);
        assert!(reply.success, "{verb}: {reply:?}");
        assert_eq!(syncs(&trace), BTreeMap::new(), "{verb}: {trace}");
    }
}

/// The addresses held, by container, from the newest generation (fully restored and verified).
fn held(data_dir: &Path) -> BTreeMap<String, String> {
    let (pods, quarantined) = stored_pods(data_dir, "ipv4");
    assert!(quarantined.is_empty());
    let mut seen = HashSet::new();
    pods.iter()
        .map(|p| {
            assert!(seen.insert(p.address), "{} twice", p.address);
            (p.key.container_id().to_owned(), p.address.to_string())
        })
        .collect()
}

/// Kills land as each call enters its sync, its new generation written but not yet durable: no
/// result is printed, the kernel still has the write (so the next call sees it, as it would
/// after any kill past the write), and every acknowledged change stays. Then the same moment
/// with the machine's power lost instead: the written file is left torn, and the next call
/// reads the generation before it, which holds every acknowledged change.
#[test]
fn kills_between_the_write_and_the_sync_lose_no_acknowledged_change() {
    if !strace_works() {
        return;
    }
    let kill_at_sync = [
        "-e",
        "trace=fdatasync",
        "-e",
        "inject=fdatasync:signal=KILL",
    ];
    let dir = DataDir::new("kill-at-sync");
    let conf = conf(&dir);
    let mut expected = BTreeMap::new();
    for c in ["r1", "r2", "r3"] {
        let a = call("ADD", c, &conf).addresses()[0].addr().to_string();
        expected.insert(c.to_owned(), a);
    }
    for round in 0..24 {
        let power_loss = round % 3 == 2;
        let adding = round % 2 == 0;
        let container = if adding {
            format!("k{round}")
        } else {
            expected.keys().next().unwrap().clone()
        };
        let verb = if adding { "ADD" } else { "DEL" };
        let files = checkpoint_files(dir.path(), "ipv4");
        let (gens, _) = Generations::open(&files[0]).unwrap();
        let target = if gens.newest_file() == Some(files[0].as_path()) {
            files[1].clone()
        } else {
            files[0].clone()
        };
        let before = std::fs::read(&target).unwrap_or_default();
        let (reply, trace) = traced(&kill_at_sync, verb, &container, &conf);
        assert!(!reply.success, "round {round}: not killed: {reply:?}");
        assert!(reply.stdout.is_empty(), "a result was printed: {reply:?}");
        assert!(trace.contains("+++ killed by SIGKILL +++"), "{trace}");
        if power_loss {
            // What a crash before the sync can leave: the new write's start over the old file.
            let written = std::fs::read(&target).unwrap();
            let mut torn = written[..written.len() / 3].to_vec();
            torn.extend_from_slice(before.get(torn.len()..).unwrap_or_default());
            std::fs::write(&target, torn).unwrap();
            assert_eq!(held(dir.path()), expected, "round {round}: torn");
        } else {
            // The kernel has the write: the change landed though it was never acknowledged.
            let now = held(dir.path());
            if adding {
                assert!(now.contains_key(&container), "round {round}: {now:?}");
                let mut without = now.clone();
                without.remove(&container);
                assert_eq!(without, expected);
            } else {
                let mut gone = expected.clone();
                gone.remove(&container);
                assert_eq!(now, gone, "round {round}");
            }
        }
        // The runtime retries: the same call, acknowledged this time.
        let retry = call(verb, &container, &conf);
        assert!(retry.success, "round {round}: {retry:?}");
        if adding {
            expected.insert(container.clone(), retry.addresses()[0].addr().to_string());
        } else {
            expected.remove(&container);
        }
        assert_eq!(held(dir.path()), expected, "round {round}: after the retry");
    }
    // A torn file was met and kept aside for inspection.
    assert!(
        Generations::damaged_copy(&checkpoint_files(dir.path(), "ipv4")[0]).exists()
            || Generations::damaged_copy(&checkpoint_files(dir.path(), "ipv4")[1]).exists()
    );
}

/// A sync that fails (as on a failing disk): code 5 naming the file, no result, and the state
/// is what it was: the written file is spoiled so that the change is not read back.
#[test]
fn a_failed_sync_is_an_io_error_and_changes_nothing() {
    if !strace_works() {
        return;
    }
    let fail_sync = ["-e", "trace=fdatasync", "-e", "inject=fdatasync:error=EIO"];
    let dir = DataDir::new("failed-sync");
    let conf = conf(&dir);
    for c in ["r1", "r2"] {
        call("ADD", c, &conf).addresses();
    }
    let before = held(dir.path());
    for (verb, container) in [("ADD", "f1"), ("DEL", "r1")] {
        let (reply, _) = traced(&fail_sync, verb, container, &conf);
        assert_eq!(reply.code(), 5, "{verb}: {reply:?}");
        assert!(reply.stdout.contains("ipv4.checkpoint"), "{reply:?}");
        assert!(reply.stdout.contains("fdatasync"), "{reply:?}");
        assert_eq!(held(dir.path()), before, "{verb} changed the state");
    }
    let a = call("ADD", "f1", &conf).addresses()[0].addr();
    assert!(!before.values().any(|v| *v == a.to_string()));
}
