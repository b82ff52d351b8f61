//! Which members of a swarm hold each piece, so that "who has piece p?" costs a few
//! hundred word reads instead of a visit to every member.
//!
//! The answer to that question (`PeersWithPiece`) is a random sample of the holders. A
//! walk over the members in random order finds one quickly when many hold the piece, but
//! for a piece few hold it visits nearly all of them: with 10,000 peers in a simulated
//! flash crowd, where every leecher asks about the pieces none of its neighbours has,
//! those walks took 13 % of the whole simulation. This index is the transpose of the
//! members' bitfields, cut into blocks of 64 members: bit `s % 64` of
//! `blocks[s / 64][p]` is set exactly when the member in slot `s` holds piece `p`. An
//! answer read from it is exactly the walk's (the holders are sorted into the walk's
//! order), so the index changes what an answer costs, never what it is.
//!
//! It is derived state (rebuilt from the members on restore, never sent anywhere), kept
//! only for swarms large enough to be sampled; at 10,000 peers and 1,024 pieces it takes
//! 1.3 MB.

use crate::bitfield::Bitfield;

/// The transpose of a swarm's bitfields (see the module documentation).
#[derive(Debug, Clone)]
pub(crate) struct PieceHolders {
    piece_count: u32,
    blocks: Vec<Box<[u64]>>,
}

/// The block holding `slot`, and its bit there.
fn place(slot: usize) -> (usize, u64) {
    (slot / 64, 1u64 << (slot % 64))
}

impl PieceHolders {
    /// An index of nobody, for a torrent of `piece_count` pieces.
    pub(crate) fn new(piece_count: u32) -> Self {
        PieceHolders {
            piece_count,
            blocks: Vec::new(),
        }
    }

    /// Blocks of 64 slots: slot `s` is in block `s / 64`.
    pub(crate) fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// The slots of block `block` that hold `piece`, as bits (bit `k` is slot
    /// `64 * block + k`); 0 for a block or piece out of range.
    pub(crate) fn block(&self, block: usize, piece: u32) -> u64 {
        self.blocks
            .get(block)
            .and_then(|b| b.get(piece as usize))
            .copied()
            .unwrap_or(0)
    }

    /// The member in `slot` holds `piece`.
    pub(crate) fn set(&mut self, slot: usize, piece: u32) {
        let (block, bit) = place(slot);
        while self.blocks.len() <= block {
            self.blocks
                .push(vec![0; self.piece_count as usize].into_boxed_slice());
        }
        if let Some(word) = self.blocks[block].get_mut(piece as usize) {
            *word |= bit;
        }
    }

    /// The member in `slot` no longer holds `piece`.
    pub(crate) fn clear(&mut self, slot: usize, piece: u32) {
        let (block, bit) = place(slot);
        if let Some(word) = self
            .blocks
            .get_mut(block)
            .and_then(|b| b.get_mut(piece as usize))
        {
            *word &= !bit;
        }
    }

    /// The member in `slot` holds the pieces of `have` (and perhaps others already).
    pub(crate) fn set_all(&mut self, slot: usize, have: &Bitfield) {
        for piece in have.ones() {
            self.set(slot, piece);
        }
    }

    /// The member in `slot` holds none of the pieces of `have` any more.
    pub(crate) fn clear_all(&mut self, slot: usize, have: &Bitfield) {
        for piece in have.ones() {
            self.clear(slot, piece);
        }
    }

    /// The slots holding `piece`, ascending.
    #[cfg(test)]
    pub(crate) fn holders(&self, piece: u32) -> Vec<usize> {
        (0..self.blocks.len())
            .flat_map(|b| {
                let bits = self.block(b, piece);
                (0..64)
                    .filter(move |k| bits & (1 << k) != 0)
                    .map(move |k| b * 64 + k)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::bits;

    #[test]
    fn holders_follow_sets_and_clears_across_blocks() {
        let mut h = PieceHolders::new(10);
        assert_eq!(h.block_count(), 0);
        h.set(3, 7);
        h.set(130, 7);
        h.set_all(64, &bits(10, [0, 7, 9]));
        assert_eq!(h.block_count(), 3);
        assert_eq!(h.holders(7), vec![3, 64, 130]);
        assert_eq!(h.holders(9), vec![64]);
        h.clear(3, 7);
        h.clear_all(64, &bits(10, [7, 9]));
        assert_eq!(h.holders(7), vec![130]);
        assert_eq!(h.holders(0), vec![64]);
        assert!(h.holders(9).is_empty());
    }

    #[test]
    fn out_of_range_is_ignored() {
        let mut h = PieceHolders::new(4);
        h.set(1, 4);
        h.clear(500, 1);
        assert_eq!(h.block(0, 4), 0);
        assert_eq!(h.block(9, 0), 0);
    }
}
