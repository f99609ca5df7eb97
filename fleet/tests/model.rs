//! Random claims and releases from several members, one after another, against a naive model
//! of who holds what: every answer is the model's, and etcd ends holding exactly the model's
//! allocations. Members' mirrors go stale between their turns (others claim and release), which
//! is what this exercises: a refusal is only believed after a fresh read, and a stale view never
//! lets a block be claimed twice.

mod common;

use common::EtcdServer;
use ipnet::IpNet;
use pdipam::SubnetError;
use pdipam_fleet::{verify, FleetConfig, FleetError, FleetSubnet, Keyspace, Member};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// A small deterministic generator (the same sequence on every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn random_claims_and_releases_from_three_members_match_the_model() {
    let Some(server) = EtcdServer::start("model") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let etcd = server.connect(Duration::from_secs(5)).await;
        let keys = Keyspace::new("");
        // A /24 in sixteen chunks of one /28 (the default): small enough to fill up and free
        // again many times; /27s and /26s span two and four chunks.
        let cidr: IpNet = "10.0.0.0/24".parse().unwrap();
        FleetSubnet::init(&etcd, &keys, &FleetConfig::new(cidr))
            .await
            .unwrap();
        let mut members = Vec::new();
        let mut subnets = Vec::new();
        for n in 0..3 {
            let m = Member::join(&etcd, &keys, &format!("m{n}"), Duration::from_secs(60))
                .await
                .unwrap();
            subnets.push(FleetSubnet::open(&etcd, &keys, cidr, &m).await.unwrap());
            members.push(m);
        }
        // The model: every allocation and its holder; /28s without reserved addresses.
        let mut model: BTreeMap<IpNet, usize> = BTreeMap::new();
        let reserved = |b: &IpNet| {
            b.contains(&IpAddr::from(Ipv4Addr::new(10, 0, 0, 0)))
                || b.contains(&IpAddr::from(Ipv4Addr::new(10, 0, 0, 255)))
        };
        let blocks = |len: u8| -> Vec<IpNet> { cidr.subnets(len).unwrap().collect() };
        let overlaps = |model: &BTreeMap<IpNet, usize>, b: &IpNet| {
            model.keys().any(|h| h.contains(b) || b.contains(h))
        };
        let mut rng = Lcg(7);
        for step in 0..400 {
            let who = rng.below(3) as usize;
            let s = &subnets[who];
            match rng.below(4) {
                0 => {
                    let len = [28, 28, 27, 26][rng.below(4) as usize];
                    let free = blocks(len)
                        .iter()
                        .filter(|b| !reserved(b) && !overlaps(&model, b))
                        .count();
                    match s.allocate_prefix(len).await {
                        Ok(p) => {
                            assert!(
                                !reserved(&p) && !overlaps(&model, &p),
                                "step {step}: {p} given twice"
                            );
                            model.insert(p, who);
                        }
                        Err(FleetError::Subnet(
                            SubnetError::InsufficientCidrBlocks { .. }
                            | SubnetError::InsufficientFreeAddressesInSubnet { .. },
                        )) => assert_eq!(free, 0, "step {step}: refused with {free} /{len}s free"),
                        Err(e) => panic!("step {step}: {e}"),
                    }
                }
                1 => {
                    let all = blocks([28, 27, 26][rng.below(3) as usize]);
                    let b = all[rng.below(all.len() as u64) as usize];
                    let expect_ok = !reserved(&b) && !overlaps(&model, &b);
                    let got = s.allocate_prefix_at(b).await;
                    assert_eq!(got.is_ok(), expect_ok, "step {step}: {b}: {got:?}");
                    if expect_ok {
                        model.insert(b, who);
                    }
                }
                2 => {
                    let free_addresses = 256
                        - 5
                        - model
                            .keys()
                            .map(|h| 1u32 << (32 - h.prefix_len()))
                            .sum::<u32>();
                    match s.allocate_ip().await {
                        Ok(a) => {
                            let a = IpNet::from(a);
                            assert!(!overlaps(&model, &a), "step {step}: {a} given twice");
                            model.insert(a, who);
                        }
                        Err(FleetError::Subnet(_)) => assert_eq!(free_addresses, 0, "step {step}"),
                        Err(e) => panic!("step {step}: {e}"),
                    }
                }
                _ => {
                    let held: Vec<(IpNet, usize)> = model.iter().map(|(c, h)| (*c, *h)).collect();
                    if held.is_empty() {
                        continue;
                    }
                    let (c, holder) = held[rng.below(held.len() as u64) as usize];
                    match s.release(c).await {
                        Ok(()) => {
                            assert_eq!(holder, who, "step {step}: {c} released by a non-holder");
                            model.remove(&c);
                        }
                        Err(FleetError::NotHolder { .. }) => assert_ne!(holder, who, "step {step}"),
                        Err(e) => panic!("step {step}: {c} by m{who}: {e}"),
                    }
                }
            }
        }
        let report = verify(&etcd, &keys, cidr).await.unwrap();
        let held: BTreeMap<IpNet, usize> = report
            .runs
            .iter()
            .map(|r| (r.cidr, r.node[1..].parse().unwrap()))
            .collect();
        assert_eq!(held, model);
        assert!(report.orphans.is_empty());
    });
}
