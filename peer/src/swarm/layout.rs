//! How a torrent's bytes are cut into pieces.

/// The piece length and total length of a torrent: every piece is `piece_len` bytes
/// except the last, which holds the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PieceLayout {
    /// Bytes per piece.
    pub piece_len: u64,
    /// Bytes in the whole torrent.
    pub total_len: u64,
}

impl PieceLayout {
    /// Number of pieces (0 when either length is 0; at most `u32::MAX`).
    pub fn piece_count(&self) -> u32 {
        if self.piece_len == 0 {
            return 0;
        }
        u32::try_from(self.total_len.div_ceil(self.piece_len)).unwrap_or(u32::MAX)
    }

    /// Bytes in piece `i` (0 past the end).
    pub fn len_of(&self, i: u32) -> u64 {
        let start = u64::from(i).saturating_mul(self.piece_len);
        if i >= self.piece_count() || start >= self.total_len {
            return 0;
        }
        (self.total_len - start).min(self.piece_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_piece_holds_the_rest_and_degenerate_layouts_have_no_pieces() {
        let l = PieceLayout {
            piece_len: 10,
            total_len: 25,
        };
        assert_eq!(l.piece_count(), 3);
        assert_eq!((l.len_of(0), l.len_of(2), l.len_of(3)), (10, 5, 0));
        let zero = PieceLayout {
            piece_len: 0,
            total_len: 25,
        };
        assert_eq!((zero.piece_count(), zero.len_of(0)), (0, 0));
        let empty = PieceLayout {
            piece_len: 10,
            total_len: 0,
        };
        assert_eq!(empty.piece_count(), 0);
    }
}
