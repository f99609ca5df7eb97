//! The simulated cluster: nodes of one instance type sharing one in-process subnet, a scheduler
//! that spreads pods over them, and the warm-pool planner run on every node every tick, as the
//! CNI's reconcile loop does. Deterministic for a seed.

use pdipam::{
    limits::{InstanceLimits, HOST_NETWORK_PODS},
    planner::{explain, plan, Action, WarmSettings},
    provider::{execute, LocalProvider, ProviderError},
    AddressMode, BlockKind, Clock, ManualClock, Node, NodeConfig, PodKey, PodRequest,
    PrefixFailure, Subnet, SubnetError, Timestamp,
};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Simulated time between two reconcile passes (the CNI reconciles every few seconds).
const TICK: Duration = Duration::from_secs(5);
/// A phase ends after this long without a change: longer than every timer (cooldown 30 s, shrink
/// interval 30 s, interface age 60 s, out-of-space back-off 120 s), so whatever time would
/// unblock had its chance, and a node in back-off tried once more.
const QUIET: Duration = Duration::from_secs(130);
/// A phase still changing after this long is reported as unsettled.
const PHASE_LIMIT: Duration = Duration::from_secs(12 * 3600);
/// The share of running pods that leave (and as many arrive) in one churn round.
pub const CHURN_SHARE: f64 = 0.25;

/// What to simulate.
pub struct Scenario {
    pub limits: InstanceLimits,
    pub settings: WarmSettings,
    pub mode: AddressMode,
    pub nodes: usize,
    pub seed: u64,
}

/// An action the cloud refused.
pub struct Failure {
    /// Simulated time since the start.
    pub at: Duration,
    pub node: String,
    /// What was asked, e.g. `attach 1 prefix to eni-node-2-1`.
    pub what: String,
    pub error: ProviderError,
    /// For a refused /28: what stood in the way, at that moment.
    pub explanation: Option<PrefixFailure>,
}

pub struct SimNode {
    pub name: String,
    pub node: Node,
    cloud: LocalProvider,
    /// Pods with an address.
    pub running: Vec<PodKey>,
    /// Pods scheduled here, waiting for an address.
    pub pending: VecDeque<PodKey>,
    /// The primary interface could be created: the node is ready for pods.
    pub ready: bool,
}

pub struct Cluster {
    pub subnet: Arc<Subnet>,
    clock: Arc<ManualClock>,
    start: Timestamp,
    scenario: Scenario,
    /// The kubelet's max pods: the scheduler places no more on a node.
    pub max_pods: u32,
    pub nodes: Vec<SimNode>,
    pub failures: Vec<Failure>,
    /// Pods no ready node had room for.
    pub unschedulable: u64,
    /// Phases that were still changing at the phase limit.
    pub unsettled_phases: u32,
    rng: fastrand::Rng,
    next_pod: u64,
}

impl Cluster {
    /// Boots every node: each gets its primary interface (its address from the subnet).
    pub fn boot(subnet: Arc<Subnet>, scenario: Scenario) -> Cluster {
        let start = Timestamp::from_unix_nanos(1 << 60);
        let clock = Arc::new(ManualClock::new(start));
        let config = NodeConfig::new().mode(scenario.mode);
        let mut nodes = Vec::with_capacity(scenario.nodes);
        let mut failures = Vec::new();
        for k in 1..=scenario.nodes {
            let name = format!("node-{k}");
            let node = Node::with_clock(scenario.limits.clone(), config.clone(), clock.clone());
            let mut cloud = LocalProvider::new(name.clone(), subnet.clone());
            let ready = match cloud.boot(&node) {
                Ok(()) => true,
                Err(error) => {
                    failures.push(Failure {
                        at: Duration::ZERO,
                        node: name.clone(),
                        what: "create the primary interface".into(),
                        error,
                        explanation: None,
                    });
                    false
                }
            };
            nodes.push(SimNode {
                name,
                node,
                cloud,
                running: Vec::new(),
                pending: VecDeque::new(),
                ready,
            });
        }
        let max_pods = explain(
            &scenario.limits,
            &scenario.settings,
            &nodes[0].node.snapshot(),
            start,
        )
        .max_pods;
        Cluster {
            subnet,
            clock,
            start,
            rng: fastrand::Rng::with_seed(scenario.seed),
            scenario,
            max_pods,
            nodes,
            failures,
            unschedulable: 0,
            unsettled_phases: 0,
            next_pod: 0,
        }
    }

    /// The max pods the planner caps a node of this type at, under these settings.
    pub fn max_pods_of(limits: &InstanceLimits, settings: &WarmSettings, mode: AddressMode) -> u32 {
        let node = Node::new(limits.clone(), NodeConfig::new().mode(mode));
        explain(limits, settings, &node.snapshot(), node.clock().now()).max_pods
    }

    /// Simulated time since the start.
    pub fn elapsed(&self) -> Duration {
        self.clock.now().saturating_since(self.start)
    }

    /// Schedules `count` new pods, each on the ready node with the fewest pods that is below
    /// max pods (ties: the lowest node), as the scheduler's spreading does. Every node already
    /// runs [`HOST_NETWORK_PODS`].
    pub fn schedule(&mut self, count: u64) {
        let room = self.max_pods.saturating_sub(HOST_NETWORK_PODS) as usize;
        let mut heap: BinaryHeap<Reverse<(usize, usize)>> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.ready)
            .map(|(i, n)| Reverse((n.running.len() + n.pending.len(), i)))
            .collect();
        for placed in 0..count {
            match heap.pop() {
                Some(Reverse((load, i))) if load < room => {
                    self.next_pod += 1;
                    let key = PodKey::new("simulate", format!("pod-{}", self.next_pod), "eth0");
                    self.nodes[i].pending.push_back(key);
                    heap.push(Reverse((load + 1, i)));
                }
                // The least loaded node is full, so every node is: the rest cannot be placed.
                _ => {
                    self.unschedulable += count - placed;
                    return;
                }
            }
        }
    }

    /// One churn round: a random share of the running pods leave and as many new ones arrive at
    /// once (a rollout), so new pods need addresses while the old ones are cooling down.
    pub fn churn(&mut self) {
        let mut running: Vec<(usize, usize)> = self
            .nodes
            .iter()
            .enumerate()
            .flat_map(|(i, n)| (0..n.running.len()).map(move |j| (i, j)))
            .collect();
        let leave = ((running.len() as f64) * CHURN_SHARE).round() as usize;
        self.rng.shuffle(&mut running);
        running.truncate(leave);
        // Remove from the back of each node's list first so the indices stay valid.
        running.sort_unstable_by(|a, b| b.cmp(a));
        for (i, j) in running {
            let n = &mut self.nodes[i];
            let key = n.running.swap_remove(j);
            // A running pod holds an address: the release cannot fail.
            let _ = n.node.release(&key);
        }
        self.schedule(leave as u64);
    }

    /// Runs reconcile ticks until nothing has changed for [`QUIET`].
    pub fn settle(&mut self, mut on_tick: impl FnMut()) {
        let begun = self.clock.now();
        let mut idle = Duration::ZERO;
        while idle < QUIET {
            if self.clock.now().saturating_since(begun) > PHASE_LIMIT {
                self.unsettled_phases += 1;
                return;
            }
            idle = if self.tick() {
                Duration::ZERO
            } else {
                idle + TICK
            };
            on_tick();
        }
    }

    /// Pods get addresses, then every node reconciles. Returns whether anything changed.
    fn tick(&mut self) -> bool {
        let mut changed = false;
        let now = self.clock.now();
        let at = self.elapsed();
        for n in self.nodes.iter_mut().filter(|n| n.ready) {
            while let Some(key) = n.pending.front() {
                match n.node.assign(PodRequest::new(key.clone())) {
                    Ok(_) => {
                        let key = n.pending.pop_front().expect("front exists");
                        n.running.push(key);
                        changed = true;
                    }
                    // A new key can only find no address: wait for the planner to grow the node.
                    Err(_) => break,
                }
            }
            let p = plan(
                &self.scenario.limits,
                &self.scenario.settings,
                &n.node.snapshot(),
                now,
            );
            if p.actions.is_empty() {
                continue;
            }
            let done = execute(&n.node, &p, &mut n.cloud);
            changed |= !done.done.is_empty();
            for (action, error) in done.failed {
                let explanation = match (&action, &error) {
                    (
                        Action::AttachPrefixes { .. }
                        | Action::AttachInterface {
                            kind: BlockKind::Prefix,
                            ..
                        },
                        ProviderError::InsufficientSpace(SubnetError::InsufficientCidrBlocks {
                            ..
                        }),
                    ) => self.subnet.explain_prefix_failure(28).ok(),
                    _ => None,
                };
                self.failures.push(Failure {
                    at,
                    node: n.name.clone(),
                    what: action.to_string(),
                    error,
                    explanation,
                });
            }
        }
        self.clock.advance(TICK);
        changed
    }
}
