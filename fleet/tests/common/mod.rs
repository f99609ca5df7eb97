//! A real etcd for the tests: started on free loopback ports with a data directory of its own,
//! stopped by its pid (and its directory removed) when the test is done, passed or failed.
//!
//! Where `etcd` is not installed the tests say so and pass, unless `PDIPAM_FLEET_TESTS=require`
//! (as `.ci/run` sets), where a missing etcd fails them.

#![allow(dead_code)] // each test binary uses its own part of this

use pdipam_fleet::Etcd;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct EtcdServer {
    child: Child,
    dir: PathBuf,
    pub endpoint: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl EtcdServer {
    /// Starts etcd, or returns None (having said why) when it is not installed and not required.
    pub fn start(name: &str) -> Option<Self> {
        if Command::new("etcd").arg("--version").output().is_err() {
            let why = "etcd is not installed (Debian: apt-get install etcd-server)";
            if std::env::var("PDIPAM_FLEET_TESTS").as_deref() == Ok("require") {
                panic!("{why}, and PDIPAM_FLEET_TESTS=require");
            }
            eprintln!("skipped: {why}");
            return None;
        }
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("etcd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (client, peer) = (free_port(), free_port());
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = std::fs::File::create(dir.join("etcd.log")).unwrap();
        let child = Command::new("etcd")
            .args(["--name", "n1", "--data-dir"])
            .arg(dir.join("data"))
            .args(["--listen-client-urls", &endpoint])
            .args(["--advertise-client-urls", &endpoint])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("n1={peer_url}")])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd starts");
        let server = EtcdServer {
            child,
            dir,
            endpoint,
        };
        server.wait_until_serving();
        Some(server)
    }

    fn wait_until_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let rt = tokio::runtime::Runtime::new().unwrap();
        loop {
            let up = rt.block_on(async {
                let etcd =
                    Etcd::connect(std::slice::from_ref(&self.endpoint), Duration::from_secs(1))
                        .await?;
                etcd.call(etcd.client().get("health", None)).await
            });
            if up.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd at {} did not start: {}",
                self.endpoint,
                std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`STOP`, `CONT`, ...) to the server.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -{signal} {}", self.pid());
    }

    pub async fn connect(&self, timeout: Duration) -> Etcd {
        Etcd::connect(std::slice::from_ref(&self.endpoint), timeout)
            .await
            .expect("the test's etcd answers")
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        // A stopped server would not die of SIGKILL until continued on some kernels' views of
        // the test; SIGKILL ends it either way, and wait() reaps it.
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
