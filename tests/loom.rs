//! loom models of the lock-free claim protocol, on subnets of one or two 64-unit words.
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release --test loom --target-dir target/loom`.
#![cfg(loom)]

use ipnet::IpNet;
use loom::sync::Arc;
use loom::thread;
use pdipam::{ReservedProfile, Subnet, SubnetOptions};
use std::net::IpAddr;

fn model(f: impl Fn() + Sync + Send + 'static) {
    model_bounded(5, f)
}

fn model_bounded(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    // Exhaustive search takes minutes per model; 5 preemptions cover every interleaving of the
    // two threads' CAS steps with the summary updates around them and run in seconds.
    b.preemption_bound = Some(bound);
    b.check(f);
}

fn subnet(cidr: &str) -> Arc<Subnet> {
    let opts = SubnetOptions::default().profile(ReservedProfile::None);
    Arc::new(Subnet::with_options(cidr.parse().unwrap(), opts).unwrap())
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
fn claim_claim_on_one_word() {
    model(|| {
        let s = subnet("10.0.0.0/30");
        let s2 = Arc::clone(&s);
        let t = thread::spawn(move || s2.allocate_ip().unwrap());
        let a = s.allocate_ip().unwrap();
        let b = t.join().unwrap();
        assert_ne!(a, b);
        s.verify().unwrap();
    });
}

#[test]
fn claim_release_on_one_word() {
    model(|| {
        let s = subnet("10.0.0.0/30");
        let held: IpAddr = "10.0.0.0".parse().unwrap();
        s.allocate_ip_at(held).unwrap();
        s.allocate_ip_at("10.0.0.1".parse().unwrap()).unwrap();
        s.allocate_ip_at("10.0.0.2".parse().unwrap()).unwrap();
        let s2 = Arc::clone(&s);
        let t = thread::spawn(move || s2.release_ip(held).unwrap());
        // Either .3 (free all along) or .0 (if the release came first): never a taken one.
        let got = s.allocate_ip().unwrap();
        t.join().unwrap();
        assert!(got == "10.0.0.3".parse::<IpAddr>().unwrap() || got == held);
        s.verify().unwrap();
    });
}

#[test]
fn release_and_reuse_do_not_hand_out_twice() {
    model(|| {
        let s = subnet("10.0.0.0/30");
        let p = s.allocate_prefix(31).unwrap().cidr;
        let s2 = Arc::clone(&s);
        let t = thread::spawn(move || {
            s2.release(p).unwrap();
            s2.allocate_prefix(31).unwrap().cidr
        });
        let mine = s.allocate_prefix(31).ok().map(|a| a.cidr);
        let theirs = t.join().unwrap();
        if let Some(m) = mine {
            assert_ne!(m, theirs);
        }
        s.verify().unwrap();
    });
}

#[test]
fn runs_next_to_a_word_boundary() {
    model(|| {
        // Two words: a /26 per word. One thread frees the low word's /27 that ends at the
        // boundary while the other claims a /26 and then a /27.
        let s = subnet("10.0.0.0/25");
        s.allocate_prefix_at(net("10.0.0.32/27")).unwrap();
        let s2 = Arc::clone(&s);
        let t = thread::spawn(move || s2.release(net("10.0.0.32/27")).unwrap());
        let whole = s.allocate_prefix(26).unwrap().cidr;
        let part = s.allocate_prefix(27).ok().map(|a| a.cidr);
        t.join().unwrap();
        if let Some(p) = part {
            assert!(!whole.contains(&p.addr()));
        }
        s.verify().unwrap();
    });
}

#[test]
fn a_completed_release_is_always_visible_to_the_next_claim() {
    // One word, four /28 lanes, all held. Three threads each release a lane and claim one: each
    // must succeed, since its own lane is free the moment its release returns. loom found the
    // interleaving where a release that looked like "no summary change" (another release had
    // not yet written its summary) left its lane invisible. Three threads make the state space
    // large, so this model uses a preemption bound of 3.
    model_bounded(3, || {
        let s = subnet("10.0.0.0/26");
        let lanes: Vec<IpNet> = (0..4)
            .map(|_| s.allocate_prefix(28).unwrap().cidr)
            .collect();
        let handles: Vec<_> = lanes[..3]
            .iter()
            .map(|&lane| {
                let s = Arc::clone(&s);
                thread::spawn(move || {
                    s.release(lane).unwrap();
                    s.allocate_prefix(28).expect("its own lane was free").cidr
                })
            })
            .collect();
        let mut got: Vec<IpNet> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        got.push(lanes[3]);
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 4, "a lane was handed out twice");
        s.verify().unwrap();
    });
}

/// One thread releases `held[0]` while the other asks whether it is free and, if it is, asks for
/// any block of its length. A block seen free before the request began is free for all of it,
/// so the request must not fail: a failure would mean the search believed summaries that had
/// not yet caught up with a release whose compare-and-swap (or, for a whole word, store) was
/// done. `held` fills the map.
fn seen_free_is_never_refused(cidr: &'static str, held: &'static [&'static str]) {
    model(move || {
        let s = subnet(cidr);
        for h in held {
            s.allocate_prefix_at(net(h)).unwrap();
        }
        let block = net(held[0]);
        let s2 = Arc::clone(&s);
        let t = thread::spawn(move || s2.release(block).unwrap());
        if s.is_free(block).unwrap() {
            let got = s.allocate_prefix(block.prefix_len());
            assert_eq!(got.expect("a free block was refused").cidr, block);
        }
        t.join().unwrap();
        s.verify().unwrap();
    });
}

#[test]
fn a_lane_seen_free_is_never_refused() {
    // One word, four /28 lanes (the lock-free release).
    let lanes = &[
        "10.0.0.0/28",
        "10.0.0.16/28",
        "10.0.0.32/28",
        "10.0.0.48/28",
    ];
    seen_free_is_never_refused("10.0.0.0/26", lanes);
}

#[test]
fn a_word_seen_free_is_never_refused() {
    // Two words, one /26 each (the release under the map's lock).
    seen_free_is_never_refused("10.0.0.0/25", &["10.0.0.0/26", "10.0.0.64/26"]);
}

#[test]
fn an_address_seen_free_is_never_refused() {
    // The same for single addresses, which take the quick path of an automatic claim over the
    // whole map (no reservations): one word, every unit held, one address released.
    model(|| {
        let s = subnet("10.0.0.0/26");
        for held in [
            "10.0.0.0/27",
            "10.0.0.32/28",
            "10.0.0.48/29",
            "10.0.0.56/30",
            "10.0.0.60/31",
            "10.0.0.62/32",
            "10.0.0.63/32",
        ] {
            s.allocate_prefix_at(net(held)).unwrap();
        }
        let single = net("10.0.0.62/32");
        let s2 = Arc::clone(&s);
        let t = thread::spawn(move || s2.release(single).unwrap());
        if s.is_free(single).unwrap() {
            let got = s.allocate_ip().expect("a free address was refused");
            assert_eq!(got, single.addr());
        }
        t.join().unwrap();
        s.verify().unwrap();
    });
}

// ---- the node's assignment protocol ----------------------------------------------------------

mod node {
    use super::*;
    use pdipam::{
        limits::InstanceLimits, InterfaceFlags, InterfaceSpec, ManualClock, Node, NodeConfig,
        PodKey, PodRequest, Timestamp,
    };
    // The node takes a std `Arc<dyn Clock>`; its own atomics and locks are loom's (the sync shim).
    use std::sync::Arc;
    use std::time::Duration;

    /// A node with one interface holding `secondaries` secondary addresses (secondary mode keeps
    /// the block words tiny) or one /28, with the given cooldown.
    fn node(prefix: bool, secondaries: u8, cooldown: Duration) -> (Arc<Node>, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(Timestamp::from_unix_nanos(1_000)));
        let mode = if prefix {
            pdipam::AddressMode::Prefix
        } else {
            pdipam::AddressMode::Secondary
        };
        let cfg = NodeConfig::new().mode(mode).cooldown(cooldown);
        let limits = InstanceLimits::lookup("m5.large").unwrap().clone();
        let n = Node::with_clock(limits, cfg, clock.clone());
        n.attach_interface(
            InterfaceSpec::new("eni-0", 0, "10.0.0.10".parse().unwrap()).flags(InterfaceFlags {
                primary: true,
                ..Default::default()
            }),
        )
        .unwrap();
        if prefix {
            n.attach_prefix("eni-0", net("10.0.1.0/28")).unwrap();
        }
        for i in 0..secondaries {
            n.attach_secondary("eni-0", format!("10.0.0.{}", 20 + i).parse().unwrap())
                .unwrap();
        }
        (Arc::new(n), clock)
    }

    fn req(c: &str) -> PodRequest {
        PodRequest::new(PodKey::new("net", c, "eth0"))
    }

    /// Two container ids whose keys live in different index shards, so that two threads
    /// assigning them race on the block word, not on one shard lock.
    fn apart(n: &Node) -> (String, String) {
        let (first, mut others) = apart_from_first(n, 1);
        (first, others.remove(0))
    }

    /// "k0" and `count` more container ids whose keys live in another index shard than k0's.
    fn apart_from_first(n: &Node, count: usize) -> (String, Vec<String>) {
        let shard = |c: &str| n.loom_shard_of(&PodKey::new("net", c, "eth0"));
        let first = "k0".to_string();
        let others = (1..)
            .map(|i| format!("k{i}"))
            .filter(|c| shard(c) != shard(&first))
            .take(count)
            .collect();
        (first, others)
    }

    #[test]
    fn two_keys_get_two_addresses() {
        model(|| {
            let (n, _) = node(false, 2, Duration::ZERO);
            let (ka, kb) = apart(&n);
            let n2 = Arc::clone(&n);
            let t = thread::spawn(move || n2.assign(req(&ka)).unwrap().address);
            let b = n.assign(req(&kb)).unwrap().address;
            let a = t.join().unwrap();
            assert_ne!(a, b);
            n.verify().unwrap();
        });
    }

    #[test]
    fn one_key_from_two_threads_gets_one_address() {
        model(|| {
            let (n, _) = node(false, 2, Duration::ZERO);
            let n2 = Arc::clone(&n);
            let t = thread::spawn(move || n2.assign(req("a")).unwrap());
            let mine = n.assign(req("a")).unwrap();
            let theirs = t.join().unwrap();
            assert_eq!(mine.address, theirs.address);
            assert!(
                mine.existing != theirs.existing,
                "exactly one fresh assignment"
            );
            assert_eq!(n.pod_count(), 1);
            n.verify().unwrap();
        });
    }

    #[test]
    fn release_and_reuse_without_cooldown() {
        model(|| {
            // One address: a pod holds it; one thread releases, the other asks for it.
            let (n, _) = node(false, 1, Duration::ZERO);
            let (ka, kb) = apart(&n);
            n.assign(req(&ka)).unwrap();
            let n2 = Arc::clone(&n);
            let t = thread::spawn(move || n2.release(&PodKey::new("net", &*ka, "eth0")).unwrap());
            let got = n.assign(req(&kb)).ok();
            t.join().unwrap();
            // Either it came too early (refused) or it got the released address: never both.
            assert_eq!(n.pod_count(), usize::from(got.is_some()));
            n.verify().unwrap();
        });
    }

    #[test]
    fn a_failed_assignment_saw_every_address_taken_at_once() {
        model(|| {
            // Two addresses, .20 held by `p1`, .21 free. One thread releases p1 and then claims
            // exactly .21 for another pod; the other asks for any address. In every order one
            // address is free for the asker (before the release .21 is; after it .20 is, and the
            // claim takes only .21), so its request must not fail: a search that read .20 taken
            // and then .21 taken saw no single instant, and may not report that as "none free".
            let (n, _) = node(false, 2, Duration::ZERO);
            let (asker, others) = apart_from_first(&n, 2);
            let [holder, taker] = <[String; 2]>::try_from(others).unwrap();
            assert_eq!(
                n.assign(req(&holder)).unwrap().address.to_string(),
                "10.0.0.20"
            );
            let n2 = Arc::clone(&n);
            let t = thread::spawn(move || {
                n2.release(&PodKey::new("net", &*holder, "eth0")).unwrap();
                let at = n2.clock().now();
                n2.assign_address(req(&taker), "10.0.0.21".parse().unwrap(), at)
                    .ok()
                    .map(|a| a.address)
            });
            let mine = n
                .assign(req(&asker))
                .expect("an address was free at every instant");
            let theirs = t.join().unwrap();
            assert_ne!(Some(mine.address), theirs);
            n.verify().unwrap();
        });
    }

    #[test]
    fn a_key_assigned_while_a_full_node_is_rechecked_is_not_assigned_twice() {
        model(|| {
            // Two addresses, both held. One thread asks for key k; the other releases the first
            // holder, asks for k and releases the second holder. The first may find the node
            // full, let go of its shard and look again with every shard locked, by which time k
            // may hold an address and the other be free: it must get k's assignment back, not
            // the free address as a second one.
            let (n, _) = node(false, 2, Duration::ZERO);
            let (k, others) = apart_from_first(&n, 2);
            let [h1, h2] = <[String; 2]>::try_from(others).unwrap();
            n.assign(req(&h1)).unwrap();
            n.assign(req(&h2)).unwrap();
            let n2 = Arc::clone(&n);
            let k2 = k.clone();
            let t = thread::spawn(move || {
                n2.release(&PodKey::new("net", &*h1, "eth0")).unwrap();
                let got = n2.assign(req(&k2)).unwrap();
                n2.release(&PodKey::new("net", &*h2, "eth0")).unwrap();
                got
            });
            let mine = n.assign(req(&k));
            let theirs = t.join().unwrap();
            if let Ok(mine) = mine {
                assert_eq!(mine.address, theirs.address);
                assert!(
                    mine.existing != theirs.existing,
                    "exactly one fresh assignment"
                );
            }
            assert_eq!(n.pod_count(), 1);
            n.verify().unwrap();
        });
    }

    #[test]
    fn the_fresh_cache_never_hides_an_expired_address() {
        model_bounded(3, || {
            // One /28, all held; .1 and then .0 released, so that at "now" .1 has expired and .0
            // has not. Thread A's search reads .0's time (and remembers it as fresh) on its way
            // to .1, while thread B releases .5 into the same word. Once .0's cooldown is over
            // too, the next assignment must get .0: a remembered "fresh" may not outlive it.
            let ms = Duration::from_millis;
            let (n, clock) = node(true, 0, Duration::from_secs(1));
            for i in 0..16 {
                n.assign(req(&format!("p{i}"))).unwrap();
            }
            n.release(&PodKey::new("net", "p1", "eth0")).unwrap();
            clock.advance(ms(500));
            n.release(&PodKey::new("net", "p0", "eth0")).unwrap();
            clock.advance(ms(600));
            let (kx, _) = apart(&n);
            let n2 = Arc::clone(&n);
            let t = thread::spawn(move || n2.assign(req(&kx)).unwrap().address);
            n.release(&PodKey::new("net", "p5", "eth0")).unwrap();
            assert_eq!(t.join().unwrap().to_string(), "10.0.1.1");
            clock.advance(ms(500));
            let got = n.assign(req("late")).unwrap().address;
            assert_eq!(got.to_string(), "10.0.1.0", "the lowest expired address");
            n.verify().unwrap();
        });
    }

    #[test]
    fn an_expired_cooldown_is_claimed_once() {
        model_bounded(3, || {
            // One /28, 15 addresses held, the 16th cooling and expired: two threads race for it.
            let (n, clock) = node(true, 0, Duration::from_secs(1));
            for i in 0..16 {
                n.assign(req(&format!("p{i}"))).unwrap();
            }
            n.release(&PodKey::new("net", "p15", "eth0")).unwrap();
            // Past the cooldown (an address rests while at most the cooldown has passed).
            clock.advance(Duration::from_secs(1) + Duration::from_nanos(1));
            let (kx, ky) = apart(&n);
            let n2 = Arc::clone(&n);
            let t = thread::spawn(move || n2.assign(req(&kx)).is_ok());
            let mine = n.assign(req(&ky)).is_ok();
            let theirs = t.join().unwrap();
            assert!(mine != theirs, "exactly one gets the address");
            n.verify().unwrap();
        });
    }

    #[test]
    fn a_reconcile_racing_an_assignment_never_gives_one_address_twice() {
        model(|| {
            // Secondary addresses .20 and .21; a pod holds .20. The cloud now reports .21 and
            // .22 but not .20: the reconcile removes .20 (quarantining its pod) and adds .22,
            // while another key is assigned. Whatever the order, every address is held once.
            let (n, clock) = node(false, 2, Duration::ZERO);
            let (holder, asker) = apart(&n);
            n.assign(req(&holder)).unwrap();
            clock.advance(pdipam::RECONCILE_COOLDOWN);
            let report = vec![pdipam::ObservedInterface::new(InterfaceSpec::new(
                "eni-0",
                0,
                "10.0.0.10".parse().unwrap(),
            ))
            .secondary_address("10.0.0.21".parse().unwrap())
            .secondary_address("10.0.0.22".parse().unwrap())];
            let n2 = Arc::clone(&n);
            let t = thread::spawn(move || n2.reconcile(&report));
            let got = n.assign(req(&asker)).unwrap().address;
            let diff = t.join().unwrap();
            assert_ne!(got.to_string(), "10.0.0.20");
            assert_eq!(diff.quarantined.len(), 1);
            assert_eq!(diff.quarantined[0].address.to_string(), "10.0.0.20");
            let mut held: Vec<_> = n.pods().iter().map(|p| p.address).collect();
            held.extend(n.quarantined().iter().map(|q| q.address));
            let distinct: std::collections::HashSet<_> = held.iter().collect();
            assert_eq!((held.len(), distinct.len()), (2, 2));
            n.verify().unwrap();
        });
    }
}

// ---- several network cards -------------------------------------------------------------------

mod cards {
    use super::*;
    use pdipam::cards::{CardOptions, MultiCardNode};
    use pdipam::{limits::InstanceLimits, InterfaceSpec, ManualClock, NodeConfig, PodKey};
    use pdipam::{PodRequest, Timestamp};
    use std::sync::Arc;
    use std::time::Duration;

    /// Two cards in secondary mode, one address each (.20 on card 0, .21 on card 1).
    fn two_cards() -> Arc<MultiCardNode> {
        let clock = Arc::new(ManualClock::new(Timestamp::from_unix_nanos(1_000)));
        let cfg = NodeConfig::new()
            .mode(pdipam::AddressMode::Secondary)
            .cooldown(Duration::ZERO);
        let limits = InstanceLimits::lookup("c6in.32xlarge").unwrap();
        let options = CardOptions::new().multi_nic(true);
        let n = MultiCardNode::with_clock(limits, cfg, &options, clock).unwrap();
        for card in 0..2u32 {
            let node = n.card(card).unwrap();
            let primary = format!("10.0.{card}.10").parse().unwrap();
            node.attach_interface(InterfaceSpec::new(format!("eni-{card}"), 0, primary))
                .unwrap();
            let address = format!("10.0.0.{}", 20 + card).parse().unwrap();
            node.attach_secondary(&format!("eni-{card}"), address)
                .unwrap();
        }
        Arc::new(n)
    }

    #[test]
    fn one_key_from_two_threads_takes_one_address_across_cards() {
        model(|| {
            // Card 0's address is held by `other`. One thread asks for key k (card 0 is full:
            // it falls through to card 1); the other releases `other` and asks for k too. k
            // must end with one address, not card 1's and the freed one of card 0.
            let n = two_cards();
            let key = || PodKey::new("net", "k", "eth0");
            let other = PodKey::new("net", "other", "eth0");
            n.assign(PodRequest::new(other.clone())).unwrap();
            let n2 = Arc::clone(&n);
            let t = thread::spawn(move || n2.assign(PodRequest::new(key())).unwrap());
            n.release(&other).unwrap();
            let mine = n.assign(PodRequest::new(key())).unwrap();
            let theirs = t.join().unwrap();
            assert_eq!(
                (mine.card, mine.assignment.address),
                (theirs.card, theirs.assignment.address)
            );
            assert_eq!(n.held(&key()).len(), 1);
            n.verify().unwrap();
        });
    }

    #[test]
    fn a_multi_nic_pod_racing_a_single_one_never_leaves_half() {
        model(|| {
            // One address per card. A multi-NIC pod wants both; a single pod wants one, from
            // card 0 first. Exactly one of them is served, and the multi-NIC pod holds both
            // addresses or none: a card-0 address it took before card 1 refused goes back.
            let n = two_cards();
            let n2 = Arc::clone(&n);
            let t = thread::spawn(move || {
                n2.assign_multi_nic(PodRequest::new(PodKey::new("net", "multi", "eth0")))
                    .is_ok()
            });
            let single = n
                .assign(PodRequest::new(PodKey::new("net", "single", "eth0")))
                .ok();
            let multi = t.join().unwrap();
            let held = n.held(&PodKey::new("net", "multi", "eth0")).len();
            assert_eq!(held, if multi { 2 } else { 0 });
            assert!(
                multi != single.is_some(),
                "multi {multi}, single {single:?}"
            );
            n.verify().unwrap();
        });
    }
}
