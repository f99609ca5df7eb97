//! The fleet against a real etcd: claims from many members, fencing, adoption, release,
//! verification, and etcd unavailable.

mod common;

use common::{claim_until_full, fleet, member, net, runtime, EtcdServer};
use ipnet::IpNet;
use pdipam::SubnetError;
use pdipam_fleet::{verify, FleetConfig, FleetError, FleetSubnet, Keyspace, Member};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(5);
const TTL: Duration = Duration::from_secs(10);

#[test]
fn members_claiming_at_once_fill_the_subnet_and_never_share_a_block() {
    let Some(server) = EtcdServer::start("fill") else {
        return;
    };
    runtime().block_on(async {
        let cidr = net("10.0.0.0/22");
        // Four chunks of 16 /28s; two of them hold an AWS reserved address.
        let (etcd, keys) = fleet(&server, &FleetConfig::new(cidr).chunk_len(24)).await;
        let fill = claim_until_full(&etcd, &keys, cidr, 8).await;
        assert_eq!(fill.failed, 0, "etcd answered every call");
        let all = fill.claims;
        let distinct: HashSet<IpNet> = all.iter().copied().collect();
        assert_eq!(distinct.len(), all.len(), "a block was handed out twice");
        assert_eq!(
            all.len(),
            62,
            "64 /28s less the two holding reserved addresses"
        );
        let report = verify(&etcd, &keys, cidr).await.unwrap();
        assert_eq!(report.runs.len(), 62);
        assert!(report.orphans.is_empty(), "{:?}", report.orphans);
        assert_eq!(report.per_node.values().sum::<usize>(), 62);
        assert_eq!(report.stats.free_blocks_of(28), 0);
    });
}

#[test]
fn init_is_idempotent_and_refuses_another_configuration() {
    let Some(server) = EtcdServer::start("init") else {
        return;
    };
    runtime().block_on(async {
        let etcd = server.connect(TIMEOUT).await;
        let keys = Keyspace::new("");
        let config = FleetConfig::new(net("10.1.0.0/16"));
        FleetSubnet::init(&etcd, &keys, &config).await.unwrap();
        FleetSubnet::init(&etcd, &keys, &config).await.unwrap();
        let other = config.clone().chunk_len(24);
        let e = FleetSubnet::init(&etcd, &keys, &other).await.unwrap_err();
        assert!(
            e.to_string()
                .contains("/pdipam/v1/subnets/10.1.0.0_16/config"),
            "{e}"
        );
        let me = Member::join(&etcd, &keys, "n", TTL).await.unwrap();
        let e = FleetSubnet::open(&etcd, &keys, net("10.2.0.0/16"), &me)
            .await
            .err()
            .unwrap();
        assert!(matches!(e, FleetError::NotInitialised { .. }), "{e}");
        let bad = FleetConfig::new(net("10.3.0.0/16")).chunk_len(12);
        let e = FleetSubnet::init(&etcd, &keys, &bad).await.unwrap_err();
        assert!(e.to_string().contains("chunk length /12"), "{e}");
    });
}

#[test]
fn a_member_whose_lease_is_gone_commits_nothing() {
    let Some(server) = EtcdServer::start("fence") else {
        return;
    };
    runtime().block_on(async {
        let cidr = net("10.0.0.0/24");
        let (etcd, keys) = fleet(&server, &FleetConfig::new(cidr)).await;
        let (me, subnet) = member(&etcd, &keys, cidr, "paused").await;
        let kept = subnet.allocate_prefix(28).await.unwrap();
        // The registration goes (as when the lease expires during a long pause).
        etcd.call(etcd.client().lease_revoke(me.lease()))
            .await
            .unwrap();
        for attempt in [
            subnet.allocate_prefix(28).await.err(),
            subnet.allocate_ip().await.err(),
            subnet.release(kept).await.err(),
        ] {
            let e = attempt.expect("refused");
            assert!(matches!(e, FleetError::Fenced { .. }), "{e}");
            assert!(
                e.to_string().contains("node paused no longer holds lease"),
                "{e}"
            );
        }
        let report = verify(&etcd, &keys, cidr).await.unwrap();
        assert_eq!(
            report.runs.len(),
            1,
            "nothing was written under the old lease"
        );
        assert_eq!(report.orphans.len(), 1, "its one block is now an orphan");
        assert_eq!(report.orphans[0].cidr, kept);
    });
}

#[test]
fn a_restarted_node_adopts_its_claims_and_only_a_holder_releases() {
    let Some(server) = EtcdServer::start("adopt") else {
        return;
    };
    runtime().block_on(async {
        let cidr = net("10.0.0.0/20");
        let (etcd, keys) = fleet(&server, &FleetConfig::new(cidr)).await;
        let (first, before) = member(&etcd, &keys, cidr, "node-a").await;
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(before.allocate_prefix(28).await.unwrap());
        }
        let single = before.allocate_ip().await.unwrap();
        drop(before);
        drop(first); // the process ends; its lease is left to expire
        let (_again, after) = member(&etcd, &keys, cidr, "node-a").await;
        assert_eq!(after.adopt().await.unwrap(), 4);
        assert_eq!(after.adopt().await.unwrap(), 0);
        let report = verify(&etcd, &keys, cidr).await.unwrap();
        assert!(report.orphans.is_empty(), "{:?}", report.orphans);
        assert_eq!(after.held().len(), 4);

        let (_other, theirs) = member(&etcd, &keys, cidr, "node-b").await;
        let e = theirs.release(held[0]).await.unwrap_err();
        assert!(
            e.to_string().contains("held by node node-a, not by node-b"),
            "{e}"
        );
        after.release(held[0]).await.unwrap();
        after.release(IpNet::from(single)).await.unwrap();
        let e = after.release(held[0]).await.unwrap_err();
        assert!(
            matches!(e, FleetError::Subnet(SubnetError::NotAllocated { .. })),
            "{e}"
        );
        // What one member released, another sees (after reading again) and may claim exactly.
        theirs.refresh().await.unwrap();
        theirs.allocate_prefix_at(held[0]).await.unwrap();
        let e = after.allocate_prefix_at(held[0]).await.unwrap_err();
        assert!(e.to_string().contains("already allocated"), "{e}");
        let report = verify(&etcd, &keys, cidr).await.unwrap();
        assert_eq!(report.per_node.get("node-b"), Some(&1));
        assert_eq!(report.per_node.get("node-a"), Some(&2));
    });
}

#[test]
fn single_addresses_pack_and_stay_out_of_reservations() {
    let Some(server) = EtcdServer::start("singles") else {
        return;
    };
    runtime().block_on(async {
        let etcd = server.connect(TIMEOUT).await;
        let keys = Keyspace::new("");
        let cidr = net("10.0.0.0/24");
        let reserved = pdipam::Reservation {
            cidr: net("10.0.0.128/25"),
            kind: pdipam::ReservationKind::Prefix,
        };
        let config = FleetConfig::new(cidr).reservation(reserved);
        FleetSubnet::init(&etcd, &keys, &config).await.unwrap();
        let (_me, subnet) = member(&etcd, &keys, cidr, "n").await;
        // Prefixes come from the prefix reservation first.
        let p = subnet.allocate_prefix(28).await.unwrap();
        assert!(reserved.cidr.contains(&p), "{p}");
        // Single addresses never land in a reservation, and pack into the broken first /28.
        let a = subnet.allocate_ip().await.unwrap();
        assert_eq!(a.to_string(), "10.0.0.4");
        let b = subnet.allocate_ip().await.unwrap();
        assert_eq!(b.to_string(), "10.0.0.5");
        let report = verify(&etcd, &keys, cidr).await.unwrap();
        assert_eq!(report.runs.len(), 3);
        let e = subnet.allocate_prefix(24).await.unwrap_err();
        assert!(
            matches!(
                e,
                FleetError::Subnet(_) | FleetError::LargerThanChunk { .. }
            ),
            "{e}"
        );
    });
}

#[test]
fn a_stopped_etcd_is_named_within_the_timeout_and_nothing_changes() {
    let Some(server) = EtcdServer::start("stopped") else {
        return;
    };
    runtime().block_on(async {
        let timeout = Duration::from_millis(800);
        let etcd = server.connect(timeout).await;
        let keys = Keyspace::new("");
        let cidr = net("10.0.0.0/24");
        FleetSubnet::init(&etcd, &keys, &FleetConfig::new(cidr))
            .await
            .unwrap();
        let me = Member::join(&etcd, &keys, "n", TTL).await.unwrap();
        let subnet = Arc::new(FleetSubnet::open(&etcd, &keys, cidr, &me).await.unwrap());
        subnet.allocate_prefix(28).await.unwrap();
        let free_before = subnet.stats().free;
        server.signal("STOP");
        // Let the signal take effect before the call (its delivery is asynchronous).
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        let e = subnet.allocate_prefix(28).await.unwrap_err();
        let took = started.elapsed();
        server.signal("CONT");
        // The client's own deadline or ours, whichever fires first: both say where.
        assert!(
            matches!(
                e,
                FleetError::Timeout { .. } | FleetError::Unavailable { .. }
            ),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains(&format!("etcd unavailable at {}", server.endpoint)),
            "{e}"
        );
        assert!(took < timeout * 2, "answered after {took:?}");
        assert_eq!(subnet.stats().free, free_before, "the mirror is unchanged");
        // Once etcd is back, the same member goes on. The lost claim may have reached etcd
        // and applied after all: the next call settles it first (released again, since its
        // caller was told it failed), so exactly the two acknowledged claims remain.
        subnet.allocate_prefix(28).await.unwrap();
        let report = verify(&etcd, &keys, cidr).await.unwrap();
        assert_eq!(report.runs.len(), 2, "{:?}", report.runs);
        assert_eq!(subnet.held().len(), 2);
    });
}

#[test]
fn no_etcd_at_all_is_named() {
    runtime().block_on(async {
        let endpoint = pdipam_fleet::testing::unused_endpoint();
        let started = Instant::now();
        let e =
            pdipam_fleet::Etcd::connect(std::slice::from_ref(&endpoint), Duration::from_secs(1))
                .await
                .err()
                .expect("nothing listens there");
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(
            e.to_string()
                .contains(&format!("etcd unavailable at {endpoint}")),
            "{e}"
        );
    });
}

/// A dead node's blocks are freed after the grace period and never before; a live node's never;
/// a node that came back and adopted its blocks keeps them.
#[test]
fn a_reclaimer_frees_dead_nodes_blocks_after_the_grace_period_only() {
    let Some(server) = EtcdServer::start("reclaim") else {
        return;
    };
    runtime().block_on(async {
        let cidr = net("10.0.0.0/20");
        let (etcd, keys) = fleet(&server, &FleetConfig::new(cidr)).await;
        let (_live, live_subnet) = member(&etcd, &keys, cidr, "live").await;
        let kept = live_subnet.allocate_prefix(28).await.unwrap();
        let (dead, dead_subnet) = member(&etcd, &keys, cidr, "dead").await;
        let lost = [
            dead_subnet.allocate_prefix(28).await.unwrap(),
            dead_subnet.allocate_prefix(28).await.unwrap(),
        ];
        // Its lease ends (expiry, as after a crash; revoked here so the test need not wait).
        etcd.call(etcd.client().lease_revoke(dead.lease()))
            .await
            .unwrap();

        let clock = Arc::new(pdipam::ManualClock::new(
            pdipam::Timestamp::from_unix_nanos(1 << 60),
        ));
        let grace = Duration::from_secs(300);
        let mut reclaimer =
            pdipam_fleet::Reclaimer::with_clock(&etcd, &keys, cidr, grace, clock.clone());
        let first = reclaimer.run_once().await.unwrap();
        assert!(first.freed.is_empty(), "nothing before the grace period");
        assert_eq!(first.waiting.len(), 2);
        clock.advance(grace - Duration::from_secs(1));
        assert!(reclaimer.run_once().await.unwrap().freed.is_empty());
        clock.advance(Duration::from_secs(1));
        let freed = reclaimer.run_once().await.unwrap().freed;
        let freed: HashSet<IpNet> = freed.iter().map(|r| r.cidr).collect();
        assert_eq!(freed, lost.iter().copied().collect());
        let report = verify(&etcd, &keys, cidr).await.unwrap();
        assert_eq!(report.runs.len(), 1);
        assert_eq!(report.runs[0].cidr, kept);
        assert!(report.orphans.is_empty());

        // A node that restarts and adopts before the grace ends keeps its blocks.
        let (again, s) = member(&etcd, &keys, cidr, "restarting").await;
        let its = s.allocate_prefix(28).await.unwrap();
        drop(s);
        drop(again);
        etcd.call(
            etcd.client().lease_revoke(
                verify(&etcd, &keys, cidr)
                    .await
                    .unwrap()
                    .runs
                    .iter()
                    .find(|r| r.cidr == its)
                    .unwrap()
                    .lease,
            ),
        )
        .await
        .unwrap();
        assert_eq!(reclaimer.run_once().await.unwrap().waiting.len(), 1);
        let (_back, s) = member(&etcd, &keys, cidr, "restarting").await;
        assert_eq!(s.adopt().await.unwrap(), 1);
        clock.advance(grace * 2);
        let pass = reclaimer.run_once().await.unwrap();
        assert!(pass.freed.is_empty() && pass.waiting.is_empty(), "{pass:?}");
        assert_eq!(verify(&etcd, &keys, cidr).await.unwrap().runs.len(), 2);
    });
}

/// An operator releases a node at once: its registration goes, it is fenced, its blocks are free.
#[test]
fn release_node_fences_the_node_and_frees_its_blocks_at_once() {
    let Some(server) = EtcdServer::start("release-node") else {
        return;
    };
    runtime().block_on(async {
        let cidr = net("10.0.0.0/20");
        let (etcd, keys) = fleet(&server, &FleetConfig::new(cidr)).await;
        let (_me, subnet) = member(&etcd, &keys, cidr, "doomed").await;
        for _ in 0..3 {
            subnet.allocate_prefix(28).await.unwrap();
        }
        let (_other, theirs) = member(&etcd, &keys, cidr, "other").await;
        theirs.allocate_prefix(28).await.unwrap();
        let freed = pdipam_fleet::release_node(&etcd, &keys, cidr, "doomed")
            .await
            .unwrap();
        assert_eq!(freed.len(), 3);
        let e = subnet.allocate_prefix(28).await.unwrap_err();
        assert!(matches!(e, FleetError::Fenced { .. }), "{e}");
        let report = verify(&etcd, &keys, cidr).await.unwrap();
        assert_eq!(report.runs.len(), 1);
        assert_eq!(report.per_node.get("other"), Some(&1));
    });
}

/// The planner's warm-pool actions carried out through `EtcdProvider`: the node grows and
/// shrinks exactly as with `LocalProvider`, and the fleet records every block under its name.
#[test]
fn the_planner_runs_against_the_fleet_through_etcd_provider() {
    use pdipam::limits::InstanceLimits;
    use pdipam::planner::{plan, WarmSettings};
    use pdipam::provider::execute;
    use pdipam::{BlockKind, Clock, ManualClock, Node, NodeConfig, PodKey, PodRequest, Timestamp};

    let Some(server) = EtcdServer::start("provider") else {
        return;
    };
    let rt = runtime();
    let cidr = net("10.0.0.0/20");
    let keys = Keyspace::new("");
    let (etcd, _member, subnet) = rt.block_on(async {
        let etcd = server.connect(TIMEOUT).await;
        FleetSubnet::init(&etcd, &keys, &FleetConfig::new(cidr))
            .await
            .unwrap();
        let member = Member::join(&etcd, &keys, "node-1", TTL).await.unwrap();
        let subnet = FleetSubnet::open(&etcd, &keys, cidr, &member)
            .await
            .unwrap();
        (etcd, member, Arc::new(subnet))
    });
    // The provider blocks on the runtime: it is called from this thread, outside it.
    let mut cloud = pdipam_fleet::EtcdProvider::new("node-1", subnet.clone(), rt.handle().clone());
    let limits = InstanceLimits::lookup("m5.large").unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_nanos(1 << 60)));
    let node = Node::with_clock(limits.clone(), NodeConfig::new(), clock.clone());
    cloud.boot(&node).unwrap();
    let settings = WarmSettings::shipped_manifest();
    let prefixes = |node: &Node| -> HashSet<IpNet> {
        node.snapshot()
            .interfaces
            .iter()
            .flat_map(|i| i.blocks.iter())
            .filter(|b| b.kind == BlockKind::Prefix)
            .map(|b| b.cidr)
            .collect()
    };
    let in_fleet = || -> HashSet<IpNet> {
        rt.block_on(verify(&etcd, &keys, cidr))
            .unwrap()
            .runs
            .iter()
            .filter(|r| r.kind == pdipam_fleet::Kind::Prefix && r.node == "node-1")
            .map(|r| r.cidr)
            .collect()
    };
    let mut settle = |node: &Node| {
        for _ in 0..20 {
            let p = plan(limits, &settings, &node.snapshot(), clock.now());
            if p.actions.is_empty() {
                return;
            }
            let done = execute(node, &p, &mut cloud);
            assert!(done.failed.is_empty(), "{:?}", done.failed);
            clock.advance(Duration::from_secs(31));
        }
    };
    settle(&node);
    assert_eq!(
        prefixes(&node).len(),
        1,
        "WARM_PREFIX_TARGET=1 on an empty node"
    );
    assert_eq!(prefixes(&node), in_fleet());
    let keys_of: Vec<PodKey> = (0..40)
        .map(|i| PodKey::new("aws-cni", format!("pod-{i}"), "eth0"))
        .collect();
    for k in &keys_of {
        while node.assign(PodRequest::new(k.clone())).is_err() {
            settle(&node);
        }
    }
    settle(&node);
    assert_eq!(prefixes(&node).len(), 4, "40 pods and one spare prefix");
    assert_eq!(prefixes(&node), in_fleet());
    for k in &keys_of {
        node.release(k).unwrap();
    }
    clock.advance(Duration::from_secs(120));
    settle(&node);
    assert_eq!(prefixes(&node).len(), 1, "back to the warm target");
    assert_eq!(
        prefixes(&node),
        in_fleet(),
        "released blocks went back to the fleet"
    );
    node.verify().unwrap();
}

/// A member's mirror follows other members' claims through its watch, reading nothing; a full
/// subnet is then known without reading the chunks again. A member opened without a watch
/// sees them only when it reads.
#[test]
fn the_watch_keeps_a_mirror_current_and_a_full_subnet_costs_no_reads() {
    let Some(server) = EtcdServer::start("watch") else {
        return;
    };
    runtime().block_on(async {
        let cidr = net("10.4.0.0/24");
        let (etcd, keys) = fleet(&server, &FleetConfig::new(cidr).chunk_len(28)).await;
        let (_a, watched) = member(&etcd, &keys, cidr, "watcher").await;
        let me = Member::join(&etcd, &keys, "reader", TTL).await.unwrap();
        let unwatched = FleetSubnet::open_unwatched(&etcd, &keys, cidr, &me)
            .await
            .unwrap();
        let read_at_open = watched.chunks_read();
        // Another connection (another process) fills the subnet.
        let other = server.connect(TIMEOUT).await;
        let (_b, claimer) = member(&other, &keys, cidr, "claimer").await;
        let mut claimed = 0;
        while claimer.allocate_prefix(28).await.is_ok() {
            claimed += 1;
        }
        assert_eq!(
            claimed, 14,
            "16 /28s less the two holding reserved addresses"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while watched.stats().free_blocks_of(28) > 0 {
            assert!(
                Instant::now() < deadline,
                "the watch did not deliver the claims"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(watched.held().len(), 0);
        assert_eq!(
            watched.chunks_read(),
            read_at_open,
            "the watch, not reads, updated it"
        );
        assert_eq!(
            unwatched.stats().free_blocks_of(28),
            14,
            "no watch, no news"
        );
        // The refusal is believed after an incremental read that finds nothing new.
        let e = watched.allocate_prefix(28).await.unwrap_err();
        assert!(
            matches!(
                e,
                FleetError::Subnet(SubnetError::InsufficientCidrBlocks { .. })
            ),
            "{e}"
        );
        assert_eq!(
            watched.chunks_read(),
            read_at_open,
            "a full subnet read nothing"
        );
        // Without the watch, the refusal reads the chunks that changed: all of them here.
        assert!(unwatched.allocate_prefix(28).await.is_err());
        assert_eq!(unwatched.chunks_read(), 14);
    });
}

/// A prefix larger than a chunk is one transaction over every chunk it covers: listed whole in
/// each, held by one node, released whole, and freed whole when its node is released; beyond
/// 64 chunks it is refused, naming the limit.
#[test]
fn prefixes_larger_than_a_chunk_span_their_chunks_in_one_transaction() {
    let Some(server) = EtcdServer::start("span") else {
        return;
    };
    runtime().block_on(async {
        let cidr = net("10.6.0.0/16");
        let (etcd, keys) = fleet(&server, &FleetConfig::new(cidr)).await;
        let (_a, a) = member(&etcd, &keys, cidr, "node-a").await;
        let (_b, b) = member(&etcd, &keys, cidr, "node-b").await;
        let big = a.allocate_prefix(24).await.unwrap();
        assert_eq!(big.prefix_len(), 24);
        // Another node cannot take any part of it, automatically or exactly.
        let inside: IpNet = format!("{}/28", big.addr()).parse().unwrap();
        let e = b.allocate_prefix_at(inside).await.unwrap_err();
        assert!(
            matches!(
                e,
                FleetError::Subnet(
                    SubnetError::AlreadyAllocated { .. } | SubnetError::NotOneAllocation { .. }
                )
            ),
            "{e}"
        );
        let p = b.allocate_prefix(28).await.unwrap();
        assert!(!big.contains(&p.addr()), "{p} inside {big}");
        let report = verify(&etcd, &keys, cidr).await.unwrap();
        assert_eq!(report.runs.len(), 2, "{:?}", report.runs);
        assert_eq!(report.per_node["node-a"], 1);
        // Only its holder releases it, whole; then it can be claimed again.
        assert!(matches!(
            b.release(big).await,
            Err(FleetError::NotHolder { .. })
        ));
        a.release(big).await.unwrap();
        b.allocate_prefix_at(big).await.unwrap();
        let report = verify(&etcd, &keys, cidr).await.unwrap();
        assert_eq!(report.per_node["node-b"], 2);
        // An operator's release of the node frees the spanning prefix in every chunk.
        let freed = pdipam_fleet::release_node(&etcd, &keys, cidr, "node-b")
            .await
            .unwrap();
        let mut freed: Vec<IpNet> = freed.iter().map(|r| r.cidr).collect();
        freed.sort();
        let mut want = vec![big, p];
        want.sort();
        assert_eq!(freed, want);
        let report = verify(&etcd, &keys, cidr).await.unwrap();
        assert!(report.runs.is_empty(), "{:?}", report.runs);
        // /22 spans 64 chunks: allowed; /21 spans 128: refused.
        assert_eq!(a.allocate_prefix(22).await.unwrap().prefix_len(), 22);
        let e = a.allocate_prefix(21).await.unwrap_err();
        assert!(
            matches!(e, FleetError::LargerThanChunk { len: 21, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("more than 64 chunks"), "{e}");
    });
}

/// Reservations change on a live fleet: a member that has not heard of a new explicit
/// reservation still never claims inside it (its claim's transaction compares the
/// configuration's revision), a watched member's statistics follow at once, and removing the
/// reservation gives the space back to automatic claims.
#[test]
fn reservations_change_on_a_live_fleet_and_every_member_follows() {
    use pdipam::{Reservation, ReservationKind};
    let Some(server) = EtcdServer::start("reserve") else {
        return;
    };
    runtime().block_on(async {
        let cidr = net("10.5.0.0/24");
        let (etcd, keys) = fleet(&server, &FleetConfig::new(cidr)).await;
        let me = Member::join(&etcd, &keys, "stale", TTL).await.unwrap();
        let stale = FleetSubnet::open_unwatched(&etcd, &keys, cidr, &me)
            .await
            .unwrap();
        let other = server.connect(TIMEOUT).await;
        let (_w, watched) = member(&other, &keys, cidr, "watched").await;
        assert_eq!(watched.stats().free_blocks_of(28), 14);
        let lower = net("10.5.0.0/25");
        let explicit = Reservation {
            cidr: lower,
            kind: ReservationKind::Explicit,
        };
        pdipam_fleet::add_reservation(&etcd, &keys, cidr, explicit)
            .await
            .unwrap();
        // The same reservation twice, or one overlapping it: refused, named.
        let e = pdipam_fleet::add_reservation(&etcd, &keys, cidr, explicit)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                FleetError::Subnet(SubnetError::ReservationOverlap { .. })
            ),
            "{e}"
        );
        // The stale member's automatic claims all land outside the explicit reservation: the
        // upper /25 holds 7 usable /28s (its last holds the reserved broadcast address).
        let mut got = Vec::new();
        loop {
            match stale.allocate_prefix(28).await {
                Ok(p) => got.push(p),
                // Outside the reservation fewer than 16 addresses are left: the words EC2 uses.
                Err(FleetError::Subnet(SubnetError::InsufficientFreeAddressesInSubnet {
                    ..
                })) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got.len(), 7, "{got:?}");
        assert!(got.iter().all(|p| !lower.contains(&p.addr())), "{got:?}");
        // A manual claim inside it still works, as in EC2.
        stale.allocate_prefix_at(net("10.5.0.16/28")).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while watched.reservations() != vec![explicit] {
            assert!(
                Instant::now() < deadline,
                "the watch did not deliver the reservation"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Removed: automatic claims may use the lower /25 again.
        pdipam_fleet::remove_reservation(&etcd, &keys, cidr, lower)
            .await
            .unwrap();
        let p = stale.allocate_prefix(28).await.unwrap();
        assert!(lower.contains(&p.addr()), "{p}");
        let e = pdipam_fleet::remove_reservation(&etcd, &keys, cidr, lower)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                FleetError::Subnet(SubnetError::ReservationNotFound { .. })
            ),
            "{e}"
        );
        let report = verify(&etcd, &keys, cidr).await.unwrap();
        assert_eq!(report.runs.len(), 9);
    });
}

/// A member that falls behind its watch (more than the 4096 batches it may lag by) has a gap:
/// its next claim reads what changed instead, and is placed on what etcd holds.
#[test]
fn a_member_that_fell_behind_its_watch_reads_what_changed() {
    let Some(server) = EtcdServer::start("lag") else {
        return;
    };
    runtime().block_on(async {
        let cidr = net("10.9.0.0/24");
        let (etcd, keys) = fleet(&server, &FleetConfig::new(cidr)).await;
        let (_w, idle) = member(&etcd, &keys, cidr, "idle").await;
        let (_b, busy) = member(&etcd, &keys, cidr, "busy").await;
        let read_at_open = idle.chunks_read();
        // 2050 claims and releases: 4100 changes broadcast while the idle member applies none.
        for _ in 0..2050 {
            let p = busy.allocate_prefix(28).await.unwrap();
            busy.release(p).await.unwrap();
        }
        let kept: Vec<IpNet> = {
            let mut v = Vec::new();
            for _ in 0..13 {
                v.push(busy.allocate_prefix(28).await.unwrap());
            }
            v
        };
        let last = idle.allocate_prefix(28).await.unwrap();
        assert!(!kept.contains(&last), "{last} given twice");
        assert!(idle.chunks_read() > read_at_open, "the gap was read");
        let report = verify(&etcd, &keys, cidr).await.unwrap();
        assert_eq!(report.runs.len(), 14);
    });
}
