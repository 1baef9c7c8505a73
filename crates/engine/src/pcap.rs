//! pcap files of what entered each link, one file per link, LINKTYPE_RAW
//! (101: the packet starts at its IPv4 header) with nanosecond timestamps,
//! which tcpdump, tshark and Wireshark read as they are.

use std::io::Write;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};

use crate::link::Link;

/// Writes the packets captured on `link` (see [`crate::Sim::capture_links`]).
pub fn write_link(link: &Link, out: impl Write) -> Result<(), pcap_file::PcapError> {
    let header = PcapHeader {
        datalink: DataLink::RAW,
        ts_resolution: TsResolution::NanoSecond,
        endianness: Endianness::Little,
        snaplen: 65535,
        ..PcapHeader::default()
    };
    let mut writer = PcapWriter::with_header(out, header)?;
    for (time, bytes) in link.captured() {
        let ts = std::time::Duration::from_nanos(time.nanos());
        writer.write_packet(&PcapPacket::new(ts, bytes.len() as u32, bytes))?;
    }
    Ok(())
}
