//! Turning Modbus words and bits into numbers.
//!
//! Devices disagree on how multi-register values are laid out. The four
//! layouts in use are named after the byte sequence of the value `0xAABBCCDD`
//! as it appears on the wire:
//!
//! | order  | first register | second register | where it is found                     |
//! |--------|----------------|-----------------|---------------------------------------|
//! | `abcd` | `AA BB`        | `CC DD`         | the Modbus default (big-endian)       |
//! | `cdab` | `CC DD`        | `AA BB`         | word-swapped: many PLCs and meters    |
//! | `badc` | `BB AA`        | `DD CC`         | byte-swapped within each register     |
//! | `dcba` | `DD CC`        | `BB AA`         | fully little-endian                   |
//!
//! For 64-bit values the same two rules apply to four registers: the byte swap
//! works inside each register and the word swap reverses the register order.
//! For 16-bit values only the byte swap matters.
//!
//! Every function here is total: too few words, a bit number out of range or
//! a non-numeric string give a [`DecodeError`], never a panic.

use serde::{Deserialize, Serialize};

/// Byte and word order of a value that spans registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WordOrder {
    /// Big-endian words, most significant word first (the Modbus default).
    #[default]
    Abcd,
    /// Least significant word first, each word big-endian.
    Cdab,
    /// Most significant word first, the bytes inside each word swapped.
    Badc,
    /// Fully little-endian.
    Dcba,
}

impl WordOrder {
    fn swaps_bytes(self) -> bool {
        matches!(self, WordOrder::Badc | WordOrder::Dcba)
    }

    fn swaps_words(self) -> bool {
        matches!(self, WordOrder::Cdab | WordOrder::Dcba)
    }
}

/// How a tag's registers or bits become a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    /// Unsigned 16-bit integer, one register.
    #[default]
    U16,
    /// Signed 16-bit integer (two's complement), one register.
    I16,
    /// Unsigned 32-bit integer, two registers.
    U32,
    /// Signed 32-bit integer, two registers.
    I32,
    /// Unsigned 64-bit integer, four registers.
    U64,
    /// Signed 64-bit integer, four registers.
    I64,
    /// IEEE 754 single precision, two registers.
    F32,
    /// IEEE 754 double precision, four registers.
    F64,
    /// A coil or discrete input, or a register that is true when non-zero.
    Bool,
    /// One bit of a register, chosen by the register's `bit` key (0 is the
    /// least significant bit).
    Bit,
    /// ASCII text of `length` registers, two characters per register, read as
    /// a number (for example a meter that reports `" 123.4"`).
    String,
}

impl DataType {
    /// How many registers a value of this type occupies; strings take
    /// `string_length` registers.
    pub fn width(self, string_length: u16) -> u16 {
        match self {
            DataType::U16 | DataType::I16 | DataType::Bool | DataType::Bit => 1,
            DataType::U32 | DataType::I32 | DataType::F32 => 2,
            DataType::U64 | DataType::I64 | DataType::F64 => 4,
            DataType::String => string_length,
        }
    }
}

/// Why a tag's words could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// The reply held fewer registers than the type needs.
    #[error("needs {needed} registers, got {got}")]
    TooShort {
        /// Registers the type needs.
        needed: usize,
        /// Registers available.
        got: usize,
    },
    /// A `bit` outside 0..=15.
    #[error("bit {0} is outside 0..=15")]
    BadBit(u8),
    /// The decoded number is NaN or infinite.
    #[error("value is not a finite number")]
    NotFinite,
    /// A string register held something other than a number.
    #[error("text {0:?} is not a number")]
    NotANumber(String),
    /// A string register held a byte that is not printable ASCII.
    #[error("text holds byte {0:#04x}, which is not printable ASCII")]
    NotAscii(u8),
}

/// The words of a value in `abcd` order: most significant first, each word
/// big-endian.
fn normalise(words: &[u16], order: WordOrder) -> impl Iterator<Item = u16> + '_ {
    let swap_bytes = order.swaps_bytes();
    let swap_words = order.swaps_words();
    let n = words.len();
    (0..n).map(move |i| {
        let word = if swap_words {
            words[n - 1 - i]
        } else {
            words[i]
        };
        if swap_bytes { word.swap_bytes() } else { word }
    })
}

/// The big-endian integer made of `words` (at most four) in `order`.
fn assemble(words: &[u16], order: WordOrder) -> u64 {
    normalise(words, order).fold(0u64, |acc, w| (acc << 16) | u64::from(w))
}

/// Decodes the raw value of `data_type` from the start of `words`.
///
/// `bit` is used by [`DataType::Bit`], `string_length` by [`DataType::String`].
pub fn decode_registers(
    words: &[u16],
    data_type: DataType,
    order: WordOrder,
    bit: u8,
    string_length: u16,
) -> Result<f64, DecodeError> {
    let needed = usize::from(data_type.width(string_length));
    let words = words.get(..needed).ok_or(DecodeError::TooShort {
        needed,
        got: words.len(),
    })?;
    let raw = assemble_for(words, data_type, order);
    let value = match data_type {
        DataType::U16 | DataType::U32 | DataType::U64 => raw as f64,
        DataType::I16 => f64::from(raw as u16 as i16),
        DataType::I32 => f64::from(raw as u32 as i32),
        DataType::I64 => raw as i64 as f64,
        DataType::F32 => f64::from(f32::from_bits(raw as u32)),
        DataType::F64 => f64::from_bits(raw),
        DataType::Bool => bool_value(raw != 0),
        DataType::Bit => {
            if bit > 15 {
                return Err(DecodeError::BadBit(bit));
            }
            bool_value(raw & (1 << bit) != 0)
        }
        DataType::String => return decode_string(words, order),
    };
    if value.is_finite() {
        Ok(value)
    } else {
        Err(DecodeError::NotFinite)
    }
}

fn assemble_for(words: &[u16], data_type: DataType, order: WordOrder) -> u64 {
    if data_type == DataType::String {
        return 0;
    }
    assemble(words, order)
}

/// The number a text register spells, for trends and alarms.
fn decode_string(words: &[u16], order: WordOrder) -> Result<f64, DecodeError> {
    let text = decode_text(words, order)?;
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(DecodeError::NotANumber(text.chars().take(32).collect())),
    }
}

/// ASCII text, two characters per register, trimmed of spaces and NULs.
/// Anything but printable ASCII is refused rather than guessed at.
pub fn decode_text(words: &[u16], order: WordOrder) -> Result<String, DecodeError> {
    // Text runs first register first; only the byte order inside a register
    // varies between devices.
    let bytes: Vec<u8> = words
        .iter()
        .flat_map(|&w| {
            let w = if order.swaps_bytes() {
                w.swap_bytes()
            } else {
                w
            };
            w.to_be_bytes()
        })
        .collect();
    let trimmed = bytes
        .iter()
        .position(|&b| b == 0)
        .map_or(&bytes[..], |end| &bytes[..end]);
    if let Some(&bad) = trimmed
        .iter()
        .find(|b| !(b.is_ascii_graphic() || **b == b' '))
    {
        return Err(DecodeError::NotAscii(bad));
    }
    Ok(String::from_utf8_lossy(trimmed).trim().to_owned())
}

fn bool_value(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// The words a device in `order` would send for the `abcd`-ordered `words`.
///
/// The inverse of the decoder's normalisation; simulators and tests use it to
/// lay values out like a real device would.
pub fn encode_words(abcd: &[u16], order: WordOrder) -> Vec<u16> {
    // Swapping is its own inverse.
    normalise(abcd, order).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn be_words(bytes: &[u8]) -> Vec<u16> {
        bytes
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect()
    }

    #[test]
    fn orders_of_a_32_bit_value() {
        // 0xAABBCCDD laid out four ways.
        let value = f64::from(0xAABB_CCDDu32);
        let d = |w: &[u16], o| decode_registers(w, DataType::U32, o, 0, 0).unwrap();
        assert_eq!(d(&[0xAABB, 0xCCDD], WordOrder::Abcd), value);
        assert_eq!(d(&[0xCCDD, 0xAABB], WordOrder::Cdab), value);
        assert_eq!(d(&[0xBBAA, 0xDDCC], WordOrder::Badc), value);
        assert_eq!(d(&[0xDDCC, 0xBBAA], WordOrder::Dcba), value);
    }

    #[test]
    fn floats_and_signed_types() {
        let pi = be_words(&std::f32::consts::PI.to_be_bytes());
        let v = decode_registers(&pi, DataType::F32, WordOrder::Abcd, 0, 0).unwrap();
        assert!((v - std::f64::consts::PI).abs() < 1e-6);
        let e = be_words(&(-2.5f64).to_be_bytes());
        assert_eq!(
            decode_registers(&e, DataType::F64, WordOrder::Abcd, 0, 0),
            Ok(-2.5)
        );
        let m = be_words(&(-7i32).to_be_bytes());
        assert_eq!(
            decode_registers(&m, DataType::I32, WordOrder::Abcd, 0, 0),
            Ok(-7.0)
        );
        let m = be_words(&(-7i64).to_be_bytes());
        assert_eq!(
            decode_registers(&m, DataType::I64, WordOrder::Abcd, 0, 0),
            Ok(-7.0)
        );
        assert_eq!(
            decode_registers(&[0xFFFF], DataType::I16, WordOrder::Abcd, 0, 0),
            Ok(-1.0)
        );
        // A byte-swapped 16-bit register.
        assert_eq!(
            decode_registers(&[0x3412], DataType::U16, WordOrder::Badc, 0, 0),
            Ok(f64::from(0x1234u16))
        );
    }

    #[test]
    fn bits_bools_and_strings() {
        let d = |w: &[u16], t, bit| decode_registers(w, t, WordOrder::Abcd, bit, 3);
        assert_eq!(d(&[0b100], DataType::Bit, 2), Ok(1.0));
        assert_eq!(d(&[0b100], DataType::Bit, 1), Ok(0.0));
        assert_eq!(d(&[0], DataType::Bit, 16), Err(DecodeError::BadBit(16)));
        assert_eq!(d(&[0], DataType::Bool, 0), Ok(0.0));
        assert_eq!(d(&[9], DataType::Bool, 0), Ok(1.0));
        let text = be_words(b" 12.5\0");
        assert_eq!(d(&text, DataType::String, 0), Ok(12.5));
        let text = be_words(b"FAULT ");
        assert!(matches!(
            d(&text, DataType::String, 0),
            Err(DecodeError::NotANumber(_))
        ));
        // As text, it reads as it is; the first NUL ends it; bytes outside
        // printable ASCII are refused.
        assert_eq!(decode_text(&text, WordOrder::Abcd), Ok("FAULT".into()));
        assert_eq!(
            decode_text(&be_words(b"ON\0xyz"), WordOrder::Abcd),
            Ok("ON".into())
        );
        assert_eq!(
            decode_text(&[u16::from_be_bytes(*b"NO")], WordOrder::Badc),
            Ok("ON".into())
        );
        assert_eq!(
            decode_text(&be_words(b"A\x07"), WordOrder::Abcd),
            Err(DecodeError::NotAscii(7))
        );
        assert_eq!(
            decode_text(&be_words(&[b'A', 0xC3]), WordOrder::Abcd),
            Err(DecodeError::NotAscii(0xC3))
        );
        assert_eq!(
            d(&[1], DataType::U32, 0),
            Err(DecodeError::TooShort { needed: 2, got: 1 })
        );
        let nan = be_words(&f32::NAN.to_be_bytes());
        assert_eq!(
            decode_registers(&nan, DataType::F32, WordOrder::Abcd, 0, 0),
            Err(DecodeError::NotFinite)
        );
    }

    fn any_type() -> impl Strategy<Value = DataType> {
        prop_oneof![
            Just(DataType::U16),
            Just(DataType::I16),
            Just(DataType::U32),
            Just(DataType::I32),
            Just(DataType::U64),
            Just(DataType::I64),
            Just(DataType::F32),
            Just(DataType::F64),
            Just(DataType::Bool),
            Just(DataType::Bit),
            Just(DataType::String),
        ]
    }

    fn any_order() -> impl Strategy<Value = WordOrder> {
        prop_oneof![
            Just(WordOrder::Abcd),
            Just(WordOrder::Cdab),
            Just(WordOrder::Badc),
            Just(WordOrder::Dcba),
        ]
    }

    proptest! {
        /// Arbitrary words, types, orders and bit numbers never panic, and a
        /// decoded value is always finite.
        #[test]
        fn decoding_is_total(
            words in proptest::collection::vec(any::<u16>(), 0..8),
            data_type in any_type(),
            order in any_order(),
            bit in any::<u8>(),
            length in 0u16..8,
        ) {
            if let Ok(v) = decode_registers(&words, data_type, order, bit, length) {
                prop_assert!(v.is_finite());
            }
        }

        /// A 64-bit integer laid out in any order decodes to itself.
        #[test]
        fn every_order_round_trips(value in any::<u64>(), order in any_order()) {
            let abcd = be_words(&value.to_be_bytes());
            let wire = encode_words(&abcd, order);
            prop_assert_eq!(
                decode_registers(&wire, DataType::U64, order, 0, 0),
                Ok(value as f64)
            );
            let value32 = value as u32;
            let abcd = be_words(&value32.to_be_bytes());
            let wire = encode_words(&abcd, order);
            prop_assert_eq!(
                decode_registers(&wire, DataType::U32, order, 0, 0),
                Ok(f64::from(value32))
            );
        }
    }
}
