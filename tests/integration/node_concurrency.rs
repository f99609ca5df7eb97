//! Many threads assigning and releasing on one node: no address given twice, idempotency intact,
//! `verify()` clean.

use pdipam::{
    limits::InstanceLimits, InterfaceFlags, InterfaceSpec, ManualClock, Node, NodeConfig,
    NodeError, PodKey, PodRequest, Timestamp,
};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// An m5.large with one interface holding 9 /28s (10.0.1.0/28 to 10.0.9.0/28, 144 addresses).
pub(crate) fn nine_prefix_node(clock: Arc<dyn pdipam::Clock>, cooldown: Duration) -> Node {
    prefix_node(clock, cooldown, 9)
}

/// An m5.large with one interface holding `prefixes` /28s from 10.0.1.0/28 up.
fn prefix_node(clock: Arc<dyn pdipam::Clock>, cooldown: Duration, prefixes: u8) -> Node {
    let cfg = NodeConfig::new().cooldown(cooldown);
    let node = Node::with_clock(
        InstanceLimits::lookup("m5.large").unwrap().clone(),
        cfg,
        clock,
    );
    node.attach_interface(
        InterfaceSpec::new("eni-0", 0, "10.0.0.10".parse().unwrap()).flags(InterfaceFlags {
            primary: true,
            ..Default::default()
        }),
    )
    .unwrap();
    for i in 0..prefixes {
        node.attach_prefix("eni-0", format!("10.0.{}.0/28", i + 1).parse().unwrap())
            .unwrap();
    }
    node
}

/// The same with a 1 ms cooldown, so that threads also race for addresses whose cooldown just
/// ended.
fn node(clock: &Arc<ManualClock>) -> Node {
    nine_prefix_node(clock.clone(), Duration::from_millis(1))
}

/// Slot of an address in the ownership table: (third octet - 1) * 16 + last octet.
fn slot(a: IpAddr) -> usize {
    let IpAddr::V4(v4) = a else { unreachable!() };
    let o = v4.octets();
    (o[2] as usize - 1) * 16 + o[3] as usize
}

#[test]
fn threads_never_get_the_same_address_and_keys_stay_idempotent() {
    const THREADS: usize = 4;
    const OPS: usize = 30_000; // 120,000 operations in all
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_nanos(1 << 60)));
    let node = Arc::new(node(&clock));
    // owner[slot] = 1 + the id of the key holding it, 0 when nobody does: an independent
    // record of who holds what, updated around each call.
    let owners: Arc<Vec<AtomicU64>> = Arc::new((0..144).map(|_| AtomicU64::new(0)).collect());
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (node, owners, clock) = (node.clone(), owners.clone(), clock.clone());
            thread::spawn(move || {
                let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ ((t as u64 + 1) << 20);
                // 40 keys of this thread: each is held or not, with the address it got.
                let mut held: Vec<Option<IpAddr>> = vec![None; 40];
                for _ in 0..OPS {
                    let r = next(&mut rng);
                    let k = (r >> 8) as usize % held.len();
                    let id = (t * 1000 + k) as u64 + 1;
                    let key = PodKey::new("net", format!("t{t}-k{k}"), "eth0");
                    if r % 3 != 0 {
                        match node.assign(PodRequest::new(key)) {
                            Ok(a) => match held[k] {
                                Some(addr) => {
                                    assert!(a.existing);
                                    assert_eq!(a.address, addr, "idempotency broken");
                                }
                                None => {
                                    assert!(!a.existing);
                                    let prev = owners[slot(a.address)].swap(id, Ordering::SeqCst);
                                    assert_eq!(prev, 0, "{} given twice", a.address);
                                    held[k] = Some(a.address);
                                }
                            },
                            Err(NodeError::NoAvailableAddresses { .. }) => {}
                            Err(e) => panic!("{e}"),
                        }
                    } else {
                        if let Some(addr) = held[k] {
                            // Cleared just before the release: from the release on, another
                            // thread may get the address once its cooldown ends (the clock is
                            // shared and others move it while this one may be descheduled).
                            let prev = owners[slot(addr)].swap(0, Ordering::SeqCst);
                            assert_eq!(prev, id, "someone took {addr} while it was held");
                        }
                        match (node.release(&key), held[k]) {
                            (Ok(r), Some(addr)) => {
                                assert_eq!(r.address, addr);
                                held[k] = None;
                            }
                            (Err(NodeError::UnknownPod { .. }), None) => {}
                            (r, h) => panic!("release {r:?} while holding {h:?}"),
                        }
                    }
                    if r % 64 == 0 {
                        clock.advance(Duration::from_micros(300));
                    }
                }
                held.iter().filter(|h| h.is_some()).count()
            })
        })
        .collect();
    let still_held: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(node.pod_count(), still_held);
    node.verify().unwrap();
}

#[test]
fn the_same_key_from_many_threads_gets_one_address() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_nanos(1 << 60)));
    let node = Arc::new(node(&clock));
    for round in 0..200 {
        let barrier = Arc::new(Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (node, barrier) = (node.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    let mut out = Vec::new();
                    for k in 0..8 {
                        let key = PodKey::new("net", format!("r{round}-k{k}"), "eth0");
                        let a = node.assign(PodRequest::new(key.clone())).unwrap();
                        out.push((a.address, a.existing));
                    }
                    barrier.wait();
                    let released = (0..8)
                        .filter(|k| {
                            let key = PodKey::new("net", format!("r{round}-k{k}"), "eth0");
                            node.release(&key).is_ok()
                        })
                        .count();
                    (out, released)
                })
            })
            .collect();
        let got: Vec<(IpAddr, bool, bool)> = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .flat_map(|(out, released)| out.into_iter().map(move |(a, e)| (a, e, released > 0)))
            .collect();
        // Per key: the same address from all four threads, exactly one fresh assignment.
        for k in 0..8 {
            let per_key: Vec<_> = (0..4).map(|t| got[t * 8 + k]).collect();
            assert!(
                per_key.iter().all(|g| g.0 == per_key[0].0),
                "round {round} key {k}"
            );
            assert_eq!(per_key.iter().filter(|g| !g.1).count(), 1);
        }
        assert_eq!(node.pod_count(), 0, "each key released exactly once");
        node.verify().unwrap();
        clock.advance(Duration::from_millis(1));
    }
}

/// Quarantine races an attachment of the block that holds the addresses and assignments of the
/// same keys: every key ends holding one address (a pod's or a quarantined one), never both,
/// and no quarantined address lies in an attached block (`verify()`).
#[test]
fn quarantine_racing_attachment_and_assignment_leaves_each_key_one_address() {
    let key = |i: u8| PodKey::new("net", format!("q{i}"), "eth0");
    for round in 0..200u32 {
        let clock = Arc::new(ManualClock::new(Timestamp::from_unix_nanos(1)));
        let node = Arc::new(prefix_node(clock.clone(), Duration::ZERO, 1));
        let start = Arc::new(Barrier::new(3));
        let quarantine = {
            let (node, start, clock) = (node.clone(), start.clone(), clock.clone());
            thread::spawn(move || {
                start.wait();
                for i in 0..16u8 {
                    let pod = pdipam::PodInfo {
                        key: key(i),
                        address: IpAddr::from([10, 0, 10, i]),
                        block: "10.0.10.0/28".parse().unwrap(),
                        interface_id: Arc::from(""),
                        metadata: Default::default(),
                        assigned_at: pdipam::Clock::now(&*clock),
                    };
                    match node.quarantine(pod) {
                        Ok(())
                        | Err(NodeError::KeyHoldsOther { .. })
                        | Err(NodeError::AlreadyAttached { .. }) => {}
                        Err(e) => panic!("round {round}: {e}"),
                    }
                }
            })
        };
        let attach = {
            let (node, start) = (node.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                for _ in 0..(round % 16) * 1000 {
                    std::hint::spin_loop();
                }
                node.attach_prefix("eni-0", "10.0.10.0/28".parse().unwrap())
                    .unwrap();
            })
        };
        start.wait();
        for i in (0..16u8).rev() {
            match node.assign(PodRequest::new(key(i))) {
                Ok(_)
                | Err(NodeError::KeyHoldsOther { .. })
                | Err(NodeError::NoAvailableAddresses { .. }) => {}
                Err(e) => panic!("round {round}: {e}"),
            }
        }
        quarantine.join().unwrap();
        attach.join().unwrap();
        node.verify()
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let quarantined = node.quarantined();
        for i in 0..16u8 {
            let held = usize::from(node.pod(&key(i)).is_some())
                + quarantined.iter().filter(|q| q.key == key(i)).count();
            assert!(held <= 1, "round {round}: q{i} holds {held} addresses");
        }
    }
}
