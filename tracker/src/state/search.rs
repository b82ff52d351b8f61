//! Search by name: every word must occur in the name, ignoring case; newest first or in a
//! chosen [`SearchOrder`]; paged.
//!
//! The index is the list of lower-case names in search order (see
//! [`Torrents`](super::torrents::Torrents)): a query lower-cases its words once and tests
//! each name with substring searches, so its cost is the total length of the names, not
//! of the torrent files. That is a few milliseconds at 100,000 torrents; a word index
//! would be the next step beyond that.

use std::cmp::Ordering;

use crate::api::{ApiError, SEARCH_PAGE_LEN, SearchPage, TorrentSummary};
pub use crate::api::{SearchOrder, SortKey};

use super::torrents::Torrents;

/// Most results per page: a page is rendered and sent whole, so it stays small.
pub const MAX_SEARCH_PER_PAGE: u32 = 100;

/// Most distinct words in one query. Each word costs a pass over every name, so an
/// unbounded list would let one query occupy a node.
pub const MAX_SEARCH_WORDS: usize = 32;

/// Answers a search. `per_page` 0 means the default page length; more than
/// [`MAX_SEARCH_PER_PAGE`] means that many.
pub(crate) fn search(
    torrents: &Torrents,
    words: &str,
    page: u32,
    per_page: u32,
    order: SearchOrder,
) -> Result<SearchPage, ApiError> {
    let mut needles: Vec<String> = words.split_whitespace().map(str::to_lowercase).collect();
    needles.sort();
    needles.dedup();
    if needles.len() > MAX_SEARCH_WORDS {
        return Err(ApiError::BadRequest(format!(
            "a search has at most {MAX_SEARCH_WORDS} different words, this one has {}",
            needles.len()
        )));
    }
    // Longest first: a long word is the least likely to match, so most names fail on
    // the first test.
    needles.sort_by_key(|w| std::cmp::Reverse(w.len()));
    let per_page = match per_page {
        0 => SEARCH_PAGE_LEN,
        n => n.min(MAX_SEARCH_PER_PAGE),
    };
    let skip = u64::from(page) * u64::from(per_page);

    if order != SearchOrder::default() {
        return Ok(sorted(torrents, &needles, order, skip, per_page));
    }
    let mut total = 0u64;
    let mut hits = Vec::new();
    for ((_, info_hash), name) in &torrents.newest {
        if !needles.iter().all(|w| name.contains(w.as_str())) {
            continue;
        }
        if total >= skip
            && hits.len() < per_page as usize
            && let Some(entry) = torrents.get(info_hash)
        {
            hits.push(entry.summary(*info_hash));
        }
        total += 1;
    }
    Ok(SearchPage { total, hits })
}

/// A search in another order than the index's: every match is collected and sorted, so it
/// costs a sort of the matches on top of the scan.
fn sorted(
    torrents: &Torrents,
    needles: &[String],
    order: SearchOrder,
    skip: u64,
    per_page: u32,
) -> SearchPage {
    // In index order, so a stable sort keeps the default order among equal keys.
    let mut matches: Vec<(&str, TorrentSummary)> = torrents
        .newest
        .iter()
        .filter(|(_, name)| needles.iter().all(|w| name.contains(w.as_str())))
        .filter_map(|((_, info_hash), name)| {
            torrents
                .get(info_hash)
                .map(|entry| (&**name, entry.summary(*info_hash)))
        })
        .collect();
    let by = |a: &(&str, TorrentSummary), b: &(&str, TorrentSummary)| -> Ordering {
        let ordering = match order.by {
            SortKey::Added => a.1.added_ms.cmp(&b.1.added_ms),
            SortKey::Name => a.0.cmp(b.0),
            SortKey::Size => a.1.size.cmp(&b.1.size),
            SortKey::Seeders => a.1.seeders.cmp(&b.1.seeders),
            SortKey::Leechers => a.1.leechers.cmp(&b.1.leechers),
            SortKey::Completed => a.1.completed.cmp(&b.1.completed),
        };
        if order.descending {
            ordering.reverse()
        } else {
            ordering
        }
    };
    matches.sort_by(by);
    let total = matches.len() as u64;
    let hits = matches
        .into_iter()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .take(per_page as usize)
        .map(|(_, summary)| summary)
        .collect();
    SearchPage { total, hits }
}
