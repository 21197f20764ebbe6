//! IEC 61131-3 types as OPC UA sees them: the DataType of each elementary type, values
//! both ways, input quality as a StatusCode, engine time as a DateTime, and engineering
//! units as UNECE codes.
//!
//! One table per fact: [`data_type`] is the only place a type's OPC UA DataType is
//! chosen, and [`to_variant`] / [`from_variant`] follow it (a unit test holds them
//! together for every type).
//!
//! The mapping is PLCopen's (OPC 30000): BOOL Boolean, SINT SByte, INT Int16, DINT
//! Int32, LINT Int64, USINT Byte, UINT UInt16, UDINT UInt32, ULINT UInt64, REAL Float,
//! LREAL Double, and TIME Duration (a Double of milliseconds: the IEC value's
//! nanoseconds divided by 10^6); the bit strings as the unsigned integers of their
//! width: BYTE Byte, WORD UInt16, DWORD UInt32, LWORD UInt64; STRING String.

use opcua::types::{DataTypeId, DateTime, EUInformation, LocalizedText, StatusCode, Variant};
use softplc_core::types::IecType;
use softplc_core::{Quality, Value};

/// The OPC UA DataType of an IEC type.
pub fn data_type(ty: IecType) -> DataTypeId {
    match ty {
        IecType::Bool => DataTypeId::Boolean,
        IecType::Sint => DataTypeId::SByte,
        IecType::Int => DataTypeId::Int16,
        IecType::Dint => DataTypeId::Int32,
        IecType::Lint => DataTypeId::Int64,
        IecType::Usint | IecType::Byte => DataTypeId::Byte,
        IecType::Uint | IecType::Word => DataTypeId::UInt16,
        IecType::Udint | IecType::Dword => DataTypeId::UInt32,
        IecType::Ulint | IecType::Lword => DataTypeId::UInt64,
        IecType::String(_) => DataTypeId::String,
        IecType::Real => DataTypeId::Float,
        IecType::Lreal => DataTypeId::Double,
        IecType::Time => DataTypeId::Duration,
    }
}

const NS_PER_MS: f64 = 1e6;

/// A value as a Variant of its type's DataType. No allocation.
pub fn to_variant(v: Value) -> Variant {
    match v {
        Value::Bool(b) => Variant::Boolean(b),
        Value::Int(IecType::Sint, i) => Variant::SByte(i as i8),
        Value::Int(IecType::Int, i) => Variant::Int16(i as i16),
        Value::Int(IecType::Dint, i) => Variant::Int32(i as i32),
        Value::Int(_, i) => Variant::Int64(i),
        Value::UInt(IecType::Usint | IecType::Byte, u) => Variant::Byte(u as u8),
        Value::UInt(IecType::Uint | IecType::Word, u) => Variant::UInt16(u as u16),
        Value::UInt(IecType::Udint | IecType::Dword, u) => Variant::UInt32(u as u32),
        Value::UInt(_, u) => Variant::UInt64(u),
        Value::Real(f) => Variant::Float(f),
        Value::Lreal(f) => Variant::Double(f),
        Value::Time(ns) => Variant::Double(ns as f64 / NS_PER_MS),
    }
}

/// A client's Variant as a value of `ty`: the Variant must have exactly the DataType
/// [`data_type`] gives (OPC UA clients read a variable's DataType and write that type;
/// guessing a conversion would hide a client's mistake). BadTypeMismatch otherwise.
pub fn from_variant(ty: IecType, v: &Variant) -> Result<Value, StatusCode> {
    let int = |i: i64| Value::from_i128(ty, i as i128).map_err(|_| StatusCode::BadOutOfRange);
    let uint = |u: u64| Value::from_i128(ty, u as i128).map_err(|_| StatusCode::BadOutOfRange);
    match (ty, v) {
        (IecType::Bool, Variant::Boolean(b)) => Ok(Value::Bool(*b)),
        (IecType::Sint, Variant::SByte(i)) => int(*i as i64),
        (IecType::Int, Variant::Int16(i)) => int(*i as i64),
        (IecType::Dint, Variant::Int32(i)) => int(*i as i64),
        (IecType::Lint, Variant::Int64(i)) => int(*i),
        (IecType::Usint | IecType::Byte, Variant::Byte(u)) => uint(*u as u64),
        (IecType::Uint | IecType::Word, Variant::UInt16(u)) => uint(*u as u64),
        (IecType::Udint | IecType::Dword, Variant::UInt32(u)) => uint(*u as u64),
        (IecType::Ulint | IecType::Lword, Variant::UInt64(u)) => uint(*u),
        (IecType::Real, Variant::Float(f)) => Ok(Value::Real(*f)),
        (IecType::Lreal, Variant::Double(f)) => Ok(Value::Lreal(*f)),
        (IecType::Time, Variant::Double(ms)) => {
            let ns = (ms * NS_PER_MS).round();
            // i64::MAX as f64 rounds up to 2^63, which no longer fits: compare below it.
            if !ns.is_finite() || ns < i64::MIN as f64 || ns >= i64::MAX as f64 {
                return Err(StatusCode::BadOutOfRange);
            }
            Ok(Value::Time(ns as i64))
        }
        _ => Err(StatusCode::BadTypeMismatch),
    }
}

/// The StatusCode of an input's quality: a failed device's data is Bad (the value is
/// the last one, or the declared substitute); data the device has not refreshed in time
/// is Uncertain, the last usable value.
pub fn quality_status(q: Quality) -> StatusCode {
    match q {
        Quality::Good => StatusCode::Good,
        Quality::Bad => StatusCode::BadNoCommunication,
        Quality::Stale => StatusCode::UncertainLastUsableValue,
    }
}

/// 100 ns ticks between 1601-01-01 (OPC UA's epoch) and 1970-01-01 (Unix's).
const TICKS_1601_TO_1970: i64 = 116_444_736_000_000_000;

/// A DateTime from nanoseconds since the Unix epoch (OPC UA keeps 100 ns ticks).
pub fn datetime_from_unix_ns(ns: i64) -> DateTime {
    DateTime::from(ns.div_euclid(100) + TICKS_1601_TO_1970)
}

/// Nanoseconds since the Unix epoch, now (`CLOCK_REALTIME`).
pub fn unix_now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// UNECE Recommendation 20 codes of the units programs commonly declare, as OPC UA's
/// EUInformation wants them (Part 8: the code's letters packed into an Int32). Units
/// not listed keep their text as display name, with unit id -1 (unknown).
const UNECE: &[(&str, &str)] = &[
    ("%", "P1"),
    ("degC", "CEL"),
    ("°C", "CEL"),
    ("degF", "FAH"),
    ("K", "KEL"),
    ("bar", "BAR"),
    ("mbar", "MBR"),
    ("Pa", "PAL"),
    ("kPa", "KPA"),
    ("m", "MTR"),
    ("mm", "MMT"),
    ("s", "SEC"),
    ("ms", "C26"),
    ("min", "MIN"),
    ("h", "HUR"),
    ("Hz", "HTZ"),
    ("rpm", "RPM"),
    ("V", "VLT"),
    ("A", "AMP"),
    ("W", "WTT"),
    ("kW", "KWT"),
    ("l", "LTR"),
    ("m3", "MTQ"),
    ("m3/h", "MQH"),
    ("l/min", "L2"),
    ("kg", "KGM"),
    ("m/s", "MTS"),
];

/// The namespace of UNECE unit codes (OPC UA Part 8).
pub const UNECE_NAMESPACE: &str = "http://www.opcfoundation.org/UA/units/un/cefact";

/// The EUInformation of a unit text.
pub fn eu_information(unit: &str) -> EUInformation {
    let unit_id = UNECE
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, code)| code.bytes().fold(0i32, |acc, b| (acc << 8) | b as i32))
        .unwrap_or(-1);
    EUInformation {
        namespace_uri: UNECE_NAMESPACE.into(),
        unit_id,
        display_name: LocalizedText::new("", unit),
        description: LocalizedText::new("", unit),
    }
}

/// A bound as the Double an EURange holds (TIME in milliseconds, like its values).
pub fn range_bound(v: Value) -> f64 {
    match v {
        Value::Time(ns) => ns as f64 / NS_PER_MS,
        v => v.as_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use softplc_core::types::{int_range, ALL_TYPES};

    fn extremes(ty: IecType) -> Vec<Value> {
        match ty {
            IecType::Bool => vec![Value::Bool(false), Value::Bool(true)],
            IecType::Real => vec![Value::Real(-1.5), Value::Real(f32::MAX)],
            IecType::Lreal => vec![Value::Lreal(-2.25), Value::Lreal(f64::MIN_POSITIVE)],
            IecType::Time => vec![Value::Time(-1_500_000), Value::Time(86_400_000_000_000)],
            _ => {
                let (lo, hi) = int_range(ty);
                vec![
                    Value::from_i128(ty, lo).unwrap(),
                    Value::from_i128(ty, hi).unwrap(),
                ]
            }
        }
    }

    #[test]
    fn every_type_round_trips_through_the_variant_of_its_data_type() {
        for ty in ALL_TYPES {
            for v in extremes(ty) {
                let var = to_variant(v);
                let dt = var.scalar_type_id().expect("a scalar");
                let want = data_type(ty);
                // Duration is a Double on the wire.
                let want = if want == DataTypeId::Duration {
                    DataTypeId::Double
                } else {
                    want
                };
                assert_eq!(DataTypeId::try_from(dt as u32).unwrap(), want, "{ty}");
                assert_eq!(from_variant(ty, &var), Ok(v), "{ty}");
            }
        }
    }

    #[test]
    fn another_variant_type_is_a_type_mismatch() {
        assert_eq!(
            from_variant(IecType::Int, &Variant::Int32(5)),
            Err(StatusCode::BadTypeMismatch)
        );
        assert_eq!(
            from_variant(IecType::Bool, &Variant::Empty),
            Err(StatusCode::BadTypeMismatch)
        );
        assert_eq!(
            from_variant(IecType::Time, &Variant::Double(f64::NAN)),
            Err(StatusCode::BadOutOfRange)
        );
    }

    #[test]
    fn time_is_milliseconds_and_datetimes_count_from_1601() {
        assert_eq!(to_variant(Value::Time(1_500_000)), Variant::Double(1.5));
        assert_eq!(
            from_variant(IecType::Time, &Variant::Double(0.0000015)),
            Ok(Value::Time(2))
        );
        let d = datetime_from_unix_ns(1_000_000_000);
        assert_eq!(d.as_chrono().timestamp(), 1);
    }

    #[test]
    fn known_units_get_their_unece_code() {
        assert_eq!(eu_information("degC").unit_id, 0x43454C);
        assert_eq!(eu_information("%").unit_id, 0x5031);
        assert_eq!(eu_information("furlong").unit_id, -1);
    }
}
