//! Unix times compared exactly, as Python compares an int with a float.
//!
//! `exp`, `nbf`, `now` and `leeway` may each be an integer or a float. Converting everything to
//! f64 loses precision past 2^53 (an `exp` of 2^53+1 would equal a `now` of 2^53), so integers stay
//! integers and mixed comparisons are done exactly.

use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Seconds {
    Int(i64),
    Float(f64),
}

impl From<f64> for Seconds {
    fn from(f: f64) -> Self {
        Seconds::Float(f)
    }
}

impl From<i64> for Seconds {
    fn from(i: i64) -> Self {
        Seconds::Int(i)
    }
}

/// Exact ordering of an integer and a float (the float is not NaN).
fn cmp_int_float(i: i64, f: f64) -> Ordering {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f >= TWO_63 {
        return Ordering::Less;
    }
    if f < -TWO_63 {
        return Ordering::Greater;
    }
    let whole = f.trunc();
    match i.cmp(&(whole as i64)) {
        Ordering::Equal => 0.0f64.partial_cmp(&(f - whole)).unwrap_or(Ordering::Equal),
        other => other,
    }
}

impl Seconds {
    pub fn is_finite(self) -> bool {
        match self {
            Seconds::Int(_) => true,
            Seconds::Float(f) => f.is_finite(),
        }
    }

    /// Exact comparison; NaN compares as None.
    pub fn cmp_exact(self, other: Seconds) -> Option<Ordering> {
        match (self, other) {
            (Seconds::Int(a), Seconds::Int(b)) => Some(a.cmp(&b)),
            (Seconds::Float(a), Seconds::Float(b)) => a.partial_cmp(&b),
            (Seconds::Int(a), Seconds::Float(b)) => (!b.is_nan()).then(|| cmp_int_float(a, b)),
            (Seconds::Float(a), Seconds::Int(b)) => {
                (!a.is_nan()).then(|| cmp_int_float(b, a).reverse())
            }
        }
    }

    /// `self + delta` (delta a finite number of seconds), staying exact for integral values.
    pub fn plus(self, delta: f64) -> Seconds {
        match self {
            Seconds::Int(i) if delta.fract() == 0.0 && delta.abs() < 1e15 => i
                .checked_add(delta as i64)
                .map(Seconds::Int)
                .unwrap_or(Seconds::Float(i as f64 + delta)),
            Seconds::Int(i) => Seconds::Float(i as f64 + delta),
            Seconds::Float(f) => Seconds::Float(f + delta),
        }
    }

    pub fn le(self, other: Seconds) -> bool {
        matches!(
            self.cmp_exact(other),
            Some(Ordering::Less | Ordering::Equal)
        )
    }

    pub fn gt(self, other: Seconds) -> bool {
        matches!(self.cmp_exact(other), Some(Ordering::Greater))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_beyond_2_53() {
        let big = 1i64 << 53;
        assert!(Seconds::Int(big + 1).gt(Seconds::Int(big)));
        assert!(Seconds::Int(big + 1).gt(Seconds::Float(big as f64)));
        assert!(!Seconds::Int(big + 1).le(Seconds::Float(big as f64)));
        assert!(Seconds::Float(1.5).gt(Seconds::Int(1)));
        assert!(Seconds::Float(1.0).le(Seconds::Int(1)));
        assert!(Seconds::Int(1).le(Seconds::Float(1.0)));
        assert!(Seconds::Int(-3).le(Seconds::Float(-2.5)));
        assert!(Seconds::Float(-3.5).le(Seconds::Int(-3)));
        assert!(Seconds::Int(i64::MAX).le(Seconds::Float(f64::INFINITY)));
        assert!(Seconds::Float(f64::NEG_INFINITY).le(Seconds::Int(i64::MIN)));
        assert_eq!(Seconds::Int(5).plus(-30.0), Seconds::Int(-25));
        assert_eq!(Seconds::Int(5).plus(0.5), Seconds::Float(5.5));
        assert_eq!(Seconds::Float(f64::NAN).cmp_exact(Seconds::Int(1)), None);
    }
}
