//! Where a torrent's files go on disk.

use std::path::{Path, PathBuf};

use super::{Torrent, validate};

impl Torrent {
    /// Where file number `file` goes below the download directory `root`:
    /// `root/<name>/<path components...>` (just `root/<name>` for a single-file torrent).
    /// `None` if there is no such file.
    ///
    /// The result always lies strictly inside `root`: it is `root` with one normal
    /// component pushed for the name and for each path component, and every one of them
    /// was checked to be a plain file name when the torrent was parsed or built. This is
    /// lexical: code that writes the files must still not follow symbolic links that
    /// already exist below `root`.
    pub fn output_path(&self, root: &Path, file: usize) -> Option<PathBuf> {
        let entry = self.info.files.get(file)?;
        let mut path = root.to_path_buf();
        for c in std::iter::once(&self.info.name).chain(&entry.path) {
            // Checked already; checked again so that a slip elsewhere cannot turn into
            // a write outside `root`.
            if validate::component(c).is_err() {
                return None;
            }
            path.push(c);
        }
        Some(path)
    }

    /// The path of file number `file` for people: the name and the path components
    /// joined with `/`. `None` if there is no such file.
    pub fn display_path(&self, file: usize) -> Option<String> {
        let entry = self.info.files.get(file)?;
        Some(validate::display_path(&self.info.name, &entry.path))
    }
}
