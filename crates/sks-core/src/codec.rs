//! §7.1 data types: big-endian integers, `byte[]` (2-byte length), `blob` (4-byte length),
//! UTF-8 `string`/`uri`/`id`. The same encoder builds MAC, KDF and attestation data
//! (byte layouts §1) and the wire protocol (§7.4).

use crate::secret::Secret;

/// A decoding failure. Carries no input bytes (they may be secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the value did.
    #[error("truncated input while reading {0}")]
    Truncated(&'static str),
    /// A bool was neither 0x00 nor 0x01.
    #[error("invalid bool value")]
    InvalidBool,
    /// A string was not valid UTF-8.
    #[error("invalid UTF-8 in string")]
    InvalidUtf8,
    /// Bytes were left after the last value.
    #[error("{0} trailing bytes")]
    Trailing(usize),
    /// The method ID is not defined by §7.4.
    #[error("unknown method ID {0}")]
    UnknownMethod(u8),
    /// A value does not fit its length prefix.
    #[error("value too long for its length prefix")]
    TooLong,
    /// A stored record has a format version this build does not know.
    #[error("unknown record version {0}")]
    UnknownVersion(u8),
    /// A byte is not one of the values the spec enumerates for its field.
    #[error(transparent)]
    UnknownValue(#[from] crate::consts::UnknownValue),
}

/// Serializer for §7.1 data types. A value longer than its length prefix can say is not
/// written, and makes [`Writer::into_bytes`] fail: nothing is ever cut to fit.
#[derive(Default)]
pub struct Writer {
    buf: Vec<u8>,
    too_long: bool,
}

impl Writer {
    /// Empty writer.
    pub fn new() -> Self {
        Self::default()
    }
    /// `byte`.
    pub fn byte(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    /// `bool`: 0x01 or 0x00.
    pub fn boolean(&mut self, v: bool) -> &mut Self {
        self.byte(u8::from(v))
    }
    /// `short`, big-endian.
    pub fn short(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// `int`, big-endian.
    pub fn int(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// `byte[]`: 2-byte length then the bytes (at most 65535 of them).
    pub fn array(&mut self, v: &[u8]) -> &mut Self {
        self.length_prefixed(v, Self::short)
    }
    /// `v` after its length written by `put`, or no bytes and a failed
    /// [`Writer::into_bytes`] when the length does not fit.
    fn length_prefixed<N: TryFrom<usize>>(
        &mut self,
        v: &[u8],
        put: fn(&mut Self, N) -> &mut Self,
    ) -> &mut Self {
        if self.prefix(v.len(), put) {
            self.buf.extend_from_slice(v);
        }
        self
    }
    /// Writes `len` with `put` and returns true; when `len` does not fit, writes nothing,
    /// makes [`Writer::into_bytes`] fail and returns false (the caller then writes no items).
    fn prefix<N: TryFrom<usize>>(
        &mut self,
        len: usize,
        put: fn(&mut Self, N) -> &mut Self,
    ) -> bool {
        match N::try_from(len) {
            Ok(n) => {
                put(self, n);
                true
            }
            Err(_) => {
                self.too_long = true;
                false
            }
        }
    }
    /// `string`, `uri` or `id`.
    pub fn string(&mut self, v: &str) -> &mut Self {
        self.array(v.as_bytes())
    }
    /// `blob`: 4-byte length then the bytes.
    pub fn blob(&mut self, v: &[u8]) -> &mut Self {
        self.length_prefixed(v, Self::int)
    }
    /// Raw bytes without a length.
    pub fn verbatim(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }
    /// The encoded bytes; [`DecodeError::TooLong`] if a value did not fit its length prefix.
    pub fn into_bytes(self) -> Result<Vec<u8>, DecodeError> {
        if self.too_long {
            return Err(DecodeError::TooLong);
        }
        Ok(self.buf)
    }
}

/// Deserializer for §7.1 data types. Never panics on any input.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(DecodeError::Truncated(what))?;
        let slice = self
            .data
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated(what))?;
        self.pos = end;
        Ok(slice)
    }
    /// `byte`.
    pub fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1, "byte")?[0])
    }
    /// `bool` (strict).
    pub fn boolean(&mut self) -> Result<bool, DecodeError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::InvalidBool),
        }
    }
    /// `short`.
    pub fn short(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2, "short")?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    /// `int`.
    pub fn int(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4, "int")?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// `byte[]`.
    pub fn array(&mut self) -> Result<Vec<u8>, DecodeError> {
        let len = self.short()?;
        Ok(self.take(usize::from(len), "byte[]")?.to_vec())
    }
    /// `string`/`uri`/`id`.
    pub fn string(&mut self) -> Result<String, DecodeError> {
        String::from_utf8(self.array()?).map_err(|_| DecodeError::InvalidUtf8)
    }
    /// `blob`.
    pub fn blob(&mut self) -> Result<Vec<u8>, DecodeError> {
        let len = usize::try_from(self.int()?).map_err(|_| DecodeError::Truncated("blob"))?;
        Ok(self.take(len, "blob")?.to_vec())
    }
    /// Remaining byte count.
    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }
    /// Fails if bytes remain.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }
}

/// A value with a §7.1 wire encoding.
pub trait WireType: Sized {
    /// Appends the encoding.
    fn put(&self, w: &mut Writer);
    /// Reads one value.
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// `WireType` for a type that `Writer::$put` writes and `Reader::$get` reads as is; `copy`
/// types are passed by value, `ref` types by reference.
macro_rules! direct_wire_type {
    (@put copy, $w:ident, $put:ident, $v:ident) => { $w.$put(*$v) };
    (@put ref, $w:ident, $put:ident, $v:ident) => { $w.$put($v) };
    ($($(#[$doc:meta])* $how:ident $ty:ty => $put:ident, $get:ident;)*) => {
        $(
            $(#[$doc])*
            impl WireType for $ty {
                fn put(&self, w: &mut Writer) {
                    direct_wire_type!(@put $how, w, $put, self);
                }
                fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                    r.$get()
                }
            }
        )*
    };
}

direct_wire_type! {
    /// `byte`.
    copy u8 => byte, byte;
    /// `bool`.
    copy bool => boolean, boolean;
    /// `short`.
    copy u16 => short, short;
    /// `int`.
    copy u32 => int, int;
    /// `byte[]`.
    ref Vec<u8> => array, array;
    /// `string`, `uri`, `id`.
    ref String => string, string;
}

/// A `blob` (4-byte length prefix).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Blob(pub Vec<u8>);

/// A spec-enumerated byte ([`crate::consts::ByteEnum`]) is that byte on the wire; an
/// undefined value read is refused with the field's name.
impl<T: crate::consts::ByteEnum> WireType for T {
    fn put(&self, w: &mut Writer) {
        w.byte((*self).into());
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(T::try_from(r.byte()?)?)
    }
}

impl WireType for Blob {
    fn put(&self, w: &mut Writer) {
        w.blob(&self.0);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.blob().map(Blob)
    }
}

/// A list type preceded by a count of type `$count` (written with `Writer::$put`, read with
/// `Reader::$get`). A list longer than the count can say is refused, as [`Writer::array`]
/// refuses a long value: nothing is written and [`Writer::into_bytes`] fails with
/// [`DecodeError::TooLong`], so no list is ever cut to fit.
macro_rules! counted_list {
    ($(#[$doc:meta])* $name:ident, $count:ty, $put:ident, $get:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name<T>(pub Vec<T>);

        impl<T: WireType> WireType for $name<T> {
            fn put(&self, w: &mut Writer) {
                if w.prefix(self.0.len(), Writer::$put) {
                    for item in &self.0 {
                        item.put(w);
                    }
                }
            }
            fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                let n = r.$get()?;
                let mut v = Vec::with_capacity(usize::from(n).min(r.remaining()));
                for _ in 0..n {
                    v.push(T::get(r)?);
                }
                Ok(Self(v))
            }
        }
    };
}

counted_list!(
    /// A list preceded by a `byte` count (certificate paths, endorsed algorithms).
    List8, u8, byte, byte
);
counted_list!(
    /// A list preceded by a `short` count (supported algorithms, extension types).
    List16, u16, short, short
);

impl WireType for Secret {
    fn put(&self, w: &mut Writer) {
        w.array(self.expose());
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array().map(Secret::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_big_endian_and_prefixes() {
        let mut w = Writer::new();
        w.byte(1)
            .boolean(true)
            .short(0x0203)
            .int(0x04050607)
            .array(b"ab")
            .blob(b"c");
        assert_eq!(
            w.into_bytes().unwrap(),
            [1, 1, 2, 3, 4, 5, 6, 7, 0, 2, b'a', b'b', 0, 0, 0, 1, b'c']
        );
    }

    #[test]
    fn a_list_over_its_count_is_refused() {
        let mut w = Writer::new();
        List8(vec![0u8; 255]).put(&mut w);
        assert_eq!(w.into_bytes().map(|b| b.len()), Ok(1 + 255));
        let mut w = Writer::new();
        List8(vec![0u8; 256]).put(&mut w);
        assert_eq!(w.into_bytes(), Err(DecodeError::TooLong));
        let mut w = Writer::new();
        List16(vec![String::new(); 65536]).put(&mut w);
        assert_eq!(w.into_bytes(), Err(DecodeError::TooLong));
    }

    #[test]
    fn reader_rejects_truncation_bad_bool_and_trailing() {
        assert_eq!(
            Reader::new(&[0, 5, 1]).array(),
            Err(DecodeError::Truncated("byte[]"))
        );
        assert_eq!(Reader::new(&[2]).boolean(), Err(DecodeError::InvalidBool));
        let mut r = Reader::new(&[0, 0, 9]);
        assert_eq!(r.array().unwrap(), Vec::<u8>::new());
        assert_eq!(r.finish(), Err(DecodeError::Trailing(1)));
        assert_eq!(
            Reader::new(&[0xFF, 0xFF, 0xFF, 0xFF]).blob(),
            Err(DecodeError::Truncated("blob"))
        );
    }
}
