//! CIDRs from the command line, with errors that say what is wrong (ipnet's own says only
//! "invalid IP address syntax", whatever the fault).

use ipnet::IpNet;
use std::net::IpAddr;

/// `ADDRESS/LENGTH`, IPv4 or IPv6; host bits may be set (they are cleared by the callers that
/// need a network, or refused where they matter).
pub fn parse(text: &str) -> Result<IpNet, String> {
    let Some((addr, len)) = text.split_once('/') else {
        return Err(format!(
            "{text:?} is not a CIDR: expected ADDRESS/LENGTH, e.g. 10.0.0.0/20"
        ));
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("{text:?}: {addr:?} is not an IPv4 or IPv6 address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len: u8 = len
        .parse()
        .ok()
        .filter(|_| len.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            format!("{text:?}: prefix length {len:?} is not a number from 0 to {max}")
        })?;
    IpNet::new(addr, len).map_err(|_| {
        format!(
            "{text:?}: prefix length /{len} is longer than an {} address (at most /{max})",
            if addr.is_ipv4() { "IPv4" } else { "IPv6" }
        )
    })
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn each_fault_is_named() {
        assert_eq!(parse("10.0.0.0/20").unwrap().to_string(), "10.0.0.0/20");
        assert_eq!(
            parse("2600:1f14::/56").unwrap().to_string(),
            "2600:1f14::/56"
        );
        assert_eq!(
            parse("10.0.0.0/33").unwrap_err(),
            "\"10.0.0.0/33\": prefix length /33 is longer than an IPv4 address (at most /32)"
        );
        assert_eq!(
            parse("::/129").unwrap_err(),
            "\"::/129\": prefix length /129 is longer than an IPv6 address (at most /128)"
        );
        assert_eq!(
            parse("10.0.0.256/24").unwrap_err(),
            "\"10.0.0.256/24\": \"10.0.0.256\" is not an IPv4 or IPv6 address"
        );
        assert_eq!(
            parse("10.0.0.0/x").unwrap_err(),
            "\"10.0.0.0/x\": prefix length \"x\" is not a number from 0 to 32"
        );
        assert_eq!(
            parse("10.0.0.0/+8").unwrap_err(),
            "\"10.0.0.0/+8\": prefix length \"+8\" is not a number from 0 to 32"
        );
        assert!(parse("10.0.0.0")
            .unwrap_err()
            .contains("expected ADDRESS/LENGTH"));
    }
}
