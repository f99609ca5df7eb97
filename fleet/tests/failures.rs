//! The fleet when etcd fails under it: a member killed with SIGKILL and started again from its
//! data, a three-member cluster losing its leader. Members claim all the while; at the end
//! etcd holds exactly the claims that were acknowledged: none lost, none twice, none extra.

mod common;

use common::{claim_until_full, runtime, EtcdServer, Fill};
use ipnet::IpNet;
use pdipam_fleet::{verify, Etcd, FleetConfig, FleetSubnet, Keyspace};
use std::collections::HashSet;
use std::time::Duration;

/// A /20 of 16 chunks, which 16 members start filling in the background.
const CIDR: &str = "10.0.0.0/20";

type Claims = tokio::task::JoinHandle<Fill>;

fn start_claims(rt: &tokio::runtime::Runtime, etcd: &Etcd, keys: &Keyspace, cidr: IpNet) -> Claims {
    rt.block_on(FleetSubnet::init(
        etcd,
        keys,
        &FleetConfig::new(cidr).chunk_len(24),
    ))
    .unwrap();
    let (etcd, keys) = (etcd.clone(), keys.clone());
    rt.spawn(async move { claim_until_full(&etcd, &keys, cidr, 16).await })
}

async fn check_exactly(etcd: &Etcd, keys: &Keyspace, cidr: IpNet, acknowledged: &[IpNet]) {
    let distinct: HashSet<IpNet> = acknowledged.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        acknowledged.len(),
        "a block was acknowledged twice"
    );
    // With a member down, a request the client sends to it fails: ask again, as a caller does.
    let mut attempts = 0;
    let report = loop {
        match verify(etcd, keys, cidr).await {
            Ok(r) => break r,
            Err(e) if attempts < 50 => {
                attempts += 1;
                eprintln!("verify: {e}; again");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    let held: HashSet<IpNet> = report.runs.iter().map(|r| r.cidr).collect();
    assert_eq!(held, distinct, "etcd holds exactly the acknowledged claims");
}

#[test]
fn etcd_killed_and_restarted_during_claims_loses_and_duplicates_nothing() {
    let Some(mut server) = EtcdServer::start("sigkill") else {
        return;
    };
    let rt = runtime();
    let (etcd, keys, cidr) = (
        rt.block_on(server.connect(Duration::from_secs(2))),
        Keyspace::new(""),
        CIDR.parse().unwrap(),
    );
    let claims = start_claims(&rt, &etcd, &keys, cidr);
    std::thread::sleep(Duration::from_millis(400));
    server.kill(0);
    std::thread::sleep(Duration::from_millis(700));
    server.restart(0);
    let Fill {
        claims: acknowledged,
        failed,
        ..
    } = rt.block_on(claims).unwrap();
    assert!(failed > 0, "the kill was felt");
    assert_eq!(acknowledged.len(), 254, "the /20 filled: 256 /28s less two");
    rt.block_on(check_exactly(&etcd, &keys, cidr, &acknowledged));
}

#[test]
fn a_three_member_cluster_losing_its_leader_loses_and_duplicates_nothing() {
    let Some(mut server) = EtcdServer::start_cluster("leader", 3) else {
        return;
    };
    let rt = runtime();
    let (etcd, keys, cidr) = (
        rt.block_on(server.connect(Duration::from_secs(2))),
        Keyspace::new(""),
        CIDR.parse().unwrap(),
    );
    let claims = start_claims(&rt, &etcd, &keys, cidr);
    std::thread::sleep(Duration::from_millis(300));
    let leader = rt.block_on(server.leader());
    server.kill(leader);
    let acknowledged = rt.block_on(claims).unwrap().claims;
    assert_eq!(acknowledged.len(), 254, "claims went on after the election");
    rt.block_on(check_exactly(&etcd, &keys, cidr, &acknowledged));
    // The killed member comes back and catches up; the state is the same through it.
    server.restart(leader);
}
