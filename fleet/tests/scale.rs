//! A thousand members at once: a test binary of its own, so that no other test competes with it
//! for the machine's two cores.

mod common;

use common::{claim_until_full, net, runtime, EtcdServer};
use ipnet::IpNet;
use pdipam_fleet::{verify, FleetConfig, FleetSubnet, Keyspace};
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
        let cidr = net("10.0.0.0/16");
        // A timeout long enough for a thousand members' calls queued on one connection.
        let etcd = server.connect(Duration::from_secs(30)).await;
        let keys = Keyspace::new("");
        let mut config = FleetConfig::new(cidr);
        // Other chunk sizes, for measuring (BENCHMARKS.md, "Fleet mode").
        if let Ok(len) = std::env::var("PDIPAM_SCALE_CHUNK_LEN") {
            config = config.chunk_len(len.parse().unwrap());
        }
        FleetSubnet::init(&etcd, &keys, &config).await.unwrap();
        let started = Instant::now();
        let fill = claim_until_full(&etcd, &keys, cidr, 1000).await;
        let (sent, lost) = fill.transactions;
        eprintln!(
            "1000 members filled a /16 in {:?}: {sent} transactions, {lost} lost to a conflict, \
             {} calls found etcd unavailable, {} chunk values read",
            started.elapsed(),
            fill.failed,
            fill.chunks_read
        );
        let all = fill.claims;
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
