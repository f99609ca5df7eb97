//! `pdipam_prefix`: an IPv4 or IPv6 prefix (or, at full length, an address) as a plain C value,
//! with text parsing and formatting by ipnet.

use crate::boundary::run;
use crate::raw::{self, Out};
use crate::status::{pdipam_status, Failure};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::ffi::c_char;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IPv4 or IPv6 prefix; an address is a prefix of full length (/32 or /128).
/// A plain value: copy it freely; no call keeps a pointer to it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct pdipam_prefix {
    /// 4 or 6.
    pub family: u8,
    /// Prefix length: 0 to 32 (IPv4) or 0 to 128 (IPv6).
    pub len: u8,
    /// The address in network order; IPv4 in bytes 0..3 (the other bytes are ignored on input
    /// and zero on output).
    pub addr: [u8; 16],
}

impl pdipam_prefix {
    #[inline(always)]
    pub(crate) fn from_net(net: IpNet) -> Self {
        let mut addr = [0u8; 16];
        let family = match net.addr() {
            IpAddr::V4(a) => {
                addr[..4].copy_from_slice(&a.octets());
                4
            }
            IpAddr::V6(a) => {
                addr = a.octets();
                6
            }
        };
        pdipam_prefix {
            family,
            len: net.prefix_len(),
            addr,
        }
    }

    pub(crate) fn from_addr(addr: IpAddr) -> Self {
        Self::from_net(IpNet::from(addr))
    }

    /// The prefix, refusing an unknown family or a length too long for it. Reads the caller's
    /// fields one by one, by reference: a caller that just wrote them one by one gets its stores
    /// forwarded (a whole-struct copy would read across them and stall).
    #[inline(always)]
    pub(crate) fn read_net(&self) -> Result<IpNet, Failure> {
        match self.family {
            4 => {
                let a = Ipv4Addr::new(self.addr[0], self.addr[1], self.addr[2], self.addr[3]);
                Ipv4Net::new(a, self.len)
                    .map(IpNet::V4)
                    .map_err(|_| too_long(self.len, IpAddr::V4(a)))
            }
            6 => {
                let a = Ipv6Addr::from(self.addr);
                Ipv6Net::new(a, self.len)
                    .map(IpNet::V6)
                    .map_err(|_| too_long(self.len, IpAddr::V6(a)))
            }
            f => Err(Failure::invalid(format!(
                "address family {f}: expected 4 or 6"
            ))),
        }
    }

    /// The address of a full-length prefix.
    pub(crate) fn read_addr(&self) -> Result<IpAddr, Failure> {
        let net = self.read_net()?;
        if net.prefix_len() == net.max_prefix_len() {
            Ok(net.addr())
        } else {
            Err(Failure::invalid(format!(
                "{net}: expected a single address (/{})",
                net.max_prefix_len()
            )))
        }
    }
}

#[cold]
fn too_long(len: u8, addr: IpAddr) -> Failure {
    let family = if addr.is_ipv4() { "IPv4" } else { "IPv6" };
    Failure::invalid(format!(
        "prefix length {len} is too long for {family} {addr}"
    ))
}

/// Reads an input prefix.
#[inline(always)]
pub(crate) fn net_arg(p: *const pdipam_prefix, what: &'static str) -> Result<IpNet, Failure> {
    raw::input(p, what)?.read_net()
}

/// Reads an input address (a full-length prefix).
pub(crate) fn addr_arg(p: *const pdipam_prefix, what: &'static str) -> Result<IpAddr, Failure> {
    raw::input(p, what)?.read_addr()
}

/// Parses `"10.0.0.0/28"`, `"2600:1f14::/80"` or a bare address (`"10.0.0.5"`, as /32) into
/// `*prefix_out`. Host bits are kept as written (`"10.0.0.5/24"` parses); calls that need an
/// aligned prefix refuse it with `PDIPAM_STATUS_MISALIGNED`.
///
/// Status: `OK`; `NULL_ARG`; `INVALID_ARG` (not UTF-8, longer than 4096 bytes, not a CIDR or
/// address). Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `text` is a NUL-terminated string that stays alive and unchanged
/// during the call; `prefix_out` is writable for one `pdipam_prefix`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_prefix_parse(
    text: *const c_char,
    prefix_out: *mut pdipam_prefix,
) -> pdipam_status {
    run(|| {
        let text = raw::text(text, "text")?;
        let out = Out::new(prefix_out, "prefix_out")?;
        let net = text
            .parse::<IpNet>()
            .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| Failure::invalid(format!("{text:?} is not a CIDR or an IP address")))?;
        out.write(pdipam_prefix::from_net(net));
        Ok(())
    })
}

/// Writes `prefix` as text (`"10.0.0.16/28"`; an address as `"10.0.0.5/32"`), NUL-terminated,
/// into `buf` (`buf_len` bytes) and its length without the NUL into `*len_out`.
/// `PDIPAM_PREFIX_TEXT_MAX` bytes always suffice.
///
/// Status: `OK`; `NULL_ARG`; `INVALID_ARG` (family or length); `BUFFER_TOO_SMALL`, with the
/// length needed (without the NUL) in `*len_out` (`buf` may be NULL when `buf_len` is 0).
/// Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `prefix` points to an initialised `pdipam_prefix`; `buf` is
/// writable for `buf_len` bytes; `len_out` is writable for one `usize`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_prefix_format(
    prefix: *const pdipam_prefix,
    buf: *mut c_char,
    buf_len: usize,
    len_out: *mut usize,
) -> pdipam_status {
    run(|| {
        let net = net_arg(prefix, "prefix")?;
        raw::write_text(&net.to_string(), buf, buf_len, len_out)
    })
}

/// Bytes that hold any prefix's text and its NUL (`"ffff:...:ffff/128"`).
pub const PDIPAM_PREFIX_TEXT_MAX: usize = 44;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_text_fits() {
        let net: IpNet = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"
            .parse()
            .unwrap();
        assert_eq!(net.to_string().len() + 1, PDIPAM_PREFIX_TEXT_MAX);
        let v4: IpNet = "255.255.255.255/32".parse().unwrap();
        assert!(v4.to_string().len() < PDIPAM_PREFIX_TEXT_MAX);
    }

    #[test]
    fn round_trips() {
        for text in ["10.0.0.16/28", "2600:1f14::/80", "10.0.0.5/32", "::/0"] {
            let net: IpNet = text.parse().unwrap();
            assert_eq!(pdipam_prefix::from_net(net).read_net().unwrap(), net);
        }
    }
}
