//! A real etcd for tests (feature `testing`, not part of the stable API): one member or a
//! cluster, started on free loopback ports with data directories of their own under the system's
//! temporary directory, stopped by their pids (and the directories removed) when dropped, passed
//! or failed. Members can be killed, stopped and started again from their data.
//!
//! Where `etcd` is not installed, [`EtcdServer::start`] says so and returns `None`, unless
//! `PDIPAM_FLEET_TESTS=require` (as `.ci/run` sets), where a missing etcd panics.

use crate::Etcd;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Process {
    name: String,
    client: String,
    peer: String,
    child: Option<Child>,
}

/// A running etcd (one member or a cluster).
pub struct EtcdServer {
    dir: PathBuf,
    cluster: String,
    members: Vec<Process>,
    /// The first member's client URL.
    pub endpoint: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn installed() -> bool {
    if Command::new("etcd").arg("--version").output().is_ok() {
        return true;
    }
    let why = "etcd is not installed (Debian: apt-get install etcd-server)";
    if std::env::var("PDIPAM_FLEET_TESTS").as_deref() == Ok("require") {
        panic!("{why}, and PDIPAM_FLEET_TESTS=require");
    }
    eprintln!("skipped: {why}");
    false
}

impl EtcdServer {
    /// One member, or None (having said why) when etcd is not installed and not required.
    pub fn start(name: &str) -> Option<Self> {
        Self::start_cluster(name, 1)
    }

    /// A cluster of `size` members on loopback.
    pub fn start_cluster(name: &str, size: usize) -> Option<Self> {
        if !installed() {
            return None;
        }
        let dir = std::env::temp_dir().join(format!("pdipam-etcd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let members: Vec<Process> = (0..size)
            .map(|i| Process {
                name: format!("m{i}"),
                client: format!("http://127.0.0.1:{}", free_port()),
                peer: format!("http://127.0.0.1:{}", free_port()),
                child: None,
            })
            .collect();
        let cluster = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer))
            .collect::<Vec<_>>()
            .join(",");
        let endpoint = members[0].client.clone();
        let mut server = EtcdServer {
            dir,
            cluster,
            members,
            endpoint,
        };
        for i in 0..size {
            server.spawn(i);
        }
        server.wait_until_serving();
        Some(server)
    }

    fn spawn(&mut self, i: usize) {
        let m = &self.members[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}.log", m.name)))
            .unwrap();
        let child = Command::new("etcd")
            .args(["--name", &m.name, "--data-dir"])
            .arg(self.dir.join(&m.name))
            .args(["--listen-client-urls", &m.client])
            .args(["--advertise-client-urls", &m.client])
            .args(["--listen-peer-urls", &m.peer])
            .args(["--initial-advertise-peer-urls", &m.peer])
            .args(["--initial-cluster", &self.cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd starts");
        self.members[i].child = Some(child);
    }

    /// The first member's client port (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a client URL ends with its port")
    }

    /// Every member's client URL.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client.clone()).collect()
    }

    fn wait_until_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let rt = tokio::runtime::Runtime::new().unwrap();
        loop {
            let up = rt.block_on(async {
                let etcd = Etcd::connect(&self.endpoints(), Duration::from_secs(1)).await?;
                etcd.call(etcd.client().put("health", "ok", None)).await
            });
            if up.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd at {:?} did not start: {}",
                self.endpoints(),
                std::fs::read_to_string(self.dir.join("m0.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The first member's pid.
    pub fn pid(&self) -> u32 {
        self.members[0].child.as_ref().expect("running").id()
    }

    /// Sends `signal` (`STOP`, `CONT`, ...) to the first member.
    pub fn signal(&self, signal: &str) {
        signal_pid(self.pid(), signal);
    }

    /// Kills member `i` with SIGKILL (its data directory stays).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts member `i` again from its data directory and waits until the cluster answers.
    pub fn restart(&mut self, i: usize) {
        self.spawn(i);
        self.wait_until_serving();
    }

    /// The member that leads, by its index.
    pub async fn leader(&self) -> usize {
        for (i, m) in self.members.iter().enumerate() {
            if m.child.is_none() {
                continue;
            }
            let Ok(etcd) =
                Etcd::connect(std::slice::from_ref(&m.client), Duration::from_secs(1)).await
            else {
                continue;
            };
            if let Ok(status) = etcd.call(etcd.client().status()).await {
                let me = status.header().map(|h| h.member_id());
                if me == Some(status.leader()) {
                    return i;
                }
            }
        }
        panic!("no member leads");
    }

    /// A connection to every member, held to `timeout`.
    ///
    /// # Panics
    /// When the test's etcd does not answer.
    pub async fn connect(&self, timeout: Duration) -> Etcd {
        Etcd::connect(&self.endpoints(), timeout)
            .await
            .expect("the test's etcd answers")
    }
}

fn signal_pid(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kill -{signal} {pid}");
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(mut child) = m.child.take() {
                // A stopped member is continued first, so that it dies and is reaped at once.
                let _ = Command::new("kill")
                    .args(["-CONT", &child.id().to_string()])
                    .status();
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
