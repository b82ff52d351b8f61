//! `bt-tracker`: run and manage a tracker cluster.

fn main() {}
