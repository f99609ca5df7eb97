//! What `simulate` reports: per node, for the subnet, and every refusal, as text or JSON.

use super::cluster::{Cluster, CHURN_SHARE};
use crate::words::count;
use ipnet::IpNet;
use pdipam::{AddressMode, BlockKind, Holder, PrefixFailure};
use serde::Serialize;
use std::io::Write;
use std::path::Path;

/// Nodes listed in the text report before "and N more".
const TEXT_NODES: usize = 40;

#[derive(Serialize)]
pub struct Report {
    instance_type: String,
    mode: AddressMode,
    max_pods: u32,
    churn_rounds: u32,
    simulated_seconds: u64,
    /// Phases still changing after twelve simulated hours (0 when every phase settled).
    unsettled_phases: u32,
    pods: Pods,
    nodes: Vec<NodeReport>,
    subnet: SubnetReport,
    failures: Vec<FailureReport>,
}

#[derive(Serialize)]
struct Pods {
    wanted: u64,
    running: u64,
    /// Scheduled on a node that has no address for them.
    pending: u64,
    /// No ready node below max pods.
    unschedulable: u64,
}

#[derive(Serialize)]
struct NodeReport {
    name: String,
    ready: bool,
    interfaces: usize,
    prefixes: usize,
    secondary_addresses: usize,
    pods: usize,
    pending: usize,
    /// Attached pod addresses no pod holds (cooling ones included): what the warm pool costs.
    idle: u32,
    cooling: u32,
}

#[derive(Serialize)]
struct SubnetReport {
    cidr: IpNet,
    total: u64,
    reserved: u64,
    free: u64,
    available: u64,
    prefixes: u64,
    single_addresses: u64,
    free_28s: u64,
    largest_free_block: Option<IpNet>,
    fragmentation: f64,
}

#[derive(Serialize)]
struct FailureReport {
    at_seconds: u64,
    node: String,
    action: String,
    error: String,
    explanation: Option<Explanation>,
    #[serde(skip)]
    text: Option<String>,
}

/// [`PrefixFailure`] for machines.
#[derive(Serialize)]
struct Explanation {
    candidate_blocks: u64,
    free_blocks: u64,
    free_addresses: u64,
    blocks_allocated_whole: u64,
    blocks_with_reserved_addresses: u64,
    blocks_outside_domain: u64,
    spoiling_allocations: u64,
    blocks_with_one_spoiler: u64,
    spoilers: Vec<SpoilerReport>,
}

#[derive(Serialize)]
struct SpoilerReport {
    holder: String,
    blocks: u64,
    sole: u64,
    example: Option<IpNet>,
}

impl Explanation {
    fn of(f: &PrefixFailure) -> Self {
        Explanation {
            candidate_blocks: f.candidate_blocks,
            free_blocks: f.free_blocks,
            free_addresses: f.free_units,
            blocks_allocated_whole: f.blocks_allocated_whole,
            blocks_with_reserved_addresses: f.blocks_with_reserved_addresses,
            blocks_outside_domain: f.blocks_outside_domain,
            spoiling_allocations: f.spoiling_allocations,
            blocks_with_one_spoiler: f.blocks_with_one_spoiler,
            spoilers: f
                .spoilers
                .iter()
                .map(|s| SpoilerReport {
                    holder: s.holder.to_string(),
                    blocks: s.blocks,
                    sole: s.sole,
                    example: s.example,
                })
                .collect(),
        }
    }
}

impl Report {
    pub fn of(cluster: &Cluster, wanted: u64, churn_rounds: u32) -> Self {
        let nodes: Vec<NodeReport> = cluster
            .nodes
            .iter()
            .map(|n| {
                let snap = n.node.snapshot();
                let blocks = || snap.interfaces.iter().flat_map(|i| i.blocks.iter());
                NodeReport {
                    name: n.name.clone(),
                    ready: n.ready,
                    interfaces: snap.interfaces.len(),
                    prefixes: blocks().filter(|b| b.kind == BlockKind::Prefix).count(),
                    secondary_addresses: blocks()
                        .filter(|b| b.kind == BlockKind::Secondary)
                        .count(),
                    pods: n.running.len(),
                    pending: n.pending.len(),
                    idle: snap.total() - snap.assigned(),
                    cooling: snap.cooling(),
                }
            })
            .collect();
        let stats = cluster.subnet.stats();
        let (mut prefixes, mut singles) = (0, 0);
        for h in cluster.subnet.allocations() {
            match h {
                Holder::Prefix(_) => prefixes += 1,
                Holder::Address(_) => singles += 1,
                Holder::Reserved(_) => {}
            }
        }
        let first = cluster.nodes.first().map(|n| n.node.limits());
        Report {
            instance_type: first.map_or(String::new(), |l| l.instance_type.clone()),
            mode: cluster
                .nodes
                .first()
                .map_or(AddressMode::Prefix, |n| n.node.config().mode),
            max_pods: cluster.max_pods,
            churn_rounds,
            simulated_seconds: cluster.elapsed().as_secs(),
            unsettled_phases: cluster.unsettled_phases,
            pods: Pods {
                wanted,
                running: nodes.iter().map(|n| n.pods as u64).sum(),
                pending: nodes.iter().map(|n| n.pending as u64).sum(),
                unschedulable: cluster.unschedulable,
            },
            nodes,
            subnet: SubnetReport {
                cidr: stats.cidr,
                total: stats.total,
                reserved: stats.reserved,
                free: stats.free,
                available: stats.available,
                prefixes,
                single_addresses: singles,
                free_28s: stats.free_blocks_of(28),
                largest_free_block: stats.largest_free_block,
                fragmentation: stats.fragmentation,
            },
            failures: cluster
                .failures
                .iter()
                .map(|f| FailureReport {
                    at_seconds: f.at.as_secs(),
                    node: f.node.clone(),
                    action: f.what.clone(),
                    error: f.error.to_string(),
                    explanation: f.explanation.as_ref().map(Explanation::of),
                    text: f.explanation.as_ref().map(ToString::to_string),
                })
                .collect(),
        }
    }

    pub fn print(&self, map: Option<&Path>) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        let mode = match self.mode {
            AddressMode::Prefix => "prefix",
            _ => "secondary-IP",
        };
        let p = &self.pods;
        let churn = if self.churn_rounds == 0 {
            "no churn".to_string()
        } else {
            format!(
                "{} of {:.0}%",
                count(self.churn_rounds, "churn round", "churn rounds"),
                CHURN_SHARE * 100.0
            )
        };
        writeln!(
            out,
            "{} {} {} in {mode} mode ({}) on {}, {churn}, {} simulated:",
            self.nodes.len(),
            self.instance_type,
            if self.nodes.len() == 1 {
                "node"
            } else {
                "nodes"
            },
            crate::explain::pod_room(self.max_pods),
            self.subnet.cidr,
            clock(self.simulated_seconds),
        )?;
        writeln!(
            out,
            "pods: {} wanted, {} running, {} waiting for an address, {} unschedulable",
            p.wanted, p.running, p.pending, p.unschedulable
        )?;
        if self.unsettled_phases > 0 {
            writeln!(
                out,
                "warning: {} still changing after 12 simulated hours",
                count(self.unsettled_phases, "phase was", "phases were")
            )?;
        }
        writeln!(out)?;
        let unit = match self.mode {
            AddressMode::Prefix => "prefixes",
            _ => "addresses",
        };
        writeln!(
            out,
            "{:<12} {:>10} {:>9} {:>6} {:>7} {:>6} {:>7}",
            "node", "interfaces", unit, "pods", "waiting", "idle", "cooling"
        )?;
        for n in self.nodes.iter().take(TEXT_NODES) {
            let blocks = match self.mode {
                AddressMode::Prefix => n.prefixes,
                _ => n.secondary_addresses,
            };
            writeln!(
                out,
                "{:<12} {:>10} {:>9} {:>6} {:>7} {:>6} {:>7}{}",
                n.name,
                n.interfaces,
                blocks,
                n.pods,
                n.pending,
                n.idle,
                n.cooling,
                if n.ready {
                    ""
                } else {
                    "  not ready: no primary interface"
                }
            )?;
        }
        if self.nodes.len() > TEXT_NODES {
            writeln!(
                out,
                "... and {} (--json lists every node)",
                count(
                    (self.nodes.len() - TEXT_NODES) as u64,
                    "more node",
                    "more nodes"
                )
            )?;
        }
        let idle: u64 = self.nodes.iter().map(|n| u64::from(n.idle)).sum();
        writeln!(out, "idle addresses on all nodes: {idle}")?;
        writeln!(out)?;

        let s = &self.subnet;
        writeln!(
            out,
            "subnet {}: {} free of {} ({} available as AWS counts), {} and {} delegated",
            s.cidr,
            s.free,
            s.total,
            s.available,
            count(s.prefixes, "prefix", "prefixes"),
            count(s.single_addresses, "single address", "single addresses")
        )?;
        writeln!(
            out,
            "free aligned /28s: {}; largest free block: {}; fragmentation {:.2}",
            s.free_28s,
            s.largest_free_block
                .map_or("none".to_string(), |b| b.to_string()),
            s.fragmentation
        )?;
        if let Some(path) = map {
            writeln!(out, "map: {}", path.display())?;
        }
        writeln!(out)?;

        if self.failures.is_empty() {
            writeln!(out, "no allocation failed")?;
            return Ok(());
        }
        let groups = self.failure_groups();
        writeln!(
            out,
            "{} failed, in {} (--json lists each):",
            count(self.failures.len() as u64, "allocation", "allocations"),
            count(
                groups.len() as u64,
                "distinct situation",
                "distinct situations"
            )
        )?;
        for g in groups {
            let first = g[0];
            let last = g[g.len() - 1];
            let mut per_node: Vec<(&str, usize)> = Vec::new();
            for f in &g {
                match per_node.iter_mut().find(|(n, _)| *n == f.node) {
                    Some((_, c)) => *c += 1,
                    None => per_node.push((&f.node, 1)),
                }
            }
            let nodes: Vec<String> = per_node.iter().map(|(n, c)| format!("{n} ({c})")).collect();
            writeln!(out, "  {} x {}", g.len(), first.error)?;
            writeln!(
                out,
                "     on {}; from {} to {}; e.g. at {} {}: {}",
                nodes.join(", "),
                clock(first.at_seconds),
                clock(last.at_seconds),
                clock(first.at_seconds),
                first.node,
                first.action
            )?;
            if let Some(text) = &first.text {
                for (i, line) in text.lines().enumerate() {
                    let lead = if i == 0 { "why: " } else { "     " };
                    writeln!(
                        out,
                        "     {lead}{}",
                        line.strip_prefix("  ").unwrap_or(line)
                    )?;
                }
            }
        }
        Ok(())
    }
}

impl Report {
    /// Failures with the same error and the same explanation, in order of first occurrence.
    fn failure_groups(&self) -> Vec<Vec<&FailureReport>> {
        let mut groups: Vec<Vec<&FailureReport>> = Vec::new();
        for f in &self.failures {
            match groups
                .iter_mut()
                .find(|g| g[0].error == f.error && g[0].text == f.text)
            {
                Some(g) => g.push(f),
                None => groups.push(vec![f]),
            }
        }
        groups
    }
}

/// `1h02m05s`, `2m05s` or `5s`.
fn clock(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::clock;

    #[test]
    fn clock_reads_hours_minutes_seconds() {
        for (secs, text) in [
            (0, "0s"),
            (59, "59s"),
            (60, "1m00s"),
            (125, "2m05s"),
            (3599, "59m59s"),
            (3600, "1h00m00s"),
            (3725, "1h02m05s"),
            (43_200, "12h00m00s"),
        ] {
            assert_eq!(clock(secs), text, "{secs}");
        }
    }
}
