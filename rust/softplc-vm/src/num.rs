//! Numeric semantics shared by the interpreter and the standard library.
//!
//! A *cell* is 64 bits. Integers are kept canonical: signed types sign-extended, unsigned
//! types zero-extended, so comparisons and bitwise operations work on the whole word and
//! only results of arithmetic need re-normalising (wrap-around on overflow, as IEC
//! requires). REAL is the f32 bit pattern in the low half, LREAL the f64 bit pattern,
//! BOOL is 0 or 1 and TIME is signed nanoseconds.
//!
//! Every rule here has a twin in `python/softplc/iectypes.py`; the differential tests
//! check that the two agree bit for bit.

use softplc_core::IecType;

/// How to bring a 64-bit result back into the range of an integer type (wrap-around).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Norm {
    // 64 minus the width; a u8 keeps the instructions that carry a Norm small.
    shift: u8,
    signed: bool,
}

impl Norm {
    /// The normaliser of an integer type (BOOL, REAL and LREAL have none).
    pub fn of(ty: IecType) -> Option<Norm> {
        let (bits, signed) = int_bits(ty)?;
        Some(Norm {
            shift: (64 - bits) as u8,
            signed,
        })
    }

    /// Wraps `x` into the type: keeps the low bits and sign- or zero-extends them.
    #[inline(always)]
    pub fn apply(self, x: u64) -> u64 {
        if self.signed {
            (((x << self.shift) as i64) >> self.shift) as u64
        } else {
            (x << self.shift) >> self.shift
        }
    }

    /// True for signed types.
    #[inline(always)]
    pub fn signed(self) -> bool {
        self.signed
    }

    /// Width in bits.
    #[inline(always)]
    pub fn bits(self) -> u32 {
        64 - self.shift as u32
    }
}

/// Width and signedness of an integer type; TIME counts as a signed 64-bit integer and
/// a bit string (BYTE ... LWORD) as an unsigned integer of its width.
pub fn int_bits(ty: IecType) -> Option<(u32, bool)> {
    Some(match ty {
        IecType::Sint => (8, true),
        IecType::Int => (16, true),
        IecType::Dint => (32, true),
        IecType::Lint | IecType::Time => (64, true),
        IecType::Usint | IecType::Byte => (8, false),
        IecType::Uint | IecType::Word => (16, false),
        IecType::Udint | IecType::Dword => (32, false),
        IecType::Ulint | IecType::Lword => (64, false),
        _ => return None,
    })
}

/// True for integer types, TIME included.
pub fn is_int(ty: IecType) -> bool {
    int_bits(ty).is_some()
}

/// True for REAL and LREAL.
pub fn is_float(ty: IecType) -> bool {
    matches!(ty, IecType::Real | IecType::Lreal)
}

/// Float to integer: round half to even, saturate at the type's range, NaN gives 0.
#[inline]
pub fn f64_to_int(x: f64, ty: IecType) -> u64 {
    if x.is_nan() {
        return 0;
    }
    let r = x.round_ties_even();
    match ty {
        IecType::Lint | IecType::Time => (r as i64) as u64,
        IecType::Ulint | IecType::Lword => r as u64,
        _ => {
            let (bits, signed) = int_bits(ty).unwrap_or((64, true));
            if signed {
                let hi = ((1u64 << (bits - 1)) - 1) as f64;
                let lo = -hi - 1.0;
                (r.clamp(lo, hi) as i64) as u64
            } else {
                let hi = ((1u64 << bits) - 1) as f64;
                r.clamp(0.0, hi) as u64
            }
        }
    }
}

/// Integer (canonical bits of a type with the given signedness) to f64, rounded to
/// nearest.
#[inline(always)]
pub fn int_to_f64(x: u64, signed: bool) -> f64 {
    if signed {
        x as i64 as f64
    } else {
        x as f64
    }
}

/// Integer to REAL. Goes through f64 on purpose: the reference mode converts the same
/// way, so the (rare, > 2^53) double rounding is identical in both forms.
#[inline(always)]
pub fn int_to_f32(x: u64, signed: bool) -> f32 {
    int_to_f64(x, signed) as f32
}

/// The mathematical functions of the standard library.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MathFn {
    /// Square root.
    Sqrt,
    /// Sine.
    Sin,
    /// Cosine.
    Cos,
    /// Tangent.
    Tan,
    /// Arc sine.
    Asin,
    /// Arc cosine.
    Acos,
    /// Arc tangent.
    Atan,
    /// e to the power x.
    Exp,
    /// Natural logarithm.
    Ln,
    /// Base-10 logarithm.
    Log,
}

impl MathFn {
    /// Every math function, in a fixed order.
    pub const ALL: [MathFn; 10] = [
        MathFn::Sqrt,
        MathFn::Sin,
        MathFn::Cos,
        MathFn::Tan,
        MathFn::Asin,
        MathFn::Acos,
        MathFn::Atan,
        MathFn::Exp,
        MathFn::Ln,
        MathFn::Log,
    ];

    /// Parses the IR name (`sqrt`, `sin`, ...).
    pub fn from_name(name: &str) -> Option<MathFn> {
        Some(match name {
            "sqrt" => MathFn::Sqrt,
            "sin" => MathFn::Sin,
            "cos" => MathFn::Cos,
            "tan" => MathFn::Tan,
            "asin" => MathFn::Asin,
            "acos" => MathFn::Acos,
            "atan" => MathFn::Atan,
            "exp" => MathFn::Exp,
            "ln" => MathFn::Ln,
            "log" => MathFn::Log,
            _ => return None,
        })
    }

    /// The IR name.
    pub fn name(self) -> &'static str {
        match self {
            MathFn::Sqrt => "sqrt",
            MathFn::Sin => "sin",
            MathFn::Cos => "cos",
            MathFn::Tan => "tan",
            MathFn::Asin => "asin",
            MathFn::Acos => "acos",
            MathFn::Atan => "atan",
            MathFn::Exp => "exp",
            MathFn::Ln => "ln",
            MathFn::Log => "log",
        }
    }

    /// Evaluates in f64. `None` is a math error, which faults the program: a NaN from a
    /// number (domain error, e.g. SQRT(-1)) or an infinity from a finite argument
    /// (LN(0), EXP(1000)). This is the rule CPython's `math` module applies, so the
    /// reference mode raises exactly where the compiled form faults.
    #[inline]
    pub fn eval(self, x: f64) -> Option<f64> {
        let r = match self {
            MathFn::Sqrt => x.sqrt(),
            MathFn::Sin => x.sin(),
            MathFn::Cos => x.cos(),
            MathFn::Tan => x.tan(),
            MathFn::Asin => x.asin(),
            MathFn::Acos => x.acos(),
            MathFn::Atan => x.atan(),
            MathFn::Exp => x.exp(),
            MathFn::Ln => x.ln(),
            MathFn::Log => x.log10(),
        };
        if (r.is_nan() && !x.is_nan()) || (r.is_infinite() && x.is_finite()) {
            None
        } else {
            Some(r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norm_wraps_signed_and_unsigned_types() {
        let int = Norm::of(IecType::Int).unwrap();
        assert_eq!(int.apply(32768) as i64, -32768);
        assert_eq!(int.apply((-32769i64) as u64) as i64, 32767);
        let usint = Norm::of(IecType::Usint).unwrap();
        assert_eq!(usint.apply(256 + 7), 7);
        assert_eq!(usint.apply((-1i64) as u64), 255);
        let lint = Norm::of(IecType::Lint).unwrap();
        assert_eq!(lint.apply(u64::MAX), u64::MAX);
        assert!(Norm::of(IecType::Real).is_none());
    }

    #[test]
    fn float_to_int_rounds_half_to_even_and_saturates() {
        assert_eq!(f64_to_int(2.5, IecType::Int), 2);
        assert_eq!(f64_to_int(3.5, IecType::Int), 4);
        assert_eq!(f64_to_int(-2.5, IecType::Int) as i64, -2);
        assert_eq!(f64_to_int(1e9, IecType::Int) as i64, 32767);
        assert_eq!(f64_to_int(-1e9, IecType::Uint), 0);
        assert_eq!(f64_to_int(f64::NAN, IecType::Dint), 0);
        assert_eq!(f64_to_int(f64::INFINITY, IecType::Lint) as i64, i64::MAX);
        assert_eq!(f64_to_int(1e30, IecType::Ulint), u64::MAX);
    }

    #[test]
    fn math_errors_follow_the_cpython_rule() {
        assert_eq!(MathFn::Sqrt.eval(-1.0), None);
        assert_eq!(MathFn::Ln.eval(0.0), None);
        assert_eq!(MathFn::Exp.eval(1000.0), None);
        assert_eq!(MathFn::Exp.eval(f64::INFINITY), Some(f64::INFINITY));
        assert!(MathFn::Sqrt.eval(f64::NAN).unwrap().is_nan());
        assert_eq!(MathFn::Log.eval(1000.0), Some(3.0));
    }
}
