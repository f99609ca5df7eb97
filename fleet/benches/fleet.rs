//! Claims against a real etcd: pdipam's chunked fleet beside the one-key design (the whole
//! range in one key, updated by compare-and-swap: how whereabouts stores a range), measured in
//! the same run on the same etcd.
//!
//! `cargo bench -p pdipam-fleet --bench fleet` starts etcd on loopback and, for 1, 10, 100 and
//! 1000 concurrent nodes (tasks sharing one connection; each node its own lease and, for
//! pdipam, its own mirror), has the nodes claim 1000 /28s of a fresh /16 between them (1000
//! each, 100, 10, one: the 1000-node row is "every node gets its first /28"). It prints, per
//! design: claims per second, p50 and p99 of a claim's latency (retries included), transactions
//! and lost races per claim, and the ratio to the baseline; then pdipam filling a whole /16 from
//! 1000 nodes (lost races per claim, and the chunk values read to learn that it is full).
//! Without `--bench` (as `cargo test --benches` runs it) it makes one small round of each and
//! checks the answers only.

use ipnet::IpNet;
use pdipam::SubnetError;
use pdipam_fleet::testing::EtcdServer;
use pdipam_fleet::{verify, Etcd, FleetConfig, FleetError, FleetSubnet, Keyspace, Member};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Barrier;

/// What one run measured.
struct Run {
    claims: Vec<(IpNet, Duration)>,
    elapsed: Duration,
    transactions: u64,
    conflicts: u64,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.claims.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut l: Vec<Duration> = self.claims.iter().map(|c| c.1).collect();
        l.sort();
        l[((l.len() - 1) as f64 * p).round() as usize]
    }

    fn check_distinct(&self, what: &str) {
        let distinct: HashSet<IpNet> = self.claims.iter().map(|c| c.0).collect();
        assert_eq!(
            distinct.len(),
            self.claims.len(),
            "{what}: a /28 handed out twice"
        );
    }
}

/// The one-key baseline: every allocation of the range in one value, `{"<first address>":
/// "<node>"}`, changed by a transaction that compares the key's revision (its else-branch
/// reads the key again, so a lost race costs one round trip, as pdipam's).
mod one_key {
    use super::*;
    use etcd_client::{Compare, CompareOp, Txn, TxnOp, TxnOpResponse};

    pub async fn claim(
        etcd: &Etcd,
        key: &str,
        cidr: IpNet,
        node: &str,
        seen: &mut (BTreeMap<String, String>, i64),
        counts: &mut (u64, u64),
    ) -> Option<IpNet> {
        loop {
            let free = cidr
                .subnets(28)
                .unwrap()
                // The blocks holding the AWS reserved addresses, as pdipam's profile.
                .filter(|b| b.network() != cidr.network() && b.broadcast() != cidr.broadcast())
                .find(|b| !seen.0.contains_key(&b.to_string()))?;
            let mut next = seen.0.clone();
            next.insert(free.to_string(), node.to_string());
            let value = serde_json::to_vec(&next).unwrap();
            let txn = Txn::new()
                .when([Compare::mod_revision(key, CompareOp::Equal, seen.1)])
                .and_then([TxnOp::put(key, value, None)])
                .or_else([TxnOp::get(key, None)]);
            counts.0 += 1;
            let resp = loop {
                match etcd.call(etcd.client().txn(txn.clone())).await {
                    Ok(r) => break r,
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            };
            if resp.succeeded() {
                *seen = (next, resp.header().unwrap().revision());
                return Some(free);
            }
            counts.1 += 1;
            if let Some(TxnOpResponse::Get(g)) = resp.op_responses().first() {
                if let Some(kv) = g.kvs().first() {
                    *seen = (
                        serde_json::from_slice(kv.value()).unwrap(),
                        kv.mod_revision(),
                    );
                }
            }
        }
    }
}

/// `nodes` nodes claim `per_node` /28s each of `cidr`, all released at one barrier.
async fn run_baseline(etcd: &Etcd, cidr: IpNet, nodes: usize, per_node: usize) -> Run {
    let key = format!("/baseline/{}", cidr.to_string().replace('/', "_"));
    let barrier = Arc::new(Barrier::new(nodes + 1));
    let mut tasks = Vec::new();
    for n in 0..nodes {
        let (etcd, key, barrier) = (etcd.clone(), key.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let node = format!("node-{n:04}");
            let mut seen = (BTreeMap::new(), 0);
            let mut counts = (0, 0);
            barrier.wait().await;
            let mut out = Vec::new();
            for _ in 0..per_node {
                let t = Instant::now();
                let Some(b) =
                    one_key::claim(&etcd, &key, cidr, &node, &mut seen, &mut counts).await
                else {
                    break;
                };
                out.push((b, t.elapsed()));
            }
            (out, counts)
        }));
    }
    barrier.wait().await;
    let started = Instant::now();
    collect(tasks, started).await
}

async fn run_pdipam(etcd: &Etcd, cidr: IpNet, nodes: usize, per_node: usize) -> Run {
    let keys = Keyspace::new("/bench");
    FleetSubnet::init(etcd, &keys, &FleetConfig::new(cidr))
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(nodes + 1));
    let mut tasks = Vec::new();
    for n in 0..nodes {
        let (etcd, keys, barrier) = (etcd.clone(), keys.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let node = format!("node-{n:04}");
            let me = Member::join(&etcd, &keys, &node, Duration::from_secs(120))
                .await
                .unwrap();
            let subnet = FleetSubnet::open(&etcd, &keys, cidr, &me).await.unwrap();
            barrier.wait().await;
            let mut out = Vec::new();
            for _ in 0..per_node {
                let t = Instant::now();
                match subnet.allocate_prefix(28).await {
                    Ok(b) => out.push((b, t.elapsed())),
                    Err(FleetError::Subnet(SubnetError::InsufficientCidrBlocks { .. })) => break,
                    Err(e) => panic!("{node}: {e}"),
                }
            }
            let counts = subnet.transactions();
            drop(subnet);
            drop(me);
            (out, counts)
        }));
    }
    barrier.wait().await;
    let started = Instant::now();
    let run = collect(tasks, started).await;
    let report = verify(etcd, &keys, cidr).await.unwrap();
    assert_eq!(
        report.runs.len(),
        run.claims.len(),
        "etcd holds what was acknowledged"
    );
    run
}

type Outcome = (Vec<(IpNet, Duration)>, (u64, u64));

async fn collect(tasks: Vec<tokio::task::JoinHandle<Outcome>>, started: Instant) -> Run {
    let mut run = Run {
        claims: Vec::new(),
        elapsed: Duration::ZERO,
        transactions: 0,
        conflicts: 0,
    };
    for t in tasks {
        let (claims, (sent, lost)) = t.await.unwrap();
        run.claims.extend(claims);
        run.transactions += sent;
        run.conflicts += lost;
    }
    run.elapsed = started.elapsed();
    run
}

/// pdipam filling `cidr` from `nodes` nodes: lost races per claim, and the chunk values the
/// nodes read in the calls that found it full.
async fn fill(etcd: &Etcd, cidr: IpNet, nodes: usize) -> (usize, u64, u64, u64, Duration) {
    let keys = Keyspace::new("/fill");
    FleetSubnet::init(etcd, &keys, &FleetConfig::new(cidr))
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(nodes + 1));
    let mut tasks = Vec::new();
    for n in 0..nodes {
        let (etcd, keys, barrier) = (etcd.clone(), keys.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let me = Member::join(&etcd, &keys, &format!("f-{n:04}"), Duration::from_secs(120))
                .await
                .unwrap();
            let subnet = FleetSubnet::open(&etcd, &keys, cidr, &me).await.unwrap();
            barrier.wait().await;
            let mut claims = 0;
            loop {
                let before = subnet.chunks_read();
                match subnet.allocate_prefix(28).await {
                    Ok(_) => claims += 1,
                    Err(FleetError::Subnet(SubnetError::InsufficientCidrBlocks { .. })) => {
                        let (sent, lost) = subnet.transactions();
                        return (claims, sent, lost, subnet.chunks_read() - before);
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    barrier.wait().await;
    let started = Instant::now();
    let (mut claims, mut sent, mut lost, mut read) = (0, 0, 0, 0);
    for t in tasks {
        let (c, s, l, r) = t.await.unwrap();
        claims += c;
        sent += s;
        lost += l;
        read += r;
    }
    (claims, sent, lost, read, started.elapsed())
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let Some(server) = EtcdServer::start("bench") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (rows, total, fill_nodes, fill_cidr): (&[usize], usize, usize, &str) = if full {
        (&[1, 10, 100, 1000], 1000, 1000, "10.200.0.0/16")
    } else {
        (&[1, 10], 20, 10, "10.200.0.0/22")
    };
    rt.block_on(async {
        let etcd = server.connect(Duration::from_secs(60)).await;
        println!("| nodes | design | claims | claims/s | p50 ms | p99 ms | txns/claim | lost/claim | pdipam / one key |");
        println!("|---|---|---|---|---|---|---|---|---|");
        for (i, &nodes) in rows.iter().enumerate() {
            let per_node = total.div_ceil(nodes);
            let base = run_baseline(&etcd, format!("10.{}.0.0/16", 100 + i).parse().unwrap(), nodes, per_node).await;
            base.check_distinct("one key");
            let ours = run_pdipam(&etcd, format!("10.{}.0.0/16", i).parse().unwrap(), nodes, per_node).await;
            ours.check_distinct("pdipam");
            for (name, r, ratio) in [
                ("one key", &base, String::new()),
                ("pdipam", &ours, format!("{:.1}x", ours.per_second() / base.per_second())),
            ] {
                let n = r.claims.len() as f64;
                println!(
                    "| {nodes} | {name} | {} | {:.0} | {} | {} | {:.2} | {:.2} | {ratio} |",
                    r.claims.len(),
                    r.per_second(),
                    ms(r.percentile(0.5)),
                    ms(r.percentile(0.99)),
                    r.transactions as f64 / n,
                    r.conflicts as f64 / n,
                );
            }
        }
        let (claims, sent, lost, read, took) =
            fill(&etcd, fill_cidr.parse().unwrap(), fill_nodes).await;
        println!(
            "\npdipam, {fill_nodes} nodes filling {fill_cidr}: {claims} /28s in {:.1} s, {:.2} transactions and {:.2} lost races per claim; the calls that found it full read {read} chunk values in all ({:.2} per node)",
            took.as_secs_f64(),
            sent as f64 / claims as f64,
            lost as f64 / claims as f64,
            read as f64 / fill_nodes as f64
        );
    });
}
