//! The decoders of the files a peer reads back, callable on plain bytes by the fuzz
//! targets in `fuzz/` (the `fuzzing` feature). Not part of the crate's API: nothing else
//! may use it.
//!
//! The peer protocol's messages ([`crate::wire`]) are public already and need no wrapper.

use tracker::torrent::Torrent;

use crate::status_file::ProcessStatus;
use crate::storage::resume;

/// A resume file's content, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume(resume::Resume);

impl Resume {
    /// The bytes of the resume file that holds this content.
    pub fn encode(&self) -> Vec<u8> {
        resume::encode(&self.0)
    }

    /// Pieces the resume file counts as verified.
    pub fn pieces(&self) -> u32 {
        self.0.have.count()
    }
}

/// Checks and decodes a resume file's bytes for `torrent`, as opening a piece store does;
/// the error says which check failed.
pub fn decode_resume(bytes: &[u8], torrent: &Torrent) -> Result<Resume, String> {
    resume::decode(bytes, torrent).map(Resume)
}

/// A resume file around any `body`: the header and the checksum a writer puts around it,
/// so that the body's own decoding and checks are reached.
pub fn frame_resume_body(body: &[u8]) -> Vec<u8> {
    resume::frame(body)
}

/// Decodes a `bt status` file's bytes, as `bt status` reads them.
pub fn decode_status(bytes: &[u8]) -> Result<ProcessStatus, String> {
    crate::status_file::decode(bytes).map_err(|e| e.to_string())
}
