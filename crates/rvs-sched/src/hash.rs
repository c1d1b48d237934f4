//! The hash helpers of kernel IPVS (spec §0.6): address folding, `hash_32`, `hsiphash`
//! (SipHash-1-3 on 64-bit kernels, used by `mh`) and gcd.

use std::net::IpAddr;

/// `addr_fold`: an IPv4 address as a host-order u32; IPv6: the XOR of its four 32-bit
/// words taken in network order, then converted to host order.
pub fn addr_fold(a: IpAddr) -> u32 {
    match a {
        IpAddr::V4(v) => u32::from(v),
        IpAddr::V6(v) => {
            let o = v.octets();
            let w = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            w(0) ^ w(4) ^ w(8) ^ w(12)
        }
    }
}

/// Which golden-ratio hash the `dh`/`sh`/`lblc` tables use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashVariant {
    /// Linux 6.1: `hash_32(x, bits)` = high bits of `x * 0x61C88647`.
    #[default]
    Modern,
    /// Older kernels (3.x, early 4.x): low bits of `x * 2654435761`.
    Legacy,
}

/// `hash_32(x, bits)` in the chosen variant.
pub fn hash_32(x: u32, bits: u32, v: HashVariant) -> u32 {
    match v {
        HashVariant::Modern => x.wrapping_mul(0x61C8_8647) >> (32 - bits),
        HashVariant::Legacy => x.wrapping_mul(2_654_435_761) & ((1u32 << bits) - 1),
    }
}

/// `SipHash` with `c` compression and `d` finalisation rounds over `msg`, keyed by
/// (k0, k1); returns the 64-bit result.
pub fn siphash(c: usize, d: usize, k0: u64, k1: u64, msg: &[u8]) -> u64 {
    let mut v0 = 0x736f_6d65_7073_6575 ^ k0;
    let mut v1 = 0x646f_7261_6e64_6f6d ^ k1;
    let mut v2 = 0x6c79_6765_6e65_7261 ^ k0;
    let mut v3 = 0x7465_6462_7974_6573 ^ k1;
    let round = |v0: &mut u64, v1: &mut u64, v2: &mut u64, v3: &mut u64| {
        *v0 = v0.wrapping_add(*v1);
        *v1 = v1.rotate_left(13);
        *v1 ^= *v0;
        *v0 = v0.rotate_left(32);
        *v2 = v2.wrapping_add(*v3);
        *v3 = v3.rotate_left(16);
        *v3 ^= *v2;
        *v0 = v0.wrapping_add(*v3);
        *v3 = v3.rotate_left(21);
        *v3 ^= *v0;
        *v2 = v2.wrapping_add(*v1);
        *v1 = v1.rotate_left(17);
        *v1 ^= *v2;
        *v2 = v2.rotate_left(32);
    };
    let mut chunks = msg.chunks_exact(8);
    for ch in &mut chunks {
        let mut b = [0u8; 8];
        b.copy_from_slice(ch);
        let m = u64::from_le_bytes(b);
        v3 ^= m;
        for _ in 0..c {
            round(&mut v0, &mut v1, &mut v2, &mut v3);
        }
        v0 ^= m;
    }
    let rem = chunks.remainder();
    let mut last = (msg.len() as u64) << 56;
    for (i, byte) in rem.iter().enumerate() {
        last |= u64::from(*byte) << (8 * i);
    }
    v3 ^= last;
    for _ in 0..c {
        round(&mut v0, &mut v1, &mut v2, &mut v3);
    }
    v0 ^= last;
    v2 ^= 0xff;
    for _ in 0..d {
        round(&mut v0, &mut v1, &mut v2, &mut v3);
    }
    v0 ^ v1 ^ v2 ^ v3
}

/// The kernel's `hsiphash(&v, 4, key)` on a 64-bit kernel: SipHash-1-3 of the 4 bytes of
/// `v` in little-endian order, truncated to 32 bits.
pub fn hsiphash_u32(v: u32, key: (u64, u64)) -> u32 {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "the kernel returns the low 32 bits"
    )]
    let r = siphash(1, 3, key.0, key.1, &v.to_le_bytes()) as u32;
    r
}

/// Greatest common divisor (gcd(0, x) = x).
pub fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siphash24_reference_vector() {
        // The SipHash paper's test vector: key 00..0f, message 00..0e.
        let k0 = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let k1 = u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]);
        let msg: Vec<u8> = (0..15).collect();
        assert_eq!(siphash(2, 4, k0, k1, &msg), 0xa129_ca61_49be_45e5);
    }

    #[test]
    fn folding_and_hash32() {
        assert_eq!(addr_fold("198.18.0.1".parse().unwrap()), 0xC612_0001);
        assert_eq!(addr_fold("::1".parse().unwrap()), 1);
        assert_eq!(hash_32(1, 8, HashVariant::Modern), 0x61);
        assert_eq!(hash_32(1, 8, HashVariant::Legacy), 0x9E37_79B1 & 0xff);
        assert_eq!(gcd(12, 18), 6);
        assert_eq!(gcd(0, 5), 5);
    }
}
