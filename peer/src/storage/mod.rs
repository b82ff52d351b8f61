//! Piece storage: see the module docs once written.
