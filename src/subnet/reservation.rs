//! Subnet CIDR reservations and the search domains they imply (docs/rules.md, "Subnet CIDR reservations").

use crate::space::Run;
use ipnet::IpNet;
use std::fmt;
use std::ops::Range;

/// What a reservation sets space aside for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReservationKind {
    /// Automatic prefix assignment takes its prefixes from here first.
    Prefix,
    /// Nothing is assigned from here automatically; only manual assignment.
    Explicit,
}

impl fmt::Display for ReservationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReservationKind::Prefix => "prefix",
            ReservationKind::Explicit => "explicit",
        })
    }
}

impl std::str::FromStr for ReservationKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "prefix" => Ok(Self::Prefix),
            "explicit" => Ok(Self::Explicit),
            other => Err(format!(
                "unknown reservation type {other:?}: expected prefix or explicit"
            )),
        }
    }
}

/// A subnet CIDR reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Reservation {
    /// The reserved CIDR (inside the subnet).
    pub cidr: IpNet,
    /// Its kind.
    pub kind: ReservationKind,
}

/// The reservations of one subnet, with the unit ranges automatic assignment searches.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReservationSet {
    /// Sorted by address; never overlapping.
    entries: Vec<(Reservation, Run)>,
    /// Prefix reservations' ranges, in address order.
    prefix_ranges: Vec<Range<u64>>,
    /// Everything outside every reservation, in address order.
    unreserved: Vec<Range<u64>>,
}

impl ReservationSet {
    /// No reservations over a subnet of `units` units.
    pub(crate) fn new(units: u64) -> Self {
        let mut s = Self::default();
        s.rebuild(units);
        s
    }

    /// The reservation overlapping `run`, if any.
    pub(crate) fn overlapping(&self, run: Run) -> Option<&Reservation> {
        let r = run.range();
        self.entries
            .iter()
            .find(|(_, e)| e.range().start < r.end && r.start < e.range().end)
            .map(|(res, _)| res)
    }

    /// Adds a reservation already checked not to overlap.
    pub(crate) fn insert(&mut self, res: Reservation, run: Run, units: u64) {
        let at = self.entries.partition_point(|(_, e)| e.start < run.start);
        self.entries.insert(at, (res, run));
        self.rebuild(units);
    }

    /// Removes the reservation with exactly this CIDR.
    pub(crate) fn remove(&mut self, cidr: IpNet, units: u64) -> Option<Reservation> {
        let at = self.entries.iter().position(|(r, _)| r.cidr == cidr)?;
        let (res, _) = self.entries.remove(at);
        self.rebuild(units);
        Some(res)
    }

    fn rebuild(&mut self, units: u64) {
        self.prefix_ranges = self
            .entries
            .iter()
            .filter(|(r, _)| r.kind == ReservationKind::Prefix)
            .map(|(_, run)| run.range())
            .collect();
        self.unreserved.clear();
        let mut at = 0;
        for (_, run) in &self.entries {
            if run.start.0 > at {
                self.unreserved.push(at..run.start.0);
            }
            at = run.range().end;
        }
        if at < units {
            self.unreserved.push(at..units);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn list(&self) -> Vec<Reservation> {
        self.entries.iter().map(|(r, _)| *r).collect()
    }

    pub(crate) fn entries(&self) -> impl Iterator<Item = &(Reservation, Run)> {
        self.entries.iter()
    }

    pub(crate) fn prefix_ranges(&self) -> &[Range<u64>] {
        &self.prefix_ranges
    }

    pub(crate) fn unreserved(&self) -> &[Range<u64>] {
        &self.unreserved
    }

    /// Where automatic prefixes may look: the prefix reservations, plus unreserved space when
    /// `with_unreserved`.
    pub(crate) fn prefix_domain(&self, with_unreserved: bool) -> Vec<Range<u64>> {
        let mut d = self.prefix_ranges.clone();
        if with_unreserved {
            d.extend(self.unreserved.iter().cloned());
        }
        d.sort_by_key(|r| r.start);
        d
    }

    /// The prefix reservation holding `unit`.
    pub(crate) fn prefix_reservation_at(&self, unit: u64) -> Option<IpNet> {
        self.entries
            .iter()
            .find(|(r, run)| r.kind == ReservationKind::Prefix && run.range().contains(&unit))
            .map(|(r, _)| r.cidr)
    }

    /// Checks the derived ranges against the list (for `verify`).
    pub(crate) fn verify(&self, units: u64) -> Result<(), String> {
        for w in self.entries.windows(2) {
            if w[0].1.range().end > w[1].1.start.0 {
                return Err(format!(
                    "reservations {} and {} overlap or are unsorted",
                    w[0].0.cidr, w[1].0.cidr
                ));
            }
        }
        let mut fresh = self.clone();
        fresh.rebuild(units);
        if fresh.prefix_ranges != self.prefix_ranges || fresh.unreserved != self.unreserved {
            return Err("reservation search domains are stale".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::Unit;

    /// A set over 256 units holding a prefix reservation of units 64..96 and an explicit one of
    /// 128..192.
    fn sample() -> ReservationSet {
        let mut s = ReservationSet::new(256);
        let add = |s: &mut ReservationSet, cidr: &str, kind, start, log2| {
            let res = Reservation {
                cidr: cidr.parse().unwrap(),
                kind,
            };
            s.insert(
                res,
                Run {
                    start: Unit(start),
                    log2,
                },
                256,
            );
        };
        add(&mut s, "10.0.0.128/26", ReservationKind::Explicit, 128, 6);
        add(&mut s, "10.0.0.64/27", ReservationKind::Prefix, 64, 5);
        s
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // a domain is a list of ranges; these have one
    fn domains_follow_the_entries() {
        let s = sample();
        assert_eq!(s.prefix_ranges(), [64..96]);
        assert_eq!(s.unreserved(), [0..64, 96..128, 192..256]);
        assert_eq!(s.prefix_domain(false), [64..96]);
        assert_eq!(s.prefix_domain(true), [0..64, 64..96, 96..128, 192..256]);
        assert_eq!(s.prefix_reservation_at(70), "10.0.0.64/27".parse().ok());
        assert_eq!(s.prefix_reservation_at(130), None, "explicit, not prefix");
        s.verify(256).unwrap();
    }

    #[test]
    fn verify_finds_stale_domains_and_disordered_entries() {
        let mut stale = sample();
        stale.unreserved.pop();
        assert_eq!(
            stale.verify(256),
            Err("reservation search domains are stale".into())
        );
        let mut stale = sample();
        stale.prefix_ranges.clear();
        assert!(stale.verify(256).is_err());
        let mut disordered = sample();
        disordered.entries.swap(0, 1);
        assert_eq!(
            disordered.verify(256),
            Err("reservations 10.0.0.128/26 and 10.0.0.64/27 overlap or are unsorted".into())
        );
    }
}
