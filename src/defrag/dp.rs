//! The exact dynamic program over the tree of aligned blocks.
//!
//! Leaves are the goal's blocks. For a block `v` and `k` up to `min(blocks in v, need)`,
//! `f_v[k]` is the least cost of regions inside `v` that leave at least `k` blocks free: the
//! better of `v` whole as one region (when nothing in it is pinned and it meets no existing
//! reservation) and the best `f_left[a] + f_right[b]` with `a + b >= k`. Every set of disjoint
//! aligned regions is one of these choices at each block, so the minimum is exact. The work is
//! the sum over blocks of `(caps of the children)^2`, at most about `leaves * need * 2`.

use super::{
    block, end, start, Cost, ExistingReservation, Goal, HolderCost, MoveCost, PinReason, Plan,
    Region, Room,
};
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// What one goal-sized block holds.
#[derive(Clone, Copy, Debug, Default)]
struct Leaf {
    /// It meets an existing reservation: never part of a new region.
    reserved: bool,
    /// It lies wholly in an existing prefix reservation.
    in_prefix_reservation: bool,
    /// Something in it cannot move.
    pinned: bool,
    /// What moving everything out of it costs (no reservation counted).
    cost: Cost,
    /// Addresses held in it.
    held: u64,
    /// Addresses in it that a moved pod may take: free, outside every reservation.
    room: u64,
}

#[derive(Clone, Copy, Debug)]
enum Choice {
    Whole,
    Split(u32, u32),
}

/// A cost packed into one integer that orders as [`Cost`] does (pods, then interfaces, then
/// reservations), so that the inner loop is one add and one compare. Interfaces and
/// reservations stay far below 2^32 (a subnet has at most 2^16 blocks here).
type Packed = u128;

/// No plan: worse than any cost.
const NONE: Packed = Packed::MAX;

fn pack(c: Cost) -> Packed {
    (Packed::from(c.pods) << 64) | (Packed::from(c.interfaces) << 32) | Packed::from(c.reservations)
}

fn unpack(p: Packed) -> Cost {
    Cost {
        pods: (p >> 64) as u64,
        interfaces: ((p >> 32) & 0xffff_ffff) as u64,
        reservations: (p & 0xffff_ffff) as u64,
    }
}

/// One block of the tree: its best cost per `k` and how it got it.
struct Node {
    best: Vec<Packed>,
    choice: Vec<Choice>,
    whole_ok: bool,
    cost: Cost,
}

fn leaves(
    subnet: Ipv4Net,
    holders: &[HolderCost],
    reservations: &[ExistingReservation],
    len: u8,
) -> Vec<Leaf> {
    let count = 1usize << (len - subnet.prefix_len());
    let size = 1u64 << (32 - len);
    let base = start(subnet);
    let index = |a: u32| ((a - base) >> (32 - len)) as usize;
    let mut out = vec![Leaf::default(); count];
    let reserved_at = |a: u32| {
        reservations
            .iter()
            .any(|r| start(r.cidr) <= a && a <= end(r.cidr))
    };
    for r in reservations {
        let (lo, hi) = (index(start(r.cidr)), index(end(r.cidr)));
        for (i, leaf) in out.iter_mut().enumerate().take(hi + 1).skip(lo) {
            leaf.reserved = true;
            if r.prefix && r.cidr.contains(&block(subnet, len, i as u32)) {
                leaf.in_prefix_reservation = true;
            }
        }
    }
    for h in holders {
        let (lo, hi) = (index(start(h.held)), index(end(h.held)));
        for (i, leaf) in out.iter_mut().enumerate().take(hi + 1).skip(lo) {
            let b = block(subnet, len, i as u32);
            let (from, to) = (start(h.held).max(start(b)), end(h.held).min(end(b)));
            leaf.held += u64::from(to - from) + 1;
            let spans = lo != hi;
            match h.cost {
                // A holder spanning several blocks is a prefix: it never moves.
                MoveCost::Move { pods, interfaces } if !spans => {
                    leaf.cost = leaf.cost
                        + Cost {
                            pods: u64::from(pods),
                            interfaces: u64::from(interfaces),
                            reservations: 0,
                        }
                }
                _ => leaf.pinned = true,
            }
        }
    }
    for (i, leaf) in out.iter_mut().enumerate() {
        let b = block(subnet, len, i as u32);
        leaf.room = if leaf.reserved {
            // A reservation meets the block: count address by address, against the holders
            // that meet the block (disjoint and sorted by address, so one run of them).
            let from = holders.partition_point(|h| end(h.held) < start(b));
            let near: Vec<&HolderCost> = holders[from..]
                .iter()
                .take_while(|h| start(h.held) <= end(b))
                .collect();
            (start(b)..=end(b))
                .filter(|a| {
                    !reserved_at(*a) && !near.iter().any(|h| h.held.contains(&Ipv4Addr::from(*a)))
                })
                .count() as u64
        } else {
            size - leaf.held
        };
    }
    out
}

/// `f_left (+) f_right`, capped at `cap`, then made "at least k" by a suffix minimum.
fn merge(l: &Node, r: &Node, cap: usize) -> (Vec<Packed>, Vec<Choice>) {
    let mut best: Vec<Packed> = vec![NONE; cap + 1];
    let mut choice = vec![Choice::Split(0, 0); cap + 1];
    // More from the left first: of two plans equal in cost, the one at lower addresses wins.
    for a in (0..l.best.len()).rev() {
        let ca = l.best[a];
        if ca == NONE {
            continue;
        }
        for (b, &cb) in r.best.iter().enumerate() {
            if cb == NONE {
                continue;
            }
            let k = (a + b).min(cap);
            let c = ca + cb;
            if c < best[k] {
                best[k] = c;
                choice[k] = Choice::Split(a as u32, b as u32);
            }
        }
    }
    for k in (0..cap).rev() {
        if best[k + 1] < best[k] {
            best[k] = best[k + 1];
            choice[k] = choice[k + 1];
        }
    }
    (best, choice)
}

pub(super) fn solve(
    subnet: Ipv4Net,
    holders: &[HolderCost],
    reservations: &[ExistingReservation],
    goal: Goal,
) -> Plan {
    let len = goal.len;
    let leaves = leaves(subnet, holders, reservations, len);
    let already = leaves
        .iter()
        .filter(|l| l.in_prefix_reservation && l.held == 0)
        .count() as u32;
    let need = goal.blocks.saturating_sub(already).min(leaves.len() as u32) as usize;
    let one = Cost {
        reservations: 1,
        ..Cost::default()
    };
    // levels[j][i]: the block of 2^j leaves starting at leaf i * 2^j.
    let mut levels: Vec<Vec<Node>> = Vec::new();
    levels.push(
        leaves
            .iter()
            .map(|l| {
                let whole_ok = !l.reserved && !l.pinned;
                let mut best = vec![pack(Cost::default())];
                if need > 0 {
                    best.push(if whole_ok { pack(l.cost + one) } else { NONE });
                }
                Node {
                    choice: vec![Choice::Whole; best.len()],
                    best,
                    whole_ok,
                    cost: l.cost,
                }
            })
            .collect(),
    );
    let mut span = 1usize;
    while levels.last().map_or(0, Vec::len) > 1 {
        span *= 2;
        let below = levels.last().expect("a level");
        let cap = span.min(need);
        let next: Vec<Node> = below
            .chunks(2)
            .map(|pair| {
                let (l, r) = (&pair[0], &pair[1]);
                let (mut best, mut choice) = merge(l, r, cap);
                let whole_ok = l.whole_ok && r.whole_ok;
                let cost = l.cost + r.cost;
                if whole_ok {
                    let c = pack(cost + one);
                    for k in 1..=cap {
                        if c < best[k] {
                            best[k] = c;
                            choice[k] = Choice::Whole;
                        }
                    }
                }
                Node {
                    best,
                    choice,
                    whole_ok,
                    cost,
                }
            })
            .collect();
        levels.push(next);
    }
    let root = &levels.last().expect("a root")[0];
    let reached = (0..root.best.len())
        .rev()
        .find(|k| root.best[*k] != NONE)
        .unwrap_or(0);
    debug_assert_eq!(
        root.best[reached],
        pack(unpack(root.best[reached])),
        "costs fit their fields"
    );
    let mut regions = Vec::new();
    collect(&levels, levels.len() - 1, 0, reached, &mut regions);
    regions.sort_by_key(|r: &(usize, usize)| r.0);
    finish(
        subnet, holders, goal, &leaves, already, need, reached, regions,
    )
}

/// Walks the choices down from `levels[j][i]` for `k`, pushing each region as (first leaf,
/// leaves).
fn collect(levels: &[Vec<Node>], j: usize, i: usize, k: usize, out: &mut Vec<(usize, usize)>) {
    if k == 0 {
        return;
    }
    match levels[j][i].choice[k] {
        Choice::Whole => out.push((i << j, 1 << j)),
        Choice::Split(a, b) => {
            collect(levels, j - 1, 2 * i, a as usize, out);
            collect(levels, j - 1, 2 * i + 1, b as usize, out);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn finish(
    subnet: Ipv4Net,
    holders: &[HolderCost],
    goal: Goal,
    leaves: &[Leaf],
    already: u32,
    need: usize,
    reached: usize,
    spans: Vec<(usize, usize)>,
) -> Plan {
    let len = goal.len;
    let one = Cost {
        reservations: 1,
        ..Cost::default()
    };
    let mut in_region = vec![false; leaves.len()];
    let regions: Vec<Region> = spans
        .iter()
        .map(|&(first, count)| {
            in_region[first..first + count]
                .iter_mut()
                .for_each(|r| *r = true);
            let cidr = Ipv4Net::new(
                block(subnet, len, first as u32).network(),
                len - count.trailing_zeros() as u8,
            )
            .expect("an aligned block");
            // Holders are sorted by address: the region's are one run of them.
            let from = holders.partition_point(|h| start(h.held) < start(cidr));
            let moves: Vec<HolderCost> = holders[from..]
                .iter()
                .take_while(|h| end(h.held) <= end(cidr))
                .copied()
                .collect();
            let cost = leaves[first..first + count]
                .iter()
                .fold(one, |c, l| c + l.cost);
            Region {
                cidr,
                moves,
                cost,
                blocks: count as u32,
            }
        })
        .collect();
    let cost = regions.iter().fold(Cost::default(), |c, r| c + r.cost);
    let needed = regions
        .iter()
        .flat_map(|r| &r.moves)
        .map(|h| match h.cost {
            MoveCost::Move { pods, .. } => u64::from(pods),
            MoveCost::Pinned(_) => 0,
        })
        .sum();
    let available = leaves
        .iter()
        .zip(&in_region)
        .filter(|(_, r)| !**r)
        .map(|(l, _)| l.room)
        .sum();
    let freed: u32 = leaves
        .iter()
        .zip(&in_region)
        .filter(|(l, r)| **r && !l.in_prefix_reservation)
        .count() as u32;
    let after = already + freed;
    let met = after >= goal.blocks;
    let index = |a: u32| ((a - start(subnet)) >> (32 - len)) as usize;
    let pinned = if met {
        Vec::new()
    } else {
        holders
            .iter()
            .filter(|h| {
                let (lo, hi) = (index(start(h.held)), index(end(h.held)));
                let spans = lo != hi;
                let stuck = matches!(h.cost, MoveCost::Pinned(_))
                    || (spans && matches!(h.cost, MoveCost::Move { .. }));
                stuck && (lo..=hi).any(|i| !leaves[i].reserved && !in_region[i])
            })
            .map(|h| match h.cost {
                MoveCost::Move { .. } => HolderCost {
                    held: h.held,
                    cost: MoveCost::Pinned(PinReason::Prefix),
                },
                MoveCost::Pinned(_) => *h,
            })
            .collect()
    };
    debug_assert!(reached <= need);
    Plan {
        goal,
        already,
        regions,
        cost,
        after,
        met,
        room: Room { needed, available },
        pinned,
    }
}
