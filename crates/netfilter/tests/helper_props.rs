//! Properties of the helpers: arbitrary control-channel bytes never
//! panic and open a hole only for a well-formed command; a PORT rewritten
//! under NAT parses back to the public address.

use ctsim_conntrack::helper::{ftp, irc};
use ctsim_conntrack::tcp::Dir;
use proptest::prelude::*;

/// An independent reading of a well-formed FTP PORT line (RFC 959):
/// `PORT` (any case), a space, six decimal numbers with commas, `\r`.
fn well_formed_port(data: &[u8]) -> bool {
    if !data
        .get(..5)
        .is_some_and(|w| w.eq_ignore_ascii_case(b"PORT "))
    {
        return false;
    }
    let tail = &data[5..];
    let Some(end) = tail.iter().position(|&c| c == b'\r') else {
        return false;
    };
    let nums: Vec<&[u8]> = tail[..end].split(|&c| c == b',').collect();
    nums.len() == 6 && nums.iter().all(|n| n.iter().all(u8::is_ascii_digit))
}

proptest! {
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = ftp::find(&data, Dir::Original);
        let _ = ftp::find(&data, Dir::Reply);
        let _ = irc::find(&data, |_, _| true);
    }

    #[test]
    fn port_matches_only_well_formed_commands(
        body in proptest::collection::vec(prop_oneof![
            Just(b','), Just(b'\r'), Just(b' '), Just(b'\n'), (b'0'..=b'9'), any::<u8>()
        ], 0..40),
    ) {
        let mut data = b"PORT ".to_vec();
        data.extend_from_slice(&body);
        if let ftp::Found::Match(m) = ftp::find(&data, Dir::Original) {
            if m.kind == ctsim_conntrack::helper::FtpType::Port {
                prop_assert!(well_formed_port(&data), "{:?}", String::from_utf8_lossy(&data));
            }
        }
    }

    #[test]
    fn rewritten_port_parses_back(a in any::<[u8; 4]>(), port in 1u16.., orig in 1u16..) {
        let public = std::net::Ipv4Addr::from(a);
        let line = format!("PORT 192,0,2,2,{},{}\r\n", orig >> 8, orig & 0xff);
        let m = match ftp::find(line.as_bytes(), Dir::Original) {
            ftp::Found::Match(m) => m,
            other => panic!("{other:?}"),
        };
        let mut rewritten = line.as_bytes()[..m.off].to_vec();
        rewritten.extend_from_slice(ftp::format(m.kind, public, port).as_bytes());
        rewritten.extend_from_slice(&line.as_bytes()[m.off + m.len..]);
        match ftp::find(&rewritten, Dir::Original) {
            ftp::Found::Match(b) => prop_assert_eq!((b.addr, b.port), (Some(public), port)),
            other => prop_assert!(false, "{:?}", other),
        }
        let eprt = format!("EPRT {}\r\n", ftp::format(ctsim_conntrack::helper::FtpType::Eprt, public, port));
        match ftp::find(eprt.as_bytes(), Dir::Original) {
            ftp::Found::Match(b) => prop_assert_eq!((b.addr, b.port), (Some(public), port)),
            other => prop_assert!(false, "{:?}", other),
        }
    }
}
