//! `nf_conntrack_tftp.c` (reference/helpers-and-expectations.md §6): a
//! read or write request (RFC 1350 opcodes 1 and 2) makes the helper
//! expect the server's answer, which comes from a new port.

/// RFC 1350 §5: read request.
pub const OPCODE_READ: u16 = 1;
/// RFC 1350 §5: write request.
pub const OPCODE_WRITE: u16 = 2;

/// Whether a UDP payload is a TFTP read or write request (the only
/// opcodes the helper acts on; DATA, ACK and ERROR are ignored, and so is
/// a payload shorter than the 2-byte opcode).
pub fn is_request(udp_payload: &[u8]) -> bool {
    match udp_payload {
        [a, b, ..] => matches!(u16::from_be_bytes([*a, *b]), OPCODE_READ | OPCODE_WRITE),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_only() {
        // RFC 1350 RRQ as tftp-hpa sends it: opcode, file name, mode.
        assert!(is_request(b"\x00\x01hello.txt\x00octet\x00"));
        assert!(is_request(b"\x00\x02upload.bin\x00octet\x00"));
        // DATA block 1, ACK, ERROR, truncated.
        assert!(!is_request(b"\x00\x03\x00\x01data"));
        assert!(!is_request(b"\x00\x04\x00\x01"));
        assert!(!is_request(b"\x00\x05\x00\x01File not found\x00"));
        assert!(!is_request(b"\x00"));
        // Only the opcode counts: Linux does not look at the file name.
        assert!(is_request(b"\x00\x01"));
    }
}
