//! The Internet checksum (RFC 1071) and the pseudo-headers VRRP version 3 uses.

use std::net::IpAddr;

/// One's-complement sum of 16-bit big-endian words (an odd byte is padded with zero).
pub fn sum(data: &[u8]) -> u32 {
    let mut acc: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let Some(&b) = chunks.remainder().first() {
        acc += u32::from(b) << 8;
    }
    acc
}

/// Folds a sum into the final 16-bit checksum.
pub fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !u16::try_from(acc).unwrap_or(0xffff)
}

/// The sum of the pseudo-header for `proto` carrying `len` bytes from `src` to `dst`
/// (IPv4: RFC 768 style; IPv6: RFC 8200 §8.1).
pub fn pseudo_header(src: IpAddr, dst: IpAddr, proto: u8, len: u32) -> u32 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            sum(&s.octets()) + sum(&d.octets()) + u32::from(proto) + (len & 0xffff)
        }
        (s, d) => {
            let six = |a: IpAddr| match a {
                IpAddr::V6(v) => v.octets(),
                IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
            };
            sum(&six(s)) + sum(&six(d)) + (len >> 16) + (len & 0xffff) + u32::from(proto)
        }
    }
}
