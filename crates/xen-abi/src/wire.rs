//! Safe byte views of the ABI structs.
//!
//! Every ABI struct is `#[repr(C)]` with its padding spelled out as named fields, so its
//! Rust layout matches the C one (checked by size asserts here and by the C layout test).
//! Bytes are produced field by field, little-endian, at each field's `offset_of!`: no
//! transmutes, no `unsafe`.

use crate::AbiError;

/// A value with a fixed little-endian encoding: the integers and arrays of them.
pub trait Field: Copy {
    /// Encoded size in bytes.
    const SIZE: usize;
    /// The all-zero value.
    const ZERO: Self;
    /// Write the value at the start of `out` (which holds at least `SIZE` bytes).
    fn put(&self, out: &mut [u8]);
    /// Read a value from the start of `bytes`; `None` if it is too short.
    fn get(bytes: &[u8]) -> Option<Self>;
}

macro_rules! int_field {
    ($($t:ty),*) => {$(
        impl Field for $t {
            const SIZE: usize = core::mem::size_of::<$t>();
            const ZERO: Self = 0;
            fn put(&self, out: &mut [u8]) {
                if let Some(dst) = out.get_mut(..Self::SIZE) {
                    dst.copy_from_slice(&self.to_le_bytes());
                }
            }
            fn get(bytes: &[u8]) -> Option<Self> {
                let src = bytes.get(..Self::SIZE)?;
                let mut raw = [0u8; core::mem::size_of::<$t>()];
                raw.copy_from_slice(src);
                Some(<$t>::from_le_bytes(raw))
            }
        }
    )*};
}

int_field!(u8, u16, u32, u64, i32, i64);

impl<T: Field, const N: usize> Field for [T; N] {
    const SIZE: usize = T::SIZE * N;
    const ZERO: Self = [T::ZERO; N];
    fn put(&self, out: &mut [u8]) {
        for (item, chunk) in self.iter().zip(out.chunks_mut(T::SIZE)) {
            item.put(chunk);
        }
    }
    fn get(bytes: &[u8]) -> Option<Self> {
        let mut value = [T::ZERO; N];
        for (i, slot) in value.iter_mut().enumerate() {
            let start = i.checked_mul(T::SIZE)?;
            *slot = T::get(bytes.get(start..)?)?;
        }
        Some(value)
    }
}

/// An ABI struct: a fixed size and a byte encoding that matches its C layout.
pub trait Wire: Sized {
    /// `sizeof` of the C struct.
    const SIZE: usize;
    /// The C struct's name, for error messages.
    const NAME: &'static str;
    /// Write the struct into the first `SIZE` bytes of `out`; padding bytes are left
    /// as they are (zero in a fresh buffer). Returns an error if `out` is too short.
    fn encode_into(&self, out: &mut [u8]) -> Result<(), AbiError>;
    /// Read the struct from the first `SIZE` bytes of `bytes`.
    fn decode(bytes: &[u8]) -> Result<Self, AbiError>;
    /// The struct's bytes, exactly `SIZE` of them.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8; Self::SIZE];
        // The buffer has exactly SIZE bytes, so encoding cannot fail.
        let _ = self.encode_into(&mut out);
        out
    }
}

/// Define a `#[repr(C)]` ABI struct with its size assert and its [`Wire`] encoding.
macro_rules! abi_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident = ($cname:literal, $size:expr) {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        const _: () = assert!(core::mem::size_of::<$name>() == $size);

        // A struct nests in another (and in arrays) as a field.
        impl $crate::wire::Field for $name {
            const SIZE: usize = $size;
            const ZERO: Self = Self { $( $field: <$ty as $crate::wire::Field>::ZERO, )* };
            fn put(&self, out: &mut [u8]) {
                let _ = $crate::wire::Wire::encode_into(self, out);
            }
            fn get(bytes: &[u8]) -> Option<Self> {
                $crate::wire::Wire::decode(bytes).ok()
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $( $field: <$ty as $crate::wire::Field>::ZERO, )* }
            }
        }

        impl $crate::wire::Wire for $name {
            const SIZE: usize = $size;
            const NAME: &'static str = $cname;
            fn encode_into(&self, out: &mut [u8]) -> Result<(), $crate::AbiError> {
                let got = out.len();
                let out = out.get_mut(..$size).ok_or($crate::AbiError::Short {
                    what: $cname,
                    need: $size,
                    got,
                })?;
                $(
                    if let Some(dst) = out.get_mut(core::mem::offset_of!($name, $field)..) {
                        $crate::wire::Field::put(&self.$field, dst);
                    }
                )*
                Ok(())
            }
            fn decode(bytes: &[u8]) -> Result<Self, $crate::AbiError> {
                let short = $crate::AbiError::Short { what: $cname, need: $size, got: bytes.len() };
                let bytes = bytes.get(..$size).ok_or(short)?;
                Ok(Self {
                    $(
                        $field: bytes
                            .get(core::mem::offset_of!($name, $field)..)
                            .and_then(<$ty as $crate::wire::Field>::get)
                            .ok_or($crate::AbiError::Short { what: $cname, need: $size, got: 0 })?,
                    )*
                })
            }
        }
    };
}

pub(crate) use abi_struct;

#[cfg(test)]
mod tests {
    use super::*;

    abi_struct! {
        /// A test struct with a hole.
        pub struct Probe = ("probe", 16) {
            /// a
            pub a: u16,
            /// pad
            pub pad: u16,
            /// b
            pub b: u32,
            /// c
            pub c: [u8; 3],
            /// pad
            pub pad2: [u8; 5],
        }
    }

    #[test]
    fn encodes_little_endian_at_offsets() {
        let p = Probe {
            a: 0x0102,
            pad: 0,
            b: 0x0a0b0c0d,
            c: [7, 8, 9],
            pad2: [0; 5],
        };
        let bytes = p.to_bytes();
        assert_eq!(
            bytes,
            [2, 1, 0, 0, 0x0d, 0x0c, 0x0b, 0x0a, 7, 8, 9, 0, 0, 0, 0, 0]
        );
        assert_eq!(Probe::decode(&bytes).ok(), Some(p));
    }

    #[test]
    fn short_input_is_an_error() {
        let err = Probe::decode(&[0u8; 15]).err();
        assert!(matches!(
            err,
            Some(AbiError::Short {
                what: "probe",
                need: 16,
                got: 15
            })
        ));
        let mut out = [0u8; 4];
        assert!(Probe::default().encode_into(&mut out).is_err());
    }

    #[test]
    fn arrays_of_wide_ints() {
        let v: [u32; 2] = [1, 0x01000000];
        let mut out = [0u8; 8];
        v.put(&mut out);
        assert_eq!(out, [1, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(<[u32; 2]>::get(&out), Some(v));
        assert_eq!(<[u32; 2]>::get(&out[..7]), None);
    }
}
