//! The space layer: a bitmap over `2^k` units with aligned-run search. Knows nothing of IP
//! addresses; the subnet layer maps CIDRs onto units.

mod blockmap;
mod page;
mod summary;
mod word;

pub(crate) use blockmap::{BlockMap, Shortfall, Strategy, Words};
pub(crate) use word::free_runs;

/// Index of one unit (an IPv4 address, or an IPv6 /80) relative to the start of the map.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Unit(pub(crate) u64);

/// An aligned run of `2^log2` units starting at `start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Run {
    pub(crate) start: Unit,
    pub(crate) log2: u8,
}

impl Run {
    /// Units covered.
    pub(crate) fn len(self) -> u64 {
        1 << self.log2
    }

    /// The units as a range.
    pub(crate) fn range(self) -> std::ops::Range<u64> {
        self.start.0..self.start.0 + self.len()
    }
}
