//! pdipam's criterion suite. Each case runs beside its baseline, the naive model.
//!
//! `cargo bench --bench pdipam` runs everything; `cargo bench --bench pdipam -- W` the subnet
//! workloads W1-W5 of BENCHMARKS.md. Times are per operation: setup is never timed.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ipnet::{IpNet, Ipv4Net};
use pdipam::testing::NaiveSubnet;
use pdipam::{ReservedProfile, Subnet, SubnetOptions};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

const SUBNET: &str = "10.0.0.0/16";
const BLOCKS: u32 = 4096;

/// What the workloads need from an allocator, so pdipam and the model run the same code.
trait Alloc {
    fn fresh() -> Self;
    fn prefix(&mut self, len: u8) -> Option<IpNet>;
    fn prefix_at(&mut self, c: IpNet);
    fn ip(&mut self) -> Option<IpAddr>;
    fn ip_at(&mut self, a: IpAddr);
    fn release(&mut self, c: IpNet);
}

fn opts() -> SubnetOptions {
    SubnetOptions::default().profile(ReservedProfile::None)
}

/// Both allocators have the same method names; one impl body serves both.
macro_rules! impl_alloc {
    ($t:ty) => {
        impl Alloc for $t {
            fn fresh() -> Self {
                <$t>::with_options(SUBNET.parse().unwrap(), opts()).unwrap()
            }
            fn prefix(&mut self, len: u8) -> Option<IpNet> {
                self.allocate_prefix(len).ok().map(|a| a.cidr)
            }
            fn prefix_at(&mut self, c: IpNet) {
                self.allocate_prefix_at(c).unwrap()
            }
            fn ip(&mut self) -> Option<IpAddr> {
                self.allocate_ip().ok()
            }
            fn ip_at(&mut self, a: IpAddr) {
                self.allocate_ip_at(a).unwrap()
            }
            fn release(&mut self, c: IpNet) {
                <$t>::release(self, c).unwrap()
            }
        }
    };
}

impl_alloc!(Subnet);
impl_alloc!(NaiveSubnet);

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, (self.next() % (i as u64 + 1)) as usize);
        }
    }
}

fn block(i: u32) -> IpNet {
    IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + i * 16), 28).unwrap())
}

fn addr(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
}

/// Times `per_round` operations on fresh states built by `setup`, until `iters` are done.
fn rounds<A>(
    iters: u64,
    per_round: u64,
    mut setup: impl FnMut() -> A,
    mut op: impl FnMut(&mut A),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let mut a = setup();
        let k = per_round.min(iters - done);
        let t = Instant::now();
        for _ in 0..k {
            op(&mut a);
        }
        total += t.elapsed();
        done += k;
    }
    total
}

/// W1: allocate all 4096 /28s of an empty /16.
fn w1<A: Alloc>(iters: u64) -> Duration {
    rounds(iters, BLOCKS as u64, A::fresh, |a| {
        black_box(a.prefix(28).unwrap());
    })
}

/// W2: with 3686 random /28s taken, allocate the remaining 410.
fn w2<A: Alloc>(iters: u64) -> Duration {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    rounds(
        iters,
        410,
        || {
            let mut a = A::fresh();
            let mut order: Vec<u32> = (0..BLOCKS).collect();
            rng.shuffle(&mut order);
            for &b in &order[..3686] {
                a.prefix_at(block(b));
            }
            a
        },
        |a| {
            black_box(a.prefix(28).unwrap());
        },
    )
}

/// W3: one random /32 taken in every /28; a /28 request that must fail.
fn w3<A: Alloc>(iters: u64) -> Duration {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut a = A::fresh();
    for b in 0..BLOCKS {
        a.ip_at(addr(b * 16 + (rng.next() % 16) as u32));
    }
    let t = Instant::now();
    for _ in 0..iters {
        assert!(black_box(a.prefix(28)).is_none());
    }
    t.elapsed()
}

/// W4: 99% of the addresses taken at random; allocate the remaining 1% one by one.
fn w4<A: Alloc>(iters: u64) -> Duration {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let total = 1u32 << 16;
    let keep = total / 100;
    rounds(
        iters,
        keep as u64,
        || {
            let mut a = A::fresh();
            let mut order: Vec<u32> = (0..total).collect();
            rng.shuffle(&mut order);
            for &u in &order[..(total - keep) as usize] {
                a.ip_at(addr(u));
            }
            a
        },
        |a| {
            black_box(a.ip().unwrap());
        },
    )
}

/// W5: half the /28s held; release a random held /28 and allocate a /28 (one pair).
fn w5<A: Alloc>(iters: u64) -> Duration {
    let mut rng = Rng(0x8CB9_2BA7_2F3D_8DD7);
    let mut a = A::fresh();
    let mut order: Vec<u32> = (0..BLOCKS).collect();
    rng.shuffle(&mut order);
    let mut held: Vec<IpNet> = order[..2048].iter().map(|&b| block(b)).collect();
    for &c in &held {
        a.prefix_at(c);
    }
    let picks: Vec<usize> = (0..1024).map(|_| (rng.next() % 2048) as usize).collect();
    let t = Instant::now();
    for i in 0..iters as usize {
        let k = picks[i % picks.len()];
        a.release(held[k]);
        held[k] = black_box(a.prefix(28).unwrap());
    }
    t.elapsed()
}

fn subnet_workloads(c: &mut Criterion) {
    type W = fn(u64) -> Duration;
    let cases: [(&str, W, W); 5] = [
        ("W1_fill_empty_16_with_28s", w1::<Subnet>, w1::<NaiveSubnet>),
        ("W2_last_410_28s", w2::<Subnet>, w2::<NaiveSubnet>),
        ("W3_28_must_fail", w3::<Subnet>, w3::<NaiveSubnet>),
        ("W4_last_1pct_singles", w4::<Subnet>, w4::<NaiveSubnet>),
        ("W5_release_alloc_pair", w5::<Subnet>, w5::<NaiveSubnet>),
    ];
    for (name, fast, naive) in cases {
        let mut g = c.benchmark_group(name);
        g.sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        g.bench_function(BenchmarkId::new("pdipam", "10.0.0.0/16"), |b| {
            b.iter_custom(fast)
        });
        g.sample_size(10).measurement_time(Duration::from_secs(2));
        g.bench_function(BenchmarkId::new("naive", "10.0.0.0/16"), |b| {
            b.iter_custom(naive)
        });
        g.finish();
    }
}

// ---- node: assign + release, planner --------------------------------------------------------

mod node_benches {
    use super::*;
    use pdipam::testing::NaiveNode;
    use pdipam::{
        limits::InstanceLimits,
        planner::{plan, WarmSettings},
        AddressMode, Clock, InterfaceFlags, InterfaceSpec, ManualClock, Node, NodeConfig, PodKey,
        PodRequest, SystemClock, Timestamp,
    };
    use std::sync::Arc;

    /// What the assign/release bench needs, so pdipam and the big-lock model run the same loop.
    pub trait PodAlloc: Send + Sync + 'static {
        fn make(config: NodeConfig, clock: Arc<ManualClock>) -> Self;
        fn iface(&self, spec: InterfaceSpec);
        fn prefix(&self, id: &str, p: IpNet);
        fn assign(&self, r: PodRequest);
        fn release(&self, k: &PodKey);
    }

    /// `Node` and its model share method names; one impl body serves both.
    macro_rules! impl_pod_alloc {
        ($t:ident, $make:expr) => {
            impl PodAlloc for $t {
                fn make(config: NodeConfig, clock: Arc<ManualClock>) -> Self {
                    let limits = InstanceLimits::lookup("m5.large").unwrap().clone();
                    $make(limits, config, clock)
                }
                fn iface(&self, spec: InterfaceSpec) {
                    self.attach_interface(spec).unwrap()
                }
                fn prefix(&self, id: &str, p: IpNet) {
                    self.attach_prefix(id, p).unwrap()
                }
                fn assign(&self, r: PodRequest) {
                    black_box($t::assign(self, r).unwrap());
                }
                fn release(&self, k: &PodKey) {
                    black_box($t::release(self, k).unwrap());
                }
            }
        };
    }

    impl_pod_alloc!(Node, |l, c, clock: Arc<ManualClock>| Node::with_clock(
        l, c, clock
    ));
    impl_pod_alloc!(NaiveNode, |l, c, clock: Arc<ManualClock>| NaiveNode::new(
        l, c, clock
    ));

    /// `n` as an m5.large with 15 /28s (9 on device 0, 6 on device 1) and 120 of their 240
    /// addresses held by pods.
    fn fifteen_prefixes<N: PodAlloc>(n: N) -> Arc<N> {
        for dev in 0..2u32 {
            n.iface(
                InterfaceSpec::new(
                    format!("eni-{dev}"),
                    dev,
                    format!("10.0.0.{}", 10 + dev).parse().unwrap(),
                )
                .flags(InterfaceFlags {
                    primary: dev == 0,
                    ..Default::default()
                }),
            );
        }
        for i in 0..15u32 {
            let id = if i < 9 { "eni-0" } else { "eni-1" };
            n.prefix(id, format!("10.0.{}.0/28", i + 1).parse().unwrap());
        }
        for i in 0..120 {
            n.assign(PodRequest::new(PodKey::new(
                "aws-cni",
                format!("base{i}"),
                "eth0",
            )));
        }
        Arc::new(n)
    }

    /// `iters` assign + release pairs of fresh keys on each of `threads` threads; keys are built
    /// outside the timed part. With a cooldown each thread moves the clock 1 s per pair, so about
    /// 30 addresses per thread are cooling at any time (a steady churn of one pod per second).
    pub fn pairs<N: PodAlloc>(iters: u64, threads: usize, cooldown: Duration) -> Duration {
        let clock = Arc::new(ManualClock::new(Timestamp::from_unix_nanos(1 << 60)));
        let config = NodeConfig::new().cooldown(cooldown);
        let node = fifteen_prefixes(N::make(config, clock.clone()));
        timed_pairs(node, iters, threads, (!cooldown.is_zero()).then_some(clock))
    }

    /// As [`pairs`], one thread, on a real clock: the node reads it once per assignment. No
    /// cooldown (on a real clock a tight loop would leave every free address cooling).
    pub fn pairs_on_clock(iters: u64, clock: Arc<dyn Clock>) -> Duration {
        let limits = InstanceLimits::lookup("m5.large").unwrap().clone();
        let config = NodeConfig::new().cooldown(Duration::ZERO);
        timed_pairs(
            fifteen_prefixes(Node::with_clock(limits, config, clock)),
            iters,
            1,
            None,
        )
    }

    /// `std::time::SystemTime::now`, the precise wall clock: what a node paid per reading before
    /// `SystemClock` read the coarse one.
    #[derive(Debug)]
    pub struct PreciseClock;

    impl Clock for PreciseClock {
        fn now(&self) -> Timestamp {
            let d = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            Timestamp::from_unix_nanos(d.as_nanos() as u64)
        }
    }

    /// The timed loop of [`pairs`]: each thread assigns and releases fresh keys, moving `tick`
    /// (if any) 1 s per pair; returns the slowest thread's time.
    fn timed_pairs<N: PodAlloc>(
        node: Arc<N>,
        iters: u64,
        threads: usize,
        tick: Option<Arc<ManualClock>>,
    ) -> Duration {
        let barrier = Arc::new(std::sync::Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (node, tick, barrier) = (node.clone(), tick.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let mut spent = Duration::ZERO;
                    let mut done = 0;
                    while done < iters {
                        let n = (iters - done).min(4096);
                        let reqs: Vec<PodRequest> = (0..n)
                            .map(|i| {
                                PodRequest::new(PodKey::new(
                                    "aws-cni",
                                    format!("{t}-{:016x}", done + i),
                                    "eth0",
                                ))
                            })
                            .collect();
                        let keys: Vec<PodKey> = reqs.iter().map(|r| r.key.clone()).collect();
                        barrier.wait();
                        let start = Instant::now();
                        for (r, k) in reqs.into_iter().zip(&keys) {
                            node.assign(r);
                            node.release(k);
                            if let Some(clock) = &tick {
                                clock.advance(Duration::from_secs(1));
                            }
                        }
                        spent += start.elapsed();
                        done += n;
                    }
                    spent
                })
            })
            .collect();
        let spent: Vec<Duration> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        // Per pair per thread: the slowest thread's time over its pairs.
        spent.into_iter().max().unwrap()
    }

    /// A node with 250 pods on 16 /28s of an m5.8xlarge, the shipped warm settings.
    pub fn planner_node() -> (Node, WarmSettings) {
        let clock = Arc::new(ManualClock::new(Timestamp::from_unix_nanos(1 << 60)));
        let limits = InstanceLimits::lookup("m5.8xlarge").unwrap().clone();
        let node = Node::with_clock(limits, NodeConfig::default(), clock);
        for dev in 0..2u32 {
            node.attach_interface(
                InterfaceSpec::new(
                    format!("eni-{dev}"),
                    dev,
                    format!("10.0.0.{}", 10 + dev).parse().unwrap(),
                )
                .flags(InterfaceFlags {
                    primary: dev == 0,
                    ..Default::default()
                }),
            )
            .unwrap();
        }
        for i in 0..17u32 {
            let id = if i < 12 { "eni-0" } else { "eni-1" };
            node.attach_prefix(id, format!("10.0.{}.0/28", i + 1).parse().unwrap())
                .unwrap();
        }
        for i in 0..250 {
            node.assign(PodRequest::new(PodKey::new(
                "aws-cni",
                format!("p{i}"),
                "eth0",
            )))
            .unwrap();
        }
        let mode_check = node.config().mode == AddressMode::Prefix;
        assert!(mode_check);
        (node, WarmSettings::shipped_manifest())
    }

    pub fn benches(c: &mut Criterion) {
        let mut g = c.benchmark_group("node_assign_release");
        g.sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        for (label, cooldown) in [
            ("no-cooldown", Duration::ZERO),
            ("cooldown-30s", Duration::from_secs(30)),
        ] {
            for threads in [1usize, 2] {
                let param = format!("15x28/{label}/{threads}-thread");
                g.bench_function(BenchmarkId::new("pdipam", &param), |b| {
                    b.iter_custom(|iters| pairs::<Node>(iters, threads, cooldown))
                });
                g.bench_function(BenchmarkId::new("big-lock-model", &param), |b| {
                    b.iter_custom(|iters| pairs::<NaiveNode>(iters, threads, cooldown))
                });
            }
        }
        // The same pair on a real clock (no cooldown: one reading per pair), and the reading.
        for (label, clock) in [
            ("system-clock", Arc::new(SystemClock) as Arc<dyn Clock>),
            ("precise-clock", Arc::new(PreciseClock) as Arc<dyn Clock>),
        ] {
            let param = format!("15x28/no-cooldown/{label}/1-thread");
            g.bench_function(BenchmarkId::new("pdipam", &param), |b| {
                b.iter_custom(|iters| pairs_on_clock(iters, clock.clone()))
            });
        }
        g.finish();

        let mut g = c.benchmark_group("clock");
        g.sample_size(20).measurement_time(Duration::from_secs(2));
        g.bench_function("SystemClock::now", |b| {
            b.iter(|| black_box(SystemClock.now()))
        });
        g.bench_function("SystemTime::now", |b| {
            b.iter(|| black_box(PreciseClock.now()))
        });
        g.finish();

        let mut g = c.benchmark_group("planner");
        g.sample_size(30).measurement_time(Duration::from_secs(3));
        let (node, settings) = planner_node();
        let snap = node.snapshot();
        let now = node.clock().now();
        g.bench_function(BenchmarkId::new("plan", "250-pods"), |b| {
            b.iter(|| black_box(plan(node.limits(), &settings, black_box(&snap), now)))
        });
        g.bench_function(BenchmarkId::new("snapshot+plan", "250-pods"), |b| {
            b.iter(|| black_box(plan(node.limits(), &settings, &node.snapshot(), now)))
        });
        g.finish();
    }
}

// ---- checkpoints ------------------------------------------------------------------------------

fn checkpoint_benches(c: &mut Criterion) {
    use pdipam::{
        persist::{NodeCheckpoint, SubnetCheckpoint},
        ManualClock, Timestamp,
    };
    use std::sync::Arc;
    let mut g = c.benchmark_group("checkpoint");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    let (node, settings) = node_benches::planner_node();
    g.bench_function(BenchmarkId::new("node-write-no-fsync", "250-pods"), |b| {
        b.iter(|| black_box(node.checkpoint(Some(&settings)).to_bytes()))
    });
    let bytes = node.checkpoint(Some(&settings)).to_bytes();
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_nanos(1 << 60)));
    g.bench_function(BenchmarkId::new("node-restore", "250-pods"), |b| {
        b.iter(|| {
            let cp = NodeCheckpoint::from_bytes(black_box(&bytes), "bench").unwrap();
            black_box(cp.restore("bench", clock.clone()).unwrap())
        })
    });
    let subnet = Subnet::with_options(SUBNET.parse().unwrap(), opts()).unwrap();
    while subnet.allocate_prefix(28).is_ok() {}
    g.bench_function(
        BenchmarkId::new("subnet-write-no-fsync", "16-with-4096-28s"),
        |b| b.iter(|| black_box(subnet.checkpoint().to_bytes())),
    );
    let bytes = subnet.checkpoint().to_bytes();
    g.bench_function(
        BenchmarkId::new("subnet-restore", "16-with-4096-28s"),
        |b| {
            b.iter(|| {
                let cp = SubnetCheckpoint::from_bytes(black_box(&bytes), "bench").unwrap();
                black_box(cp.restore("bench").unwrap())
            })
        },
    );
    g.finish();
}

#[path = "suite/cards.rs"]
mod cards;
#[path = "suite/defrag.rs"]
mod defrag;
#[path = "suite/hardware.rs"]
mod hardware;
#[path = "suite/scaling.rs"]
mod scaling;
#[path = "suite/subnet_suite.rs"]
mod subnet_suite;

criterion_group!(
    benches,
    subnet_workloads,
    node_benches::benches,
    cards::benches,
    checkpoint_benches,
    defrag::benches,
    subnet_suite::benches,
    scaling::benches,
    hardware::benches
);
criterion_main!(benches);
