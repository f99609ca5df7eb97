//! A real etcd for tests (feature `testing`, not part of the stable API): one member or a
//! cluster, started on free loopback ports with data directories of their own under the system's
//! temporary directory, stopped by their pids (and the directories removed) when dropped, passed
//! or failed. Members can be killed, stopped and started again from their data.
//!
//! Where `etcd` is not installed, [`EtcdServer::start`] says so and returns `None`, unless
//! `PDIPAM_FLEET_TESTS=require` (as `.ci/run` sets), where a missing etcd panics.

use crate::{Credentials, Etcd};
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
    /// The certificates of a TLS etcd ([`EtcdServer::start_tls`]).
    pub certs: Option<TestCerts>,
}

/// Certificates made for one TLS etcd (PEM files in its directory): a CA, etcd's server
/// certificate for 127.0.0.1, a client certificate that CA signed, and a client certificate
/// signed by another CA, which etcd must refuse.
pub struct TestCerts {
    /// The CA that signed the server's and the client's certificates.
    pub ca: PathBuf,
    /// etcd's certificate and key.
    pub server: (PathBuf, PathBuf),
    /// A client certificate and key the CA signed (common name `pdipam-node`).
    pub client: (PathBuf, PathBuf),
    /// A client certificate and key of another CA.
    pub rogue: (PathBuf, PathBuf),
}

impl TestCerts {
    fn generate(dir: &std::path::Path) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca = |name: &str| {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            let key = KeyPair::generate().unwrap();
            let cert = params.self_signed(&key).unwrap();
            (cert, Issuer::new(params, key))
        };
        let write = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let leaf = |issuer: &Issuer<'_, KeyPair>, names: Vec<String>, cn: &str, file: &str| {
            let mut params = CertificateParams::new(names).unwrap();
            params.distinguished_name.push(DnType::CommonName, cn);
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, issuer).unwrap();
            (
                write(&format!("{file}.pem"), cert.pem()),
                write(&format!("{file}-key.pem"), key.serialize_pem()),
            )
        };
        let (ca_cert, issuer) = ca("pdipam test CA");
        let (_, rogue_issuer) = ca("another CA");
        TestCerts {
            ca: write("ca.pem", ca_cert.pem()),
            server: leaf(
                &issuer,
                vec!["127.0.0.1".into(), "localhost".into()],
                "etcd",
                "server",
            ),
            client: leaf(&issuer, Vec::new(), "pdipam-node", "client"),
            rogue: leaf(&rogue_issuer, Vec::new(), "pdipam-node", "rogue"),
        }
    }

    /// The credentials of the client certificate the CA signed.
    pub fn credentials(&self) -> Credentials {
        Credentials::new()
            .ca_file(&self.ca)
            .client_cert(&self.client.0, &self.client.1)
    }
}

/// A loopback URL where nothing listens (a port that was free a moment ago): an etcd that is
/// not there.
pub fn unused_endpoint() -> String {
    format!("http://127.0.0.1:{}", free_port())
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
        Self::start_with(name, size, false)
    }

    /// One member serving clients over TLS only, requiring a client certificate its CA
    /// signed (`--client-cert-auth`): see [`EtcdServer::certs`].
    pub fn start_tls(name: &str) -> Option<Self> {
        Self::start_with(name, 1, true)
    }

    fn start_with(name: &str, size: usize, tls: bool) -> Option<Self> {
        if !installed() {
            return None;
        }
        let dir = std::env::temp_dir().join(format!("pdipam-etcd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let members: Vec<Process> = (0..size)
            .map(|i| Process {
                name: format!("m{i}"),
                client: format!(
                    "{}://127.0.0.1:{}",
                    if tls { "https" } else { "http" },
                    free_port()
                ),
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
        let certs = tls.then(|| TestCerts::generate(&dir));
        let mut server = EtcdServer {
            dir,
            cluster,
            members,
            endpoint,
            certs,
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
        let mut command = Command::new("etcd");
        if let Some(c) = &self.certs {
            command
                .arg("--cert-file")
                .arg(&c.server.0)
                .arg("--key-file")
                .arg(&c.server.1)
                .arg("--trusted-ca-file")
                .arg(&c.ca)
                .arg("--client-cert-auth");
        }
        let child = command
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
                let etcd = Etcd::connect_with(
                    &self.endpoints(),
                    Duration::from_secs(1),
                    &self.credentials(),
                )
                .await?;
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

    /// What a client needs to connect: none for a plain etcd; the CA and the signed client
    /// certificate for a TLS one.
    pub fn credentials(&self) -> Credentials {
        self.certs
            .as_ref()
            .map_or_else(Credentials::new, TestCerts::credentials)
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
        Etcd::connect_with(&self.endpoints(), timeout, &self.credentials())
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
