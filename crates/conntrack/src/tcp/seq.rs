//! TCP sequence numbers, compared modulo 2³² like the kernel's `before()`
//! and `after()` (include/net/tcp.h).
//!
//! Window tracking never compares raw `u32`s: `Seq` makes every comparison
//! go through the wrapping rule, and arithmetic on it wraps.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// A sequence (or acknowledgment) number in the 2³² ring.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Seq(pub u32);

impl Seq {
    /// `before(self, other)`: `self` lies in the half of the ring behind
    /// `other`. Irreflexive: `a.before(a)` is false.
    #[inline]
    pub const fn before(self, other: Seq) -> bool {
        (self.0.wrapping_sub(other.0) as i32) < 0
    }

    /// `after(self, other)`, i.e. `other.before(self)`.
    #[inline]
    pub const fn after(self, other: Seq) -> bool {
        other.before(self)
    }
}

impl Add<u32> for Seq {
    type Output = Seq;
    #[inline]
    fn add(self, n: u32) -> Seq {
        Seq(self.0.wrapping_add(n))
    }
}

impl AddAssign<u32> for Seq {
    #[inline]
    fn add_assign(&mut self, n: u32) {
        self.0 = self.0.wrapping_add(n);
    }
}

impl Sub<u32> for Seq {
    type Output = Seq;
    #[inline]
    fn sub(self, n: u32) -> Seq {
        Seq(self.0.wrapping_sub(n))
    }
}

/// The distance from `earlier` to `self`, modulo 2³² (what C gets from
/// `u32 - u32`).
impl Sub<Seq> for Seq {
    type Output = u32;
    #[inline]
    fn sub(self, earlier: Seq) -> u32 {
        self.0.wrapping_sub(earlier.0)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::Seq;

    #[test]
    fn wraps_around_the_ring() {
        assert!(Seq(0xffff_fff0).before(Seq(5)));
        assert!(Seq(5).after(Seq(0xffff_fff0)));
        assert!(!Seq(7).before(Seq(7)));
        assert!(!Seq(7).after(Seq(7)));
        assert_eq!(Seq(0xffff_ffff) + 2, Seq(1));
        assert_eq!(Seq(1) - Seq(0xffff_ffff), 2);
    }
}
