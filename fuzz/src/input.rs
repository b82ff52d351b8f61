//! How a target carries several byte strings in one input: each is a little-endian `u16`
//! length and then that many bytes; a last string cut short is taken as it is. The seed
//! generator writes inputs with [`join`].

/// The byte strings in `data`.
pub fn split(mut data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    while let Some((len, rest)) = data.split_first_chunk::<2>() {
        let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
        let (part, rest) = rest.split_at(len);
        parts.push(part);
        data = rest;
    }
    parts
}

/// `parts` as one input for [`split`]. Each part must be shorter than 64 KiB.
pub fn join<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        let len = u16::try_from(part.len()).expect("a part of a fuzz input is under 64 KiB");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// A little-endian `u64` from the first 8 bytes of `bytes` (missing bytes are zeros), and
/// the rest.
pub fn take_u64(bytes: &[u8]) -> (u64, &[u8]) {
    let n = bytes.len().min(8);
    let mut word = [0u8; 8];
    word[..n].copy_from_slice(&bytes[..n]);
    (u64::from_le_bytes(word), &bytes[n..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_then_split_gives_the_parts() {
        let parts: [&[u8]; 3] = [b"", b"abc", &[0u8; 300]];
        assert_eq!(split(&join(parts)), parts);
        assert_eq!(split(&[5, 0, 1, 2]), vec![&[1u8, 2][..]]);
        assert!(split(&[9]).is_empty());
    }
}
