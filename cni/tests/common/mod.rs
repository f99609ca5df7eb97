//! Running `pdipam-cni` as a runtime does: one process per call, the verb in the environment,
//! the configuration on stdin.

#![allow(dead_code)] // each test binary uses its own part of this

pub mod netns;

use ipnet::IpNet;
use pdipam::{persist::Generations, PodInfo, SystemClock};
use serde_json::{json, Value};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;

pub const PLUGIN: &str = env!("CARGO_BIN_EXE_pdipam-cni");

/// A fresh data directory under the target directory, removed on drop.
pub struct DataDir(pub PathBuf);

impl DataDir {
    pub fn new(name: &str) -> Self {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("cni-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        DataDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A network configuration with an `ipam` section of pdipam-cni over `data_dir`.
pub fn network(version: &str, data_dir: &Path, ipam: Value) -> Value {
    let mut ipam = ipam;
    ipam["type"] = json!("pdipam-cni");
    ipam["dataDir"] = json!(data_dir);
    json!({"cniVersion": version, "name": "pods", "type": "ptp", "ipam": ipam})
}

/// One call's environment.
pub fn env_for(verb: &str, container: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CNI_COMMAND", verb.to_owned()),
        ("CNI_CONTAINERID", container.to_owned()),
        ("CNI_NETNS", format!("/var/run/netns/{container}")),
        ("CNI_IFNAME", "eth0".to_owned()),
        ("CNI_PATH", "/nonexistent".to_owned()),
        (
            "CNI_ARGS",
            format!("K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-{container}"),
        ),
    ]
}

/// What one call printed and how it ended.
#[derive(Debug)]
pub struct Reply {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.stdout))
    }

    /// The error code of a failed call.
    pub fn code(&self) -> u64 {
        assert!(!self.success, "expected a failure, got {}", self.stdout);
        self.json()["code"].as_u64().expect("an error object")
    }

    /// The addresses of a successful ADD.
    pub fn addresses(&self) -> Vec<IpNet> {
        assert!(self.success, "ADD failed: {}", self.stdout);
        self.json()["ips"]
            .as_array()
            .expect("ips")
            .iter()
            .map(|ip| ip["address"].as_str().unwrap().parse().unwrap())
            .collect()
    }
}

fn finish(o: Output) -> Reply {
    Reply {
        success: o.status.success(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Writes `stdin` to a started call and closes it: the call goes ahead.
pub fn feed(child: &mut Child, stdin: &[u8]) {
    child.stdin.take().unwrap().write_all(stdin).unwrap();
}

/// Runs the plugin with exactly `env` (nothing inherited) and `stdin`.
pub fn call_with(env: &[(&str, String)], stdin: &[u8]) -> Reply {
    let mut child = spawn(env);
    feed(&mut child, stdin);
    finish(child.wait_with_output().unwrap())
}

/// Runs `verb` for `container` with `conf`.
pub fn call(verb: &str, container: &str, conf: &Value) -> Reply {
    call_with(&env_for(verb, container), conf.to_string().as_bytes())
}

/// Starts the plugin with `env`, its stdin still open (the call starts when it is closed).
pub fn spawn(env: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(PLUGIN);
    cmd.env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start pdipam-cni")
}

/// The two files of network `pods`'s checkpoint of `family` ("ipv4" or "ipv6"): the newest
/// generation is in one of them.
pub fn checkpoint_files(data_dir: &Path, family: &str) -> [PathBuf; 2] {
    Generations::files_of(&data_dir.join("pods").join(format!("{family}.checkpoint")))
}

/// Flips one bit in the middle of each existing file of network `pods`'s IPv4 checkpoint, so
/// that no generation opens; returns the files' new bytes.
pub fn corrupt_ipv4_checkpoint(data_dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for path in checkpoint_files(data_dir, "ipv4") {
        let Ok(mut bytes) = std::fs::read(&path) else {
            continue;
        };
        let at = bytes.trim_ascii_end().len() / 2;
        bytes[at] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        out.push((path, bytes));
    }
    assert!(!out.is_empty(), "no checkpoint to corrupt");
    out
}

/// The pods of the network's checkpoint of `family` ("ipv4" or "ipv6"), newest generation,
/// after a full restore (which refuses duplicate addresses or keys) and the node's invariant
/// check.
pub fn stored_pods(data_dir: &Path, family: &str) -> (Vec<PodInfo>, Vec<PodInfo>) {
    let path = data_dir.join("pods").join(format!("{family}.checkpoint"));
    let restored = Generations::open(&path)
        .unwrap()
        .1
        .unwrap_or_else(|| panic!("{}: no checkpoint", path.display()))
        .restore("test", Arc::new(SystemClock))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    restored.node.verify().unwrap();
    (restored.node.pods(), restored.node.quarantined())
}

/// Whether `address` lies in one of `blocks`.
pub fn within(address: IpAddr, blocks: &[&str]) -> bool {
    blocks
        .iter()
        .any(|b| b.parse::<IpNet>().unwrap().contains(&address))
}
