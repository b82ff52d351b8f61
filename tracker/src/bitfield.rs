//! Which pieces someone has: one bit per piece, the same type on the wire (peer to peer,
//! peer to tracker), in the tracker's replicated state and in a peer's resume file.
//!
//! Bit `i` is bit `7 - i % 8` of byte `i / 8` (most significant bit first, as in
//! BitTorrent); the spare bits of the last byte are always zero. On the wire a bitfield is
//! a MessagePack array `[len, bin]` and decoding checks both rules, so a bitfield received
//! from a remote never claims a piece beyond the torrent's end.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smallvec::SmallVec;

/// Bytes kept inside the bitfield itself rather than behind a pointer: 1,024 pieces, a
/// gibibyte in 1 MiB pieces. A peer's core keeps one bitfield per neighbour and reads it
/// on every announcement; with thousands of simulated peers, following the pointer to a
/// separate allocation was a cache miss of its own, after the miss on the neighbour.
/// Larger torrents' bitfields live on the heap as before.
const INLINE_BYTES: usize = 128;

/// A set of piece indices `0..len`.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Bitfield {
    len: u32,
    bytes: SmallVec<[u8; INLINE_BYTES]>,
}

impl std::fmt::Debug for Bitfield {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bitfield({}/{})", self.count(), self.len)
    }
}

/// Why bytes are not a bitfield of the given length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BitfieldError {
    /// The byte count does not match the piece count.
    #[error("a bitfield of {len} pieces needs {expected} bytes, got {got}")]
    WrongLength {
        /// Pieces.
        len: u32,
        /// Bytes needed.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// A bit past the last piece is set.
    #[error("a bitfield of {len} pieces has bits set past its end")]
    SpareBitsSet {
        /// Pieces.
        len: u32,
    },
}

impl Bitfield {
    /// No pieces out of `len`.
    pub fn new(len: u32) -> Self {
        Bitfield {
            len,
            bytes: SmallVec::from_elem(0, byte_len(len)),
        }
    }

    /// Every piece out of `len`.
    pub fn full(len: u32) -> Self {
        let mut b = Bitfield {
            len,
            bytes: SmallVec::from_elem(0xff, byte_len(len)),
        };
        b.clear_spare_bits();
        b
    }

    /// A bitfield from its packed bytes, checking the length and the spare bits.
    pub fn from_bytes(len: u32, bytes: Vec<u8>) -> Result<Self, BitfieldError> {
        let expected = byte_len(len);
        if bytes.len() != expected {
            return Err(BitfieldError::WrongLength {
                len,
                expected,
                got: bytes.len(),
            });
        }
        // Copied inline when it fits, whatever the vector's spare capacity.
        let bytes = if bytes.len() <= INLINE_BYTES {
            SmallVec::from_slice(&bytes)
        } else {
            SmallVec::from_vec(bytes)
        };
        let b = Bitfield { len, bytes };
        let mut cleared = b.clone();
        cleared.clear_spare_bits();
        if cleared.bytes != b.bytes {
            return Err(BitfieldError::SpareBitsSet { len });
        }
        Ok(b)
    }

    /// The packed bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The pieces 64 at a time: word `k` holds pieces `64k..64k + 64`, the first in the
    /// most significant bit (as in the bytes), the last word padded with zeros. Set
    /// operations over whole bitfields (subsets, what one holder offers another) read
    /// these rather than bytes; a whole word is one load, and only the short last one is
    /// copied (a copy of a length unknown at compile time is a call to `memmove`).
    pub fn words(&self) -> impl Iterator<Item = u64> + '_ {
        self.bytes
            .chunks(8)
            .map(|chunk| match <[u8; 8]>::try_from(chunk) {
                Ok(whole) => u64::from_be_bytes(whole),
                Err(_) => {
                    let mut w = [0u8; 8];
                    w[..chunk.len()].copy_from_slice(chunk);
                    u64::from_be_bytes(w)
                }
            })
    }

    /// Number of pieces the bitfield covers.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether it covers no pieces at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether piece `i` is present (false past the end).
    pub fn get(&self, i: u32) -> bool {
        i < self.len && self.bytes[(i / 8) as usize] & mask(i) != 0
    }

    /// Marks piece `i` present; returns whether it was absent. Ignores `i` past the end.
    pub fn set(&mut self, i: u32) -> bool {
        if i >= self.len {
            return false;
        }
        let byte = &mut self.bytes[(i / 8) as usize];
        let was_absent = *byte & mask(i) == 0;
        *byte |= mask(i);
        was_absent
    }

    /// Marks piece `i` absent; returns whether it was present. Ignores `i` past the end.
    pub fn clear(&mut self, i: u32) -> bool {
        if i >= self.len {
            return false;
        }
        let byte = &mut self.bytes[(i / 8) as usize];
        let was_present = *byte & mask(i) != 0;
        *byte &= !mask(i);
        was_present
    }

    /// Number of pieces present.
    pub fn count(&self) -> u32 {
        self.bytes.iter().map(|b| b.count_ones()).sum()
    }

    /// Whether every piece is present.
    pub fn is_full(&self) -> bool {
        self.count() == self.len
    }

    /// The present pieces, ascending.
    pub fn ones(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).filter(|&i| self.get(i))
    }

    /// The absent pieces, ascending.
    pub fn zeros(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).filter(|&i| !self.get(i))
    }

    /// Whether every piece present here is present in `other` too (same length assumed;
    /// extra pieces of either side are ignored), read a word at a time and stopping at the
    /// first piece `other` lacks.
    pub fn is_subset_of(&self, other: &Bitfield) -> bool {
        self.first_missing_from(other).is_none()
    }

    /// The first piece present here and absent from `other` (same length assumed), read a
    /// word at a time.
    pub fn first_missing_from(&self, other: &Bitfield) -> Option<u32> {
        let (k, word) = self
            .words()
            .zip(other.words())
            .map(|(mine, theirs)| mine & !theirs)
            .enumerate()
            .find(|&(_, extra)| extra != 0)?;
        let i = k as u32 * 64 + word.leading_zeros();
        (i < self.len.min(other.len)).then_some(i)
    }

    fn clear_spare_bits(&mut self) {
        let spare = self.bytes.len() as u64 * 8 - u64::from(self.len);
        if spare > 0
            && let Some(last) = self.bytes.last_mut()
        {
            *last &= 0xffu8 << spare;
        }
    }
}

fn byte_len(len: u32) -> usize {
    len.div_ceil(8) as usize
}

fn mask(i: u32) -> u8 {
    0x80 >> (i % 8)
}

impl Serialize for Bitfield {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (self.len, serde_bytes::Bytes::new(&self.bytes)).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Bitfield {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (len, bytes): (u32, serde_bytes::ByteBuf) = Deserialize::deserialize(deserializer)?;
        Bitfield::from_bytes(len, bytes.into_vec()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_clear_count_and_spare_bits() {
        let mut b = Bitfield::new(10);
        assert_eq!(b.as_bytes().len(), 2);
        assert!(b.set(0));
        assert!(!b.set(0));
        assert!(b.set(9));
        assert!(!b.set(10), "past the end is ignored");
        assert_eq!(b.ones().collect::<Vec<_>>(), vec![0, 9]);
        assert_eq!(b.as_bytes(), &[0x80, 0x40]);
        assert!(b.clear(9));
        assert_eq!(b.count(), 1);
        assert_eq!(Bitfield::full(10).as_bytes(), &[0xff, 0xc0]);
        assert!(Bitfield::full(10).is_full());
        assert_eq!(Bitfield::full(16).count(), 16);
    }

    /// Bitfields kept inline and those too large for it behave alike, on the wire too.
    #[test]
    fn small_and_large_bitfields_behave_alike() {
        for len in [2, 1024, 1025, 40_000] {
            let mut b = Bitfield::new(len);
            assert!(b.set(0) && b.set(len - 1));
            assert_eq!(b.count(), 2);
            let wire = rmp_serde::to_vec(&b).unwrap();
            assert_eq!(rmp_serde::from_slice::<Bitfield>(&wire).unwrap(), b);
            assert!(b.clear(len - 1) && !b.get(len - 1));
            assert!(Bitfield::full(len).is_full());
        }
    }

    #[test]
    fn decoding_refuses_wrong_length_and_spare_bits() {
        assert!(matches!(
            Bitfield::from_bytes(10, vec![0xff]),
            Err(BitfieldError::WrongLength { .. })
        ));
        assert!(matches!(
            Bitfield::from_bytes(10, vec![0xff, 0xe0]),
            Err(BitfieldError::SpareBitsSet { len: 10 })
        ));
        let full = Bitfield::full(10);
        let wire = rmp_serde::to_vec(&full).unwrap();
        assert_eq!(rmp_serde::from_slice::<Bitfield>(&wire).unwrap(), full);
        let bad = rmp_serde::to_vec(&(10u32, serde_bytes::Bytes::new(&[0xff, 0xff]))).unwrap();
        let err = rmp_serde::from_slice::<Bitfield>(&bad).unwrap_err();
        assert!(err.to_string().contains("past its end"), "{err}");
    }

    #[test]
    fn words_put_the_first_piece_on_top_and_pad_the_last_word() {
        let mut b = Bitfield::new(70);
        for i in [0, 63, 64, 69] {
            b.set(i);
        }
        let words: Vec<u64> = b.words().collect();
        assert_eq!(words, vec![(1 << 63) | 1, (1 << 63) | (1 << 58)]);
        assert_eq!(Bitfield::new(0).words().count(), 0);
    }

    #[test]
    fn subset_agrees_with_a_piece_by_piece_check() {
        for len in [1, 7, 8, 63, 64, 65, 130, 1024] {
            let mut a = Bitfield::new(len);
            let mut b = Bitfield::new(len);
            assert!(a.is_subset_of(&b));
            a.set(len - 1);
            assert!(!a.is_subset_of(&b), "{len}: the last piece counts");
            assert!(b.is_subset_of(&a));
            b.set(len - 1);
            if len > 3 {
                b.set(3);
            }
            assert!(a.is_subset_of(&b));
            let by_piece = |x: &Bitfield, y: &Bitfield| x.ones().all(|i| y.get(i));
            assert_eq!(a.is_subset_of(&b), by_piece(&a, &b));
            assert_eq!(b.is_subset_of(&a), by_piece(&b, &a), "{len}");
            let first = |x: &Bitfield, y: &Bitfield| x.ones().find(|&i| !y.get(i));
            assert_eq!(a.first_missing_from(&b), first(&a, &b));
            assert_eq!(b.first_missing_from(&a), first(&b, &a), "{len}");
            a.set(len / 2);
            assert_eq!(a.first_missing_from(&b), first(&a, &b), "{len}");
            assert_eq!(
                Bitfield::full(len).first_missing_from(&Bitfield::new(len)),
                Some(0)
            );
        }
    }
}
