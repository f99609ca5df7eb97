//! What the fleet's tests share: the real etcd of `pdipam_fleet::testing` (where `etcd` is not
//! installed the tests say so and pass, unless `PDIPAM_FLEET_TESTS=require`, as `.ci/run` sets),
//! a runtime, and the ways members join and fill a subnet.

#![allow(dead_code)] // each test binary uses its own part of this

use ipnet::IpNet;
use pdipam::SubnetError;
pub use pdipam_fleet::testing::EtcdServer;
use pdipam_fleet::{Etcd, FleetConfig, FleetError, FleetSubnet, Keyspace, Member};
use std::time::Duration;

pub fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// The runtime the tests run on: two workers, as the machine has two cores.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Node `name` joins (a 10 s lease) and opens the fleet subnet `cidr`.
pub async fn member(
    etcd: &Etcd,
    keys: &Keyspace,
    cidr: IpNet,
    name: &str,
) -> (Member, FleetSubnet) {
    let me = Member::join(etcd, keys, name, Duration::from_secs(10))
        .await
        .unwrap();
    let subnet = FleetSubnet::open(etcd, keys, cidr, &me).await.unwrap();
    (me, subnet)
}

/// Connects to `server` (5 s timeout) and creates the fleet subnet `config` under the empty
/// root.
pub async fn fleet(server: &EtcdServer, config: &FleetConfig) -> (Etcd, Keyspace) {
    let etcd = server.connect(Duration::from_secs(5)).await;
    let keys = Keyspace::new("");
    FleetSubnet::init(&etcd, &keys, config).await.unwrap();
    (etcd, keys)
}

/// What [`claim_until_full`] saw.
pub struct Fill {
    /// Every acknowledged claim.
    pub claims: Vec<IpNet>,
    /// Calls that failed with etcd unavailable (each retried).
    pub failed: usize,
    /// Commit transactions sent, and those lost to a conflict.
    pub transactions: (u64, u64),
    /// Chunk values the members' refreshes read, first reads included.
    pub chunks_read: u64,
}

/// `members` nodes (`node-0000`, ...) claim /28s of `cidr` at once until it is full. A call
/// that finds etcd unavailable changed nothing, so the member asks again after a pause, as any
/// caller does; every other error fails the test. The members stay registered until all are
/// done.
pub async fn claim_until_full(etcd: &Etcd, keys: &Keyspace, cidr: IpNet, members: usize) -> Fill {
    let pause = Duration::from_millis(100);
    let mut tasks = Vec::new();
    for n in 0..members {
        let (etcd, keys) = (etcd.clone(), keys.clone());
        tasks.push(tokio::spawn(async move {
            let name = format!("node-{n:04}");
            let me = loop {
                match Member::join(&etcd, &keys, &name, Duration::from_secs(60)).await {
                    Ok(m) => break m,
                    Err(_) => tokio::time::sleep(pause).await,
                }
            };
            let subnet = loop {
                match FleetSubnet::open(&etcd, &keys, cidr, &me).await {
                    Ok(s) => break s,
                    Err(_) => tokio::time::sleep(pause).await,
                }
            };
            let (mut mine, mut failed) = (Vec::new(), 0);
            loop {
                match subnet.allocate_prefix(28).await {
                    Ok(p) => mine.push(p),
                    Err(FleetError::Subnet(SubnetError::InsufficientCidrBlocks { .. })) => break,
                    Err(FleetError::Timeout { .. } | FleetError::Unavailable { .. }) => {
                        failed += 1;
                        tokio::time::sleep(pause).await;
                    }
                    Err(e) => panic!("{name}: {e}"),
                }
            }
            (
                me,
                mine,
                failed,
                subnet.transactions(),
                subnet.chunks_read(),
            )
        }));
    }
    let mut fill = Fill {
        claims: Vec::new(),
        failed: 0,
        transactions: (0, 0),
        chunks_read: 0,
    };
    let mut registered = Vec::new();
    for t in tasks {
        let (me, mine, failed, (sent, lost), read) = t.await.unwrap();
        fill.chunks_read += read;
        fill.claims.extend(mine);
        fill.failed += failed;
        fill.transactions.0 += sent;
        fill.transactions.1 += lost;
        registered.push(me);
    }
    fill
}
