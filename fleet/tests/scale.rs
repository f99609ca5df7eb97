//! A thousand members at once: a test binary of its own, so that no other test competes with it
//! for the machine's two cores.

mod common;

use common::{net, runtime, EtcdServer};
use ipnet::IpNet;
use pdipam::SubnetError;
use pdipam_fleet::{verify, FleetConfig, FleetError, FleetSubnet, Keyspace, Member};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// A thousand members, each with its own lease, mirror and state, sharing one connection (one
/// HTTP/2 channel: what served many tasks best here), claim /28s at once until a /16 is full.
#[test]
fn a_thousand_members_fill_a_16_and_never_share_a_block() {
    let Some(server) = EtcdServer::start("thousand") else {
        return;
    };
    runtime().block_on(async {
        let etcd = server.connect(Duration::from_secs(30)).await;
        let keys = Keyspace::new("");
        let cidr = net("10.0.0.0/16");
        FleetSubnet::init(&etcd, &keys, &FleetConfig::new(cidr))
            .await
            .unwrap();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for n in 0..1000 {
            let (etcd, keys) = (etcd.clone(), keys.clone());
            tasks.push(tokio::spawn(async move {
                let me = Member::join(
                    &etcd,
                    &keys,
                    &format!("node-{n:04}"),
                    Duration::from_secs(60),
                )
                .await
                .unwrap();
                let subnet = FleetSubnet::open(&etcd, &keys, cidr, &me).await.unwrap();
                let mut mine = Vec::new();
                loop {
                    match subnet.allocate_prefix(28).await {
                        Ok(p) => mine.push(p),
                        Err(FleetError::Subnet(SubnetError::InsufficientCidrBlocks { .. })) => {
                            break
                        }
                        // A thousand members on two cores can keep one waiting past the
                        // timeout: the call changed nothing, and the member asks again.
                        Err(FleetError::Timeout { .. } | FleetError::Unavailable { .. }) => {
                            tokio::time::sleep(Duration::from_millis(50)).await
                        }
                        Err(e) => panic!("node-{n}: {e}"),
                    }
                }
                let (sent, lost) = subnet.transactions();
                (me, mine, sent, lost)
            }));
        }
        let mut all = Vec::new();
        let mut members = Vec::new();
        let (mut sent, mut lost) = (0, 0);
        for t in tasks {
            let (me, mine, s, l) = t.await.unwrap();
            all.extend(mine);
            members.push(me);
            sent += s;
            lost += l;
        }
        eprintln!(
            "1000 members filled a /16 in {:?}: {sent} transactions, {lost} lost to a conflict",
            started.elapsed()
        );
        let distinct: HashSet<IpNet> = all.iter().copied().collect();
        assert_eq!(distinct.len(), all.len(), "a block was handed out twice");
        assert_eq!(
            all.len(),
            4094,
            "4096 /28s less the two holding reserved addresses"
        );
        let report = verify(&etcd, &keys, cidr).await.unwrap();
        assert_eq!(report.runs.len(), 4094);
        assert!(report.orphans.is_empty());
    });
}
