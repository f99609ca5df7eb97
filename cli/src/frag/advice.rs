//! Which interfaces spoil the most /28s, and which prefix reservation would give the most /28s
//! back.
//!
//! A prefix reservation does not move an address, but single addresses are never placed inside
//! one again: as the single addresses inside it are released (pods and nodes come and go), its
//! /28s become free one by one and stay free for prefixes. So a candidate CIDR "gives back" the
//! /28s inside it that only single addresses spoil today. The catch is room: the single addresses
//! must live elsewhere. A candidate qualifies only if the free unreserved addresses left outside
//! it can take every single address now inside it, plus as many again as the whole subnet holds
//! today (at least 16) for growth. It may not overlap an existing reservation (AWS refuses that).
//! Among qualifying candidates the best gives back the most /28s; ties go to the one with more
//! free /28s inside, then fewer single addresses to drain, then the smaller, then the lowest.

use crate::census::{Cell, Census};
use ipnet::Ipv4Net;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::HashMap;
use std::net::IpAddr;

/// Single addresses the unreserved space keeps room for beyond today's, at least.
const MIN_HEADROOM: u64 = 16;

/// A candidate prefix reservation and what it would do.
#[derive(Clone, Copy, Serialize)]
pub struct Suggestion {
    pub cidr: Ipv4Net,
    /// /28s inside that only single addresses spoil: free for prefixes once those are released.
    pub gives_back: u64,
    /// /28s inside that are free now (kept free of single addresses from now on).
    pub free_now: u64,
    /// Single addresses inside, to be released over time.
    pub single_addresses_inside: u64,
    /// Free unreserved addresses left outside it for single addresses.
    pub free_outside: u64,
}

/// Per-aligned-block sums: one level of the pairwise tree over the cells.
#[derive(Clone, Copy, Default)]
struct Sums {
    gives_back: u64,
    free_now: u64,
    singles: u64,
    /// Free addresses in cells outside every reservation.
    free_unreserved: u64,
    /// Touches an existing reservation: not a legal candidate.
    reserved: bool,
}

impl Sums {
    fn of(cell: &Cell) -> Sums {
        let in_reservation = cell.reservation.is_some();
        let spoiled_by_singles_only =
            cell.prefix.is_none() && cell.reserved == 0 && cell.singles > 0;
        Sums {
            gives_back: u64::from(spoiled_by_singles_only && !in_reservation),
            free_now: u64::from(cell.is_free() && !in_reservation),
            singles: u64::from(cell.singles),
            free_unreserved: if in_reservation {
                0
            } else {
                u64::from(cell.free())
            },
            reserved: in_reservation,
        }
    }

    fn join(a: Sums, b: Sums) -> Sums {
        Sums {
            gives_back: a.gives_back + b.gives_back,
            free_now: a.free_now + b.free_now,
            singles: a.singles + b.singles,
            free_unreserved: a.free_unreserved + b.free_unreserved,
            reserved: a.reserved || b.reserved,
        }
    }
}

/// The best qualifying candidate of every length, best first; empty when none gives back or
/// keeps free a single /28.
pub fn reservations(census: &Census) -> Vec<Suggestion> {
    let mut level: Vec<Sums> = census.cells.iter().map(Sums::of).collect();
    let total = level.iter().copied().fold(Sums::default(), Sums::join);
    let headroom = total.singles.max(MIN_HEADROOM);
    let mut best_per_len = Vec::new();
    let mut len = 28u8;
    loop {
        let best = level
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.reserved && s.gives_back + s.free_now > 0)
            .map(|(i, s)| (i, s, total.free_unreserved - s.free_unreserved))
            .filter(|(_, s, outside)| *outside >= s.singles + headroom)
            .min_by_key(|(i, s, _)| (Reverse((s.gives_back, s.free_now)), s.singles, *i));
        if let Some((i, s, outside)) = best {
            let first = census.cell_net(i << (28 - len));
            best_per_len.push(Suggestion {
                cidr: Ipv4Net::new(first.network(), len).expect("a length of the subnet"),
                gives_back: s.gives_back,
                free_now: s.free_now,
                single_addresses_inside: s.singles,
                free_outside: outside,
            });
        }
        if level.len() == 1 {
            break;
        }
        level = level.chunks(2).map(|p| Sums::join(p[0], p[1])).collect();
        len -= 1;
    }
    // Longer prefixes came first, so a stable sort keeps the smaller of equal candidates first.
    best_per_len.sort_by_key(|s| {
        (
            Reverse((s.gives_back, s.free_now)),
            s.single_addresses_inside,
        )
    });
    best_per_len
}

/// An interface whose single addresses spoil /28s.
#[derive(Serialize)]
pub struct InterfaceSpoil {
    pub interface: String,
    /// Its single addresses in spoiled /28s.
    pub addresses: u64,
    /// /28s holding at least one of its addresses and no prefix or reserved address.
    pub spoils: u64,
    /// Of those, /28s where its addresses are the only ones: releasing them frees the /28.
    pub alone: u64,
}

/// Interfaces by the /28s they alone spoil, then by /28s touched; at most `limit`.
pub fn interfaces(
    census: &Census,
    owner: &HashMap<IpAddr, String>,
    limit: usize,
) -> Vec<InterfaceSpoil> {
    // Owners of the single addresses of each /28.
    let mut per_cell: HashMap<usize, Vec<&str>> = HashMap::new();
    for (addr, iface) in owner {
        per_cell
            .entry(census.index_of(*addr))
            .or_default()
            .push(iface);
    }
    let mut tally: HashMap<&str, InterfaceSpoil> = HashMap::new();
    for (cell, owners) in &per_cell {
        let c = &census.cells[*cell];
        if c.prefix.is_some() || c.reserved > 0 {
            continue;
        }
        let alone = owners.iter().all(|o| *o == owners[0]);
        let mut seen: Vec<&str> = Vec::new();
        for o in owners {
            let t = tally.entry(o).or_insert_with(|| InterfaceSpoil {
                interface: o.to_string(),
                addresses: 0,
                spoils: 0,
                alone: 0,
            });
            t.addresses += 1;
            if !seen.contains(o) {
                seen.push(o);
                t.spoils += 1;
                t.alone += u64::from(alone);
            }
        }
    }
    let mut out: Vec<InterfaceSpoil> = tally.into_values().collect();
    out.sort_by(|a, b| (b.alone, b.spoils, &a.interface).cmp(&(a.alone, a.spoils, &b.interface)));
    out.truncate(limit);
    out
}
