//! IPv4 fragmentation of forwarded datagrams without DF, as ip_fragment does.

use smoltcp::wire::Ipv4Packet;

/// Splits `packet` into fragments of at most `mtu` bytes. Each carries a copy
/// of the header (options included); offsets are multiples of 8 bytes and the
/// last fragment keeps the original MF flag.
pub fn fragment(packet: &[u8], mtu: usize) -> Vec<Vec<u8>> {
    let ip = Ipv4Packet::new_unchecked(packet);
    let hlen = usize::from(ip.header_len());
    let total = usize::from(ip.total_len()).min(packet.len());
    let base_offset = ip.frag_offset() as usize;
    let last_mf = ip.more_frags();
    let step = (mtu.saturating_sub(hlen) / 8 * 8).max(8);
    let payload = &packet[hlen..total];
    payload
        .chunks(step)
        .enumerate()
        .map(|(i, chunk)| {
            let mut buf = Vec::with_capacity(hlen + chunk.len());
            buf.extend_from_slice(&packet[..hlen]);
            buf.extend_from_slice(chunk);
            let is_last = (i + 1) * step >= payload.len();
            let mut f = Ipv4Packet::new_unchecked(&mut buf[..]);
            f.set_total_len((hlen + chunk.len()) as u16);
            f.set_more_frags(!is_last || last_mf);
            f.set_frag_offset((base_offset + i * step) as u16);
            f.fill_checksum();
            buf
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_eight_byte_boundaries() {
        let mut p = vec![0u8; 20 + 100];
        let mut ip = Ipv4Packet::new_unchecked(&mut p[..]);
        ip.set_version(4);
        ip.set_header_len(20);
        ip.set_total_len(120);
        ip.fill_checksum();
        let f = fragment(&p, 68);
        assert_eq!(f.iter().map(Vec::len).collect::<Vec<_>>(), [68, 68, 24]);
        let offs: Vec<u16> = f
            .iter()
            .map(|b| Ipv4Packet::new_unchecked(&b[..]).frag_offset())
            .collect();
        assert_eq!(offs, [0, 48, 96]);
        assert!(Ipv4Packet::new_unchecked(&f[0][..]).more_frags());
        assert!(!Ipv4Packet::new_unchecked(&f[2][..]).more_frags());
        assert!(f
            .iter()
            .all(|b| Ipv4Packet::new_unchecked(&b[..]).verify_checksum()));
    }
}
