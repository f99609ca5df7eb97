//! Operation sequences through the `extern "C"` functions, made as a C caller makes them, with
//! the naive subnet model beside: shared by the `ffi_ops` fuzz target and its proptest twin
//! (`ffi/tests/ops.rs`). Feature `testing`; not a stable API.

use crate::{
    pdipam_action, pdipam_cloud_change, pdipam_cloud_diff_change, pdipam_cloud_diff_free,
    pdipam_cloud_diff_len, pdipam_cloud_diff_message, pdipam_cloud_diff_pod_key, pdipam_last_error,
    pdipam_node, pdipam_node_assign, pdipam_node_attach_interface, pdipam_node_attach_prefix,
    pdipam_node_free, pdipam_node_get_stats, pdipam_node_new, pdipam_node_plan,
    pdipam_node_reconcile, pdipam_node_release, pdipam_node_stats, pdipam_node_verify,
    pdipam_observed_interface, pdipam_prefix, pdipam_prefix_format, pdipam_prefix_parse,
    pdipam_status_str, pdipam_subnet, pdipam_subnet_alloc_ip, pdipam_subnet_alloc_prefix,
    pdipam_subnet_alloc_prefix_at, pdipam_subnet_explain, pdipam_subnet_free,
    pdipam_subnet_get_stats, pdipam_subnet_new_with, pdipam_subnet_options, pdipam_subnet_release,
    pdipam_subnet_stats, pdipam_subnet_verify, PDIPAM_CHANGE_QUARANTINED, PDIPAM_CHANGE_REFUSED,
    PDIPAM_CHANGE_REINSTATED, PDIPAM_INTERFACE_PRIMARY, PDIPAM_STATUS_BUFFER_TOO_SMALL,
    PDIPAM_STATUS_INVALID_ARG, PDIPAM_STATUS_NULL_ARG, PDIPAM_STATUS_OK,
};
use arbitrary::Arbitrary;
use ipnet::IpNet;
use pdipam::testing::NaiveSubnet;
use pdipam::{Placement, ReservedProfile, SubnetOptions};
use std::ffi::{c_char, CStr, CString};
use std::net::{IpAddr, Ipv4Addr};
use std::ptr::{null, null_mut};

/// A string as a C caller might pass it.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Text {
    /// The intended value.
    Good,
    /// NULL.
    Null,
    /// Bytes that are not UTF-8.
    NotUtf8,
    /// Longer than the 4096-byte bound.
    Overlong,
    /// Empty.
    Empty,
}

/// One call (or a few) through the C ABI.
#[derive(Arbitrary, Clone, Debug)]
pub enum FfiOp {
    /// `pdipam_subnet_alloc_prefix`; `null_out` passes NULL for the output.
    AllocPrefix {
        /// Length below the unit length (0-11).
        shorter: u8,
        /// NULL output.
        null_out: bool,
    },
    /// `pdipam_subnet_alloc_prefix_at` with a caller-built prefix, perhaps malformed.
    AllocPrefixAt {
        /// Offset in the subnet.
        unit: u16,
        /// Length, unchecked.
        len: u8,
        /// Family byte, 4 or 6 mostly.
        family: u8,
    },
    /// `pdipam_subnet_alloc_ip`.
    AllocIp {
        /// NULL output.
        null_out: bool,
    },
    /// `pdipam_subnet_release` of an arbitrary prefix.
    Release {
        /// Offset in the subnet.
        unit: u16,
        /// Length.
        len: u8,
    },
    /// `pdipam_subnet_release` of something held.
    ReleaseHeld {
        /// Which.
        pick: u8,
    },
    /// `pdipam_subnet_get_stats`, compared with the model.
    Stats,
    /// `pdipam_subnet_explain` into a buffer of `buf_len` bytes.
    Explain {
        /// Prefix length.
        len: u8,
        /// Buffer size.
        buf_len: u8,
    },
    /// `pdipam_prefix_parse` of arbitrary bytes (bounded, so one step does not eat the input).
    Parse {
        /// The bytes (an interior NUL ends the string as C sees it).
        bytes: [u8; 48],
        /// How many of them.
        len: u8,
    },
    /// `pdipam_prefix_format` of a caller-built prefix into `buf_len` bytes.
    Format {
        /// Family byte.
        family: u8,
        /// Length byte.
        len: u8,
        /// Address bytes.
        addr: [u8; 16],
        /// Buffer size.
        buf_len: u8,
    },
    /// `pdipam_node_assign` with strings as given.
    Assign {
        /// Which container.
        key: u8,
        /// The container id as passed.
        text: Text,
    },
    /// `pdipam_node_release`.
    NodeRelease {
        /// Which container.
        key: u8,
        /// The container id as passed.
        text: Text,
    },
    /// `pdipam_node_attach_prefix` of `10.1.{n}.0/28` (or misaligned).
    AttachPrefix {
        /// Which prefix.
        n: u8,
        /// Misaligned.
        misaligned: bool,
        /// The interface id as passed.
        text: Text,
    },
    /// `pdipam_node_plan` into `cap` slots.
    Plan {
        /// Array size.
        cap: u8,
    },
    /// `pdipam_last_error` into `buf_len` bytes.
    LastError {
        /// Buffer size.
        buf_len: u8,
    },
    /// `pdipam_status_str` of any integer.
    StatusStr {
        /// The integer.
        status: i32,
    },
    /// Calls on NULL handles.
    NullHandles,
    /// `pdipam_node_reconcile` of a report: `eni-0` (its id as passed) with the prefixes
    /// `10.1.{i + 1}.0/28` for the bits `i` of `prefixes` (the first misaligned on
    /// `misaligned`, the array NULL on `null_array`), and `eni-1` on `second`; then every
    /// change read, and every message and pod key into `buf_len` bytes.
    Reconcile {
        /// Which prefixes are reported.
        prefixes: u8,
        /// The first one misaligned.
        misaligned: bool,
        /// Report a second interface.
        second: bool,
        /// The interface id as passed.
        text: Text,
        /// A NULL prefix array.
        null_array: bool,
        /// Buffer size for the texts.
        buf_len: u8,
    },
}

/// Decodes operations from raw bytes until they run out (arbitrary's own collection decoding
/// stops at a continuation byte, which random bytes end after a step or two).
pub fn decode(bytes: &[u8]) -> Vec<FfiOp> {
    let mut u = arbitrary::Unstructured::new(bytes);
    let mut ops = Vec::new();
    while !u.is_empty() {
        match FfiOp::arbitrary(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    ops
}

/// A subnet and a node made through the C ABI, and the subnet's model.
pub struct FfiPair {
    subnet: *mut pdipam_subnet,
    node: *mut pdipam_node,
    model: NaiveSubnet,
    held: Vec<IpNet>,
    cidr: IpNet,
}

impl Drop for FfiPair {
    fn drop(&mut self) {
        // SAFETY: this replay's live handles; NULL on purpose or live locals.
        unsafe { pdipam_subnet_free(self.subnet) };
        // SAFETY: this replay's live handles; NULL on purpose or live locals.
        unsafe { pdipam_node_free(self.node) };
    }
}

fn blank() -> pdipam_prefix {
    pdipam_prefix {
        family: 0xEE,
        len: 0xEE,
        addr: [0xEE; 16],
    }
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

/// A C string for `text`: (owner, pointer).
fn c_text(good: &str, how: Text) -> (Option<CString>, *const c_char) {
    let s = match how {
        Text::Good => CString::new(good).expect("no NUL"),
        Text::Null => return (None, null()),
        Text::NotUtf8 => CString::new(vec![b'c', 0xff, 0xfe]).expect("no NUL"),
        Text::Overlong => CString::new(vec![b'x'; 5000]).expect("no NUL"),
        Text::Empty => CString::new("").expect("no NUL"),
    };
    let p = s.as_ptr();
    (Some(s), p)
}

/// Text written into a buffer of `buf_len` bytes: on OK NUL-terminated with the reported
/// length; on BUFFER_TOO_SMALL the buffer untouched and a length that would not have fitted.
fn text_call(
    buf_len: u8,
    call: impl FnOnce(*mut c_char, usize, *mut usize) -> i32,
) -> Result<(i32, Option<String>), String> {
    let mut buf = vec![0x55 as c_char; usize::from(buf_len)];
    let mut len = usize::MAX;
    let ptr = if buf.is_empty() {
        null_mut()
    } else {
        buf.as_mut_ptr()
    };
    let status = call(ptr, buf.len(), &mut len);
    match status {
        PDIPAM_STATUS_OK => {
            check(len < buf.len() && buf[len] == 0, || {
                format!("OK with len {len} in {} bytes", buf.len())
            })?;
            let bytes: Vec<u8> = buf[..len].iter().map(|b| *b as u8).collect();
            let text = String::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
            check(!text.contains('\0'), || "a NUL inside".into())?;
            Ok((status, Some(text)))
        }
        PDIPAM_STATUS_BUFFER_TOO_SMALL => {
            check(len >= buf.len(), || {
                format!("too small, yet {len} fits {}", buf.len())
            })?;
            check(buf.iter().all(|b| *b == 0x55 as c_char), || {
                "buffer written on failure".into()
            })?;
            Ok((status, None))
        }
        s => Ok((s, None)),
    }
}

impl FfiPair {
    /// A /24 subnet (profile and placement picked by `config`) and an m5.large node with one
    /// interface and one prefix, both made through the C ABI.
    ///
    /// # Panics
    /// If the C ABI refuses to make them (a bug).
    pub fn new(config: u8) -> Self {
        let cidr: IpNet = "10.0.0.0/24".parse().expect("a CIDR");
        let profile = [
            ReservedProfile::Aws,
            ReservedProfile::Classic,
            ReservedProfile::None,
        ][usize::from(config % 3)];
        let placement = [
            Placement::Pack,
            Placement::FirstFit,
            Placement::Random { seed: 9 },
        ][usize::from(config / 3 % 3)];
        let c_options = pdipam_subnet_options {
            profile: config % 3,
            placement: config / 3 % 3,
            fallback_to_unreserved: 1,
            seed: 9,
        };
        let mut subnet = null_mut();
        let c_cidr = pdipam_prefix::from_net(cidr);
        assert_eq!(
            // SAFETY: this replay's live handles; NULL on purpose or live locals.
            unsafe { pdipam_subnet_new_with(&c_cidr, &c_options, &mut subnet) },
            PDIPAM_STATUS_OK
        );
        let model = NaiveSubnet::with_options(
            cidr,
            SubnetOptions::default()
                .profile(profile)
                .placement(placement),
        )
        .expect("a valid subnet");
        let mut node = null_mut();
        let t = CString::new("m5.large").expect("no NUL");
        assert_eq!(
            // SAFETY: `t` is a live CString and `node` a live local.
            unsafe { pdipam_node_new(t.as_ptr(), &mut node) },
            PDIPAM_STATUS_OK
        );
        let eni = CString::new("eni-0").expect("no NUL");
        let primary = pdipam_prefix::from_addr(IpAddr::from([10, 1, 0, 5]));
        assert_eq!(
            // SAFETY: this replay's live handles; NULL on purpose or live locals.
            unsafe { pdipam_node_attach_interface(node, eni.as_ptr(), 0, &primary) },
            PDIPAM_STATUS_OK
        );
        FfiPair {
            subnet,
            node,
            model,
            held: Vec::new(),
            cidr,
        }
    }

    /// [`FfiOp::Reconcile`].
    fn reconcile(
        &self,
        prefixes: u8,
        misaligned: bool,
        second: bool,
        text: Text,
        null_array: bool,
        buf_len: u8,
    ) -> Result<(), String> {
        let nets: Vec<pdipam_prefix> = (0..8u8)
            .filter(|i| prefixes & (1 << i) != 0)
            .enumerate()
            .map(|(k, i)| {
                let host = if misaligned && k == 0 { 8 } else { 0 };
                let net: IpNet = format!("10.1.{}.{host}/28", i + 1).parse().expect("a CIDR");
                pdipam_prefix::from_net(net)
            })
            .collect();
        let (_own, id) = c_text("eni-0", text);
        let eni1 = CString::new("eni-1").expect("no NUL");
        let mut report = vec![pdipam_observed_interface {
            interface_id: id,
            device_number: 0,
            flags: PDIPAM_INTERFACE_PRIMARY,
            primary_addr: pdipam_prefix::from_addr(IpAddr::from([10, 1, 0, 5])),
            prefixes: if null_array { null() } else { nets.as_ptr() },
            prefixes_len: nets.len(),
            addresses: null(),
            addresses_len: 0,
        }];
        if second {
            report.push(pdipam_observed_interface {
                interface_id: eni1.as_ptr(),
                device_number: 1,
                flags: 0,
                primary_addr: pdipam_prefix::from_addr(IpAddr::from([10, 1, 0, 6])),
                prefixes: null(),
                prefixes_len: 0,
                addresses: null(),
                addresses_len: 0,
            });
        }
        let mut diff = null_mut();
        // SAFETY: this replay's live handles; NULL on purpose or live locals.
        let s =
            unsafe { pdipam_node_reconcile(self.node, report.as_ptr(), report.len(), &mut diff) };
        let good = matches!(text, Text::Good) && (!null_array || nets.is_empty());
        check((s == PDIPAM_STATUS_OK) == good, || {
            format!("reconcile: status {s}, input good: {good}")
        })?;
        if s != PDIPAM_STATUS_OK {
            return check(diff.is_null(), || "a diff written on failure".into());
        }
        let mut len = usize::MAX;
        // SAFETY: the diff just made, freed below.
        let s = unsafe { pdipam_cloud_diff_len(diff, &mut len) };
        let read = (|| {
            check(s == PDIPAM_STATUS_OK && len < 64, || {
                format!("len: {s}, {len}")
            })?;
            for i in 0..=len {
                let mut c = std::mem::MaybeUninit::<pdipam_cloud_change>::uninit();
                // SAFETY: the live diff and a live local.
                let s = unsafe { pdipam_cloud_diff_change(diff, i, c.as_mut_ptr()) };
                if i == len {
                    return check(s == PDIPAM_STATUS_INVALID_ARG, || {
                        format!("change {i}: {s}")
                    });
                }
                check(s == PDIPAM_STATUS_OK, || format!("change {i}: {s}"))?;
                // SAFETY: written on OK.
                let c = unsafe { c.assume_init() };
                check(c.kind <= PDIPAM_CHANGE_REFUSED, || {
                    format!("kind {}", c.kind)
                })?;
                check(c.interface_id.contains(&0), || "id not terminated".into())?;
                if c.kind == PDIPAM_CHANGE_REFUSED {
                    check(c.status != PDIPAM_STATUS_OK, || {
                        "a refusal without a status".into()
                    })?;
                    // SAFETY: the live diff; the buffer and length are text_call's locals.
                    text_call(buf_len, |b, n, l| unsafe {
                        pdipam_cloud_diff_message(diff, i, b, n, l)
                    })?;
                }
                if c.kind == PDIPAM_CHANGE_QUARANTINED || c.kind == PDIPAM_CHANGE_REINSTATED {
                    for part in 0..3 {
                        // SAFETY: the live diff; the buffer and length are text_call's locals.
                        text_call(buf_len, |b, n, l| unsafe {
                            pdipam_cloud_diff_pod_key(diff, i, part, b, n, l)
                        })?;
                    }
                }
            }
            Ok(())
        })();
        // SAFETY: made above, freed once.
        unsafe { pdipam_cloud_diff_free(diff) };
        read
    }

    fn at(&self, unit: u16, len: u8, family: u8) -> pdipam_prefix {
        let base = match self.cidr.addr() {
            IpAddr::V4(a) => u32::from(a),
            IpAddr::V6(_) => unreachable!("an IPv4 subnet"),
        };
        let a = Ipv4Addr::from(base.wrapping_add(u32::from(unit % 300)));
        let mut p = pdipam_prefix::from_addr(IpAddr::V4(a));
        p.len = len;
        p.family = family;
        p
    }

    /// Makes one call (or a few) and checks everything it may check.
    ///
    /// # Errors
    /// The first disagreement or broken rule.
    pub fn step(&mut self, op: &FfiOp) -> Result<(), String> {
        match op.clone() {
            FfiOp::AllocPrefix { shorter, null_out } => {
                let len = 32 - shorter % 12;
                if null_out {
                    // SAFETY: this replay's live handles; NULL on purpose or live locals.
                    let s = unsafe { pdipam_subnet_alloc_prefix(self.subnet, len, null_mut()) };
                    check(s == PDIPAM_STATUS_NULL_ARG, || format!("NULL out gave {s}"))?;
                } else {
                    let mut out = blank();
                    // SAFETY: this replay's live handles; NULL on purpose or live locals.
                    let s = unsafe { pdipam_subnet_alloc_prefix(self.subnet, len, &mut out) };
                    let m = self.model.allocate_prefix(len);
                    self.agree(s, &out, m.map(|a| a.cidr))?;
                }
            }
            FfiOp::AllocPrefixAt { unit, len, family } => {
                let family = if family < 200 { 4 } else { family };
                let p = self.at(unit, len % 40, family);
                // SAFETY: this replay's live handles; NULL on purpose or live locals.
                let s = unsafe { pdipam_subnet_alloc_prefix_at(self.subnet, &p) };
                match p.read_net() {
                    Ok(net) => {
                        let m = self.model.allocate_prefix_at(net);
                        check((s == PDIPAM_STATUS_OK) == m.is_ok(), || {
                            format!("{net}: status {s}, model {m:?}")
                        })?;
                        if m.is_ok() {
                            self.held.push(net);
                        }
                    }
                    Err(_) => check(s != PDIPAM_STATUS_OK, || "a malformed prefix taken".into())?,
                }
            }
            FfiOp::AllocIp { null_out } => {
                if null_out {
                    // SAFETY: this replay's live handles; NULL on purpose or live locals.
                    let s = unsafe { pdipam_subnet_alloc_ip(self.subnet, null_mut()) };
                    check(s == PDIPAM_STATUS_NULL_ARG, || format!("NULL out gave {s}"))?;
                } else {
                    let mut out = blank();
                    // SAFETY: this replay's live handles; NULL on purpose or live locals.
                    let s = unsafe { pdipam_subnet_alloc_ip(self.subnet, &mut out) };
                    let m = self.model.allocate_ip().map(IpNet::from);
                    self.agree(s, &out, m)?;
                }
            }
            FfiOp::Release { unit, len } => {
                let p = self.at(unit, 24 + len % 9, 4);
                let net = p.read_net().map_err(|e| e.to_string())?;
                // SAFETY: this replay's live handles; NULL on purpose or live locals.
                let s = unsafe { pdipam_subnet_release(self.subnet, &p) };
                let m = self.model.release(net);
                check((s == PDIPAM_STATUS_OK) == m.is_ok(), || {
                    format!("release {net}: status {s}, model {m:?}")
                })?;
                if m.is_ok() {
                    self.held.retain(|h| *h != net);
                }
            }
            FfiOp::ReleaseHeld { pick } => {
                if !self.held.is_empty() {
                    let net = self.held.swap_remove(usize::from(pick) % self.held.len());
                    // SAFETY: this replay's live handles; NULL on purpose or live locals.
                    let s = unsafe {
                        pdipam_subnet_release(self.subnet, &pdipam_prefix::from_net(net))
                    };
                    let m = self.model.release(net);
                    check(s == PDIPAM_STATUS_OK && m.is_ok(), || {
                        format!("release of held {net}: status {s}, model {m:?}")
                    })?;
                }
            }
            FfiOp::Stats => {
                let mut out = std::mem::MaybeUninit::<pdipam_subnet_stats>::uninit();
                // SAFETY: this replay's live handles; NULL on purpose or live locals.
                let s = unsafe { pdipam_subnet_get_stats(self.subnet, out.as_mut_ptr()) };
                check(s == PDIPAM_STATUS_OK, || format!("stats: {s}"))?;
                // SAFETY: written on OK.
                let st = unsafe { out.assume_init() };
                let m = self.model.stats();
                check((st.free, st.allocated) == (m.free, m.allocated), || {
                    format!("stats ({}, {}) against {m:?}", st.free, st.allocated)
                })?;
            }
            FfiOp::Explain { len, buf_len } => {
                let subnet = self.subnet;
                let (s, text) = text_call(buf_len, |b, n, l| {
                    // SAFETY: this replay's live handles; NULL on purpose or live locals.
                    unsafe { pdipam_subnet_explain(subnet, 20 + len % 16, b, n, l) }
                })?;
                if let Some(t) = text {
                    check(t.contains("candidate aligned block"), || t.clone())?;
                }
                check(s != PDIPAM_STATUS_NULL_ARG || buf_len > 0, || {
                    "NULL buffer of 0 bytes is a size query, not an error".into()
                })?;
            }
            FfiOp::Parse { bytes, len } => {
                let text: Vec<u8> = bytes[..usize::from(len) % 49]
                    .iter()
                    .copied()
                    .take_while(|b| *b != 0)
                    .collect();
                let c = CString::new(text.clone()).expect("no NUL left");
                let mut out = blank();
                // SAFETY: this replay's live handles; NULL on purpose or live locals.
                let s = unsafe { pdipam_prefix_parse(c.as_ptr(), &mut out) };
                let parsed = std::str::from_utf8(&text).ok().and_then(|t| {
                    t.parse::<IpNet>()
                        .ok()
                        .or_else(|| t.parse::<IpAddr>().ok().map(IpNet::from))
                });
                match parsed {
                    Some(net) => check(
                        s == PDIPAM_STATUS_OK && out == pdipam_prefix::from_net(net),
                        || format!("{net}: status {s}, {out:?}"),
                    )?,
                    None => check(s != PDIPAM_STATUS_OK && out == blank(), || {
                        format!("accepted {text:?}")
                    })?,
                }
            }
            FfiOp::Format {
                family,
                len,
                addr,
                buf_len,
            } => {
                let p = pdipam_prefix {
                    family: if family < 128 {
                        4
                    } else if family < 250 {
                        6
                    } else {
                        family
                    },
                    len,
                    addr,
                };
                // SAFETY: this replay's live handles; NULL on purpose or live locals.
                let (s, text) = text_call(buf_len, |b, n, l| unsafe {
                    pdipam_prefix_format(&p, b, n, l)
                })?;
                match (p.read_net(), text) {
                    (Ok(net), Some(t)) => check(t == net.to_string(), || t.clone())?,
                    (Ok(_), None) => check(s == PDIPAM_STATUS_BUFFER_TOO_SMALL, || {
                        format!("a valid prefix refused: {s}")
                    })?,
                    (Err(_), t) => check(s != PDIPAM_STATUS_OK && t.is_none(), || {
                        "a malformed prefix formatted".into()
                    })?,
                }
            }
            FfiOp::Assign { key, text } => {
                let (_own, c) = c_text(&format!("c{}", key % 20), text);
                let (net, ifn) = (CString::new("net").unwrap(), CString::new("eth0").unwrap());
                let mut out = blank();
                // SAFETY: this replay's live handles; NULL on purpose or live locals.
                let s = unsafe {
                    pdipam_node_assign(self.node, net.as_ptr(), c, ifn.as_ptr(), &mut out)
                };
                check(s == PDIPAM_STATUS_OK || out == blank(), || {
                    "an output written on failure".into()
                })?;
                check(matches!(text, Text::Good) || s != PDIPAM_STATUS_OK, || {
                    format!("{text:?} container id accepted")
                })?;
            }
            FfiOp::NodeRelease { key, text } => {
                let (_own, c) = c_text(&format!("c{}", key % 20), text);
                let (net, ifn) = (CString::new("net").unwrap(), CString::new("eth0").unwrap());
                let mut out = blank();
                // SAFETY: this replay's live handles; NULL on purpose or live locals.
                let s = unsafe {
                    pdipam_node_release(self.node, net.as_ptr(), c, ifn.as_ptr(), &mut out)
                };
                check(s == PDIPAM_STATUS_OK || out == blank(), || {
                    "an output written on failure".into()
                })?;
            }
            FfiOp::AttachPrefix {
                n,
                misaligned,
                text,
            } => {
                let (_own, id) = c_text("eni-0", text);
                let net: IpNet =
                    format!("10.1.{}.{}/28", n % 8 + 1, if misaligned { 8 } else { 0 })
                        .parse()
                        .expect("a CIDR");
                // SAFETY: this replay's live handles; NULL on purpose or live locals.
                let s = unsafe {
                    pdipam_node_attach_prefix(self.node, id, &pdipam_prefix::from_net(net))
                };
                check(!misaligned || s != PDIPAM_STATUS_OK, || {
                    format!("misaligned {net} attached")
                })?;
            }
            FfiOp::Plan { cap } => {
                let mut actions =
                    vec![std::mem::MaybeUninit::<pdipam_action>::uninit(); usize::from(cap % 8)];
                let mut len = usize::MAX;
                let ptr = if actions.is_empty() {
                    null_mut()
                } else {
                    actions.as_mut_ptr().cast::<pdipam_action>()
                };
                // SAFETY: this replay's live handles; NULL on purpose or live locals.
                let s = unsafe { pdipam_node_plan(self.node, ptr, actions.len(), &mut len) };
                check(
                    (s == PDIPAM_STATUS_OK && len <= actions.len())
                        || (s == PDIPAM_STATUS_BUFFER_TOO_SMALL && len > actions.len()),
                    || format!("plan: status {s}, len {len}, cap {}", actions.len()),
                )?;
            }
            FfiOp::LastError { buf_len } => {
                // SAFETY: this replay's live handles; NULL on purpose or live locals.
                text_call(buf_len, |b, n, l| unsafe { pdipam_last_error(b, n, l) })?;
            }
            FfiOp::StatusStr { status } => {
                // SAFETY: a static NUL-terminated string, never NULL.
                let name = unsafe { CStr::from_ptr(pdipam_status_str(status)) };
                check(name.to_bytes().starts_with(b"PDIPAM_STATUS_"), || {
                    format!("{name:?}")
                })?;
            }
            FfiOp::Reconcile {
                prefixes,
                misaligned,
                second,
                text,
                null_array,
                buf_len,
            } => self.reconcile(prefixes, misaligned, second, text, null_array, buf_len)?,
            FfiOp::NullHandles => {
                let mut out = blank();
                // SAFETY: this replay's live handles; NULL on purpose or live locals.
                let s = unsafe { pdipam_subnet_alloc_prefix(null(), 28, &mut out) };
                check(s == PDIPAM_STATUS_NULL_ARG && out == blank(), || {
                    format!("{s}")
                })?;
                let mut st = std::mem::MaybeUninit::<pdipam_node_stats>::uninit();
                // SAFETY: this replay's live handles; NULL on purpose or live locals.
                let s = unsafe { pdipam_node_get_stats(null(), st.as_mut_ptr()) };
                check(s == PDIPAM_STATUS_NULL_ARG, || format!("{s}"))?;
                check(
                    // SAFETY: this replay's live handles; NULL on purpose or live locals.
                    unsafe { pdipam_subnet_verify(null()) } == PDIPAM_STATUS_NULL_ARG,
                    || "verify of NULL".into(),
                )?;
            }
        }
        check(
            // SAFETY: this replay's live handles; NULL on purpose or live locals.
            unsafe { pdipam_subnet_verify(self.subnet) } == PDIPAM_STATUS_OK,
            || "subnet verify failed".into(),
        )?;
        // SAFETY: this replay's live handles; NULL on purpose or live locals.
        check(
            unsafe { pdipam_node_verify(self.node) } == PDIPAM_STATUS_OK,
            || "node verify failed".into(),
        )
    }

    /// The C call and the model agree: both succeed with the same prefix, or both fail and the
    /// output is untouched.
    fn agree<E: std::fmt::Debug>(
        &mut self,
        status: i32,
        out: &pdipam_prefix,
        model: Result<IpNet, E>,
    ) -> Result<(), String> {
        match model {
            Ok(net) => {
                check(
                    status == PDIPAM_STATUS_OK && *out == pdipam_prefix::from_net(net),
                    || format!("model gave {net}, C gave status {status}, {out:?}"),
                )?;
                self.held.push(net);
                Ok(())
            }
            Err(e) => check(status != PDIPAM_STATUS_OK && *out == blank(), || {
                format!("model refused ({e:?}), C gave status {status}, {out:?}")
            }),
        }
    }
}
