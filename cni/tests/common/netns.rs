//! Network namespaces and Debian's CNI plugins for the tests that run pdipam-cni under them.
//! Each plugin runs inside a "host" namespace of the test's own, so the machine's own network
//! is never touched.

use super::{Reply, PLUGIN};
use ipnet::IpNet;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// The directory holding Debian's plugins, or why the tests cannot run.
pub fn prerequisites() -> Result<PathBuf, String> {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| format!("id: {e}"))?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err("not root".into());
    }
    let ip = Command::new("ip")
        .args(["netns", "list"])
        .env("PATH", PATH)
        .output();
    if !ip.is_ok_and(|o| o.status.success()) {
        return Err("`ip netns` does not work (iproute2 missing?)".into());
    }
    let dirs = std::env::var("PDIPAM_CNI_PLUGINS_DIR")
        .map(|d| vec![PathBuf::from(d)])
        .unwrap_or_else(|_| vec!["/usr/lib/cni".into(), "/opt/cni/bin".into()]);
    dirs.into_iter()
        .find(|d| d.join("ptp").is_file() && d.join("bridge").is_file())
        .ok_or_else(|| {
            "no ptp and bridge plugins (apt-get install containernetworking-plugins)".into()
        })
}

/// The plugin directory, or `None` after saying why the test is skipped.
pub fn plugins() -> Option<PathBuf> {
    match prerequisites() {
        Ok(dir) => Some(dir),
        Err(why) if std::env::var("PDIPAM_CNI_NETNS_TESTS").as_deref() == Ok("require") => {
            panic!("PDIPAM_CNI_NETNS_TESTS=require, but: {why}")
        }
        Err(why) => {
            eprintln!("skipped: {why}");
            None
        }
    }
}

pub fn ip(args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(args)
        .env("PATH", PATH)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace, deleted on drop.
pub struct Netns(pub String);

impl Netns {
    pub fn new(tag: &str) -> Self {
        let name = format!("pdipam-{}-{tag}", std::process::id());
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .env("PATH", PATH)
            .output();
        ip(&["netns", "add", &name]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        Netns(name)
    }

    pub fn path(&self) -> String {
        format!("/var/run/netns/{}", self.0)
    }

    /// The addresses of `dev` in this namespace, as iproute2 reports them.
    pub fn addresses(&self, dev: &str) -> Vec<IpNet> {
        let text = ip(&["-n", &self.0, "-j", "addr", "show", "dev", dev]);
        let v: Value = serde_json::from_str(&text).unwrap();
        v[0]["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["scope"] == "global")
            .map(|a| {
                format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"])
                    .parse()
                    .unwrap()
            })
            .collect()
    }

    /// Every global address of every device in this namespace.
    pub fn all_addresses(&self) -> Vec<IpNet> {
        let text = ip(&["-n", &self.0, "-j", "addr", "show"]);
        let v: Value = serde_json::from_str(&text).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["ifname"].as_str())
            .flat_map(|d| self.addresses(d))
            .collect()
    }

    pub fn has_link(&self, dev: &str) -> bool {
        Command::new("ip")
            .args(["-n", &self.0, "link", "show", "dev", dev])
            .env("PATH", PATH)
            .output()
            .unwrap()
            .status
            .success()
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

/// Runs `plugin` (a path) inside `host` for `verb` on the pod namespace `pod`.
pub fn run_plugin(
    plugins: &Path,
    plugin: &Path,
    host: &Netns,
    verb: &str,
    container: &str,
    pod: Option<&Netns>,
    conf: &Value,
) -> Reply {
    run_plugin_with_args(plugins, plugin, host, verb, container, pod, conf, None)
}

/// [`run_plugin`] with `CNI_ARGS`.
#[allow(clippy::too_many_arguments)]
pub fn run_plugin_with_args(
    plugins: &Path,
    plugin: &Path,
    host: &Netns,
    verb: &str,
    container: &str,
    pod: Option<&Netns>,
    conf: &Value,
    cni_args: Option<&str>,
) -> Reply {
    let own_dir = Path::new(PLUGIN).parent().unwrap();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &host.0])
        .arg(plugin)
        .env_clear()
        .env("PATH", PATH)
        .env("CNI_COMMAND", verb)
        .env(
            "CNI_PATH",
            format!("{}:{}", own_dir.display(), plugins.display()),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if !container.is_empty() {
        cmd.env("CNI_CONTAINERID", container)
            .env("CNI_IFNAME", "eth0");
    }
    if let Some(pod) = pod {
        cmd.env("CNI_NETNS", pod.path());
    }
    if let Some(args) = cni_args {
        cmd.env("CNI_ARGS", args);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(conf.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Reply {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Makes `127.0.0.1:port` inside `ns` reach `127.0.0.1:port` of the test's own namespace, so
/// that a plugin running in `ns` talks to a server the test started on loopback (etcd), with
/// the same URL and no traffic off loopback. A thread enters `ns` only to bind the listener,
/// then returns to the test's namespace, where every relayed connection is opened; relaying
/// threads end with their connections.
pub fn bridge_loopback(ns: &Netns, port: u16) {
    use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
    use std::net::{TcpListener, TcpStream};
    let target = std::fs::File::open(ns.path()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let home = std::fs::File::open("/proc/thread-self/ns/net").unwrap();
        let enter = |f: &std::fs::File| {
            move_into_link_name_space(
                std::os::fd::AsFd::as_fd(f),
                Some(LinkNameSpaceType::Network),
            )
            .unwrap()
        };
        enter(&target);
        let listener = TcpListener::bind(("127.0.0.1", port));
        enter(&home);
        let listener = listener.unwrap();
        tx.send(()).unwrap();
        for inbound in listener.incoming() {
            let Ok(inbound) = inbound else { continue };
            let Ok(outbound) = TcpStream::connect(("127.0.0.1", port)) else {
                continue;
            };
            for (mut from, mut to) in [
                (inbound.try_clone().unwrap(), outbound.try_clone().unwrap()),
                (outbound, inbound),
            ] {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
    rx.recv().unwrap();
}
