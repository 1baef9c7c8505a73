//! What file servers hold and clients send, and the check of what a client
//! receives against what it expects.

use super::super::pattern;
use super::super::Payload;

/// A file's content: the pattern (`byte i = i % 251`) or stored bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FileData {
    Pattern(u64),
    Bytes(Vec<u8>),
}

impl FileData {
    pub(crate) fn from_payload(p: &Payload) -> FileData {
        match p {
            Payload::Bytes(n) => FileData::Pattern(*n),
            Payload::Text(t) => FileData::Bytes(t.as_bytes().to_vec()),
        }
    }

    pub(crate) fn len(&self) -> u64 {
        match self {
            FileData::Pattern(n) => *n,
            FileData::Bytes(b) => b.len() as u64,
        }
    }

    /// Copies the bytes from `offset` into `buf`; returns how many there were.
    pub(crate) fn read(&self, offset: u64, buf: &mut [u8]) -> usize {
        let left = self.len().saturating_sub(offset);
        let k = (buf.len() as u64).min(left) as usize;
        if k == 0 {
            return 0;
        }
        match self {
            FileData::Pattern(_) => pattern::fill(offset, &mut buf[..k]),
            FileData::Bytes(b) => {
                let at = offset as usize;
                buf[..k].copy_from_slice(&b[at..at + k]);
            }
        }
        k
    }
}

/// Checks a download as it arrives, without keeping it.
#[derive(Debug, Default)]
pub(crate) struct Verifier {
    expect: Option<Payload>,
    got: u64,
    bad: Option<String>,
}

impl Verifier {
    pub(crate) fn new(expect: Option<Payload>) -> Self {
        Verifier {
            expect,
            got: 0,
            bad: None,
        }
    }

    pub(crate) fn received(&self) -> u64 {
        self.got
    }

    pub(crate) fn feed(&mut self, data: &[u8]) {
        let at = self.got;
        self.got += data.len() as u64;
        if self.bad.is_some() {
            return;
        }
        match &self.expect {
            None => {}
            Some(Payload::Bytes(_)) => {
                if let (_, Some(m)) = pattern::check(at, data) {
                    self.bad = Some(pattern::describe(m));
                }
            }
            Some(Payload::Text(t)) => {
                let want = t.as_bytes();
                let from = (at as usize).min(want.len());
                let want = &want[from..];
                let common = want.len().min(data.len());
                if let Some(k) = (0..common).find(|&k| want[k] != data[k]) {
                    self.bad = Some(pattern::describe((at + k as u64, want[k], data[k])));
                }
            }
        }
    }

    /// What is wrong with the whole download, if anything.
    pub(crate) fn verdict(&self) -> Option<String> {
        if let Some(bad) = &self.bad {
            return Some(format!("content differs: {bad}"));
        }
        let want = match &self.expect {
            None => return None,
            Some(Payload::Bytes(n)) => *n,
            Some(Payload::Text(t)) => t.len() as u64,
        };
        (want != self.got).then(|| format!("received {} bytes, expected {want}", self.got))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_checks_text_and_pattern_and_length() {
        let mut v = Verifier::new(Some(Payload::Text("hello\n".into())));
        v.feed(b"hel");
        v.feed(b"lo\n");
        assert_eq!(v.verdict(), None);
        v.feed(b"x");
        assert_eq!(v.verdict().unwrap(), "received 7 bytes, expected 6");

        let mut v = Verifier::new(Some(Payload::Text("hello".into())));
        v.feed(b"hexlo");
        assert!(v
            .verdict()
            .unwrap()
            .starts_with("content differs: byte 2 differs"));

        let data = FileData::Pattern(1000);
        let mut buf = [0u8; 600];
        let mut v = Verifier::new(Some(Payload::Bytes(1000)));
        assert_eq!(data.read(0, &mut buf), 600);
        v.feed(&buf);
        assert_eq!(data.read(600, &mut buf), 400);
        v.feed(&buf[..400]);
        assert_eq!(v.verdict(), None);
        assert_eq!(data.read(1000, &mut buf), 0);
        assert_eq!(FileData::Bytes(b"abc".to_vec()).read(5, &mut buf), 0);
    }
}
