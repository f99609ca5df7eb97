//! Arbitrary text through every parser pdipam and its C ABI expose, compared with ipnet (and
//! std) where both accept: `pdipam_prefix_parse` accepts exactly what ipnet parses as a CIDR or
//! std as an address, gives the same value, and formats back to ipnet's text; the CNI-version,
//! reservation-kind and warm-setting parsers never panic and agree with their documented rules.
#![no_main]

use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;
use pdipam::{limits::CniVersion, planner::WarmSettings, ReservationKind};
use pdipam_c as c;
use std::ffi::CString;
use std::net::IpAddr;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let expected: Option<IpNet> = text
        .parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from));

    // The C ABI's parser, through the same pointer and buffer path C callers use.
    let mut out = c::pdipam_prefix {
        family: 0xEE,
        len: 0xEE,
        addr: [0xEE; 16],
    };
    let untouched = out;
    let status = match CString::new(data.to_vec()) {
        // SAFETY: the text is a live NUL-terminated CString and the output a live local.
        Ok(cs) => unsafe { c::pdipam_prefix_parse(cs.as_ptr(), &mut out) },
        Err(_) => c::PDIPAM_STATUS_INVALID_ARG, // an interior NUL cannot cross: C would stop there
    };
    let valid_utf8 = std::str::from_utf8(data).is_ok();
    match expected {
        Some(net) if valid_utf8 && !data.contains(&0) && data.len() <= 4096 => {
            assert_eq!(status, c::PDIPAM_STATUS_OK, "{text:?}");
            let mut buf = [0 as std::ffi::c_char; c::PDIPAM_PREFIX_TEXT_MAX];
            let mut len = 0usize;
            assert_eq!(
                // SAFETY: the text is a live NUL-terminated CString and the output a live local.
                unsafe { c::pdipam_prefix_format(&out, buf.as_mut_ptr(), buf.len(), &mut len) },
                0
            );
            let formatted = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
                .to_str()
                .unwrap();
            assert_eq!(formatted.len(), len);
            assert_eq!(formatted, net.to_string(), "{text:?}");
            assert_eq!(formatted.parse::<IpNet>().unwrap(), net);
        }
        _ => {
            if status == c::PDIPAM_STATUS_OK {
                // Accepted only what ipnet or std accept.
                panic!("pdipam_prefix_parse accepted {text:?}, which ipnet refuses");
            }
            assert_eq!(out, untouched, "an output written on failure");
            assert_eq!(status, c::PDIPAM_STATUS_INVALID_ARG);
        }
    }

    // The crate's own text parsers: never a panic; reservation kinds are exactly two words.
    let t = text.as_ref();
    let _ = t.parse::<CniVersion>();
    match t.parse::<ReservationKind>() {
        Ok(k) => assert!(t == "prefix" || t == "explicit", "{k:?} from {t:?}"),
        Err(e) => assert!(e.contains(&format!("{t:?}"))),
    }
    let (settings, warnings) =
        WarmSettings::parse(|name| (name == "WARM_IP_TARGET").then(|| t.to_string()));
    if let Ok(n) = t.trim().parse::<u32>() {
        assert!(warnings.is_empty() && settings.warm_ip_target == n, "{t:?}");
    }
});
