//! The site's actions, shared by the pages and the JSON API: reads under the leader's
//! lease, writes through this node's sessions, and the errors people see.

use axum::http::StatusCode;
use paxos::runtime::RequestError;

use crate::admission::{self, NotAdmitted};
use crate::api::{ApiError, MAX_SEARCH_LEN, MIN_TOKEN_LEN, SEARCH_PAGE_LEN, SearchPage};
use crate::service::now_ms;
use crate::state::{
    Command, Output, Query, SearchOrder, SortKey, TokenHash, TokenRecord, TorrentDetails, Uploader,
};
use crate::torrent::{InfoHash, MAX_TORRENT_FILE_LEN, Torrent};

use super::Site;

/// How long one read may take. 3 s: twice what the peers' service allows, since a page
/// load may wait through a leader election.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// What a publish did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Publish {
    /// Stored under this info hash.
    New(InfoHash),
    /// Already stored under this info hash; the earlier upload stays as it was.
    Existing(InfoHash),
}

/// A refusal or failure, with the status code and the sentence a person reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WebError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl WebError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        WebError {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn not_found(what: &str) -> Self {
        WebError::new(StatusCode::NOT_FOUND, format!("No {what} here."))
    }

    pub(crate) fn csrf() -> Self {
        WebError::new(
            StatusCode::FORBIDDEN,
            "This form is missing its security token or the token is out of date. \
             Reload the page and try again.",
        )
    }

    pub(crate) fn sign_in(what: &str) -> Self {
        WebError::new(
            StatusCode::UNAUTHORIZED,
            format!("You must sign in to {what}."),
        )
    }
}

fn unavailable(e: RequestError) -> WebError {
    WebError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "This tracker node cannot get an answer from the cluster right now ({e}). \
             Try again in a moment."
        ),
    )
}

fn refused(e: ApiError) -> WebError {
    let status = match e {
        ApiError::Unauthorized => StatusCode::FORBIDDEN,
        ApiError::UnknownTorrent(_) | ApiError::UnknownUser(_) => StatusCode::NOT_FOUND,
        ApiError::UserExists(_) => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    };
    WebError::new(status, e.to_string())
}

fn unexpected(output: Output) -> WebError {
    match output {
        Output::Error(e) => refused(e),
        other => {
            tracing::error!("unexpected state machine output {other:?}");
            WebError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error: unexpected answer",
            )
        }
    }
}

impl Site {
    /// A linearizable read, retried once: a person waits longer for a page than a peer
    /// for an answer, and a read caught in a leader change succeeds on the second try.
    pub(crate) async fn read(&self, query: Query) -> Result<Output, WebError> {
        let node = self.service().node();
        match node.read_query(query.clone(), READ_TIMEOUT).await {
            Ok(output) => Ok(output),
            Err(_) => node
                .read_query(query, READ_TIMEOUT)
                .await
                .map_err(unavailable),
        }
    }

    /// A write through this node's sessions.
    pub(crate) async fn write(&self, command: Command) -> Result<Output, WebError> {
        self.inner
            .writers
            .propose(command)
            .await
            .map_err(unavailable)
    }

    /// A write answered with `Done`.
    pub(crate) async fn write_done(&self, command: Command) -> Result<(), WebError> {
        match self.write(command).await? {
            Output::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// One page of search results.
    pub(crate) async fn search(
        &self,
        words: &str,
        page: u32,
        order: SearchOrder,
    ) -> Result<SearchPage, WebError> {
        if words.len() > MAX_SEARCH_LEN {
            return Err(WebError::new(
                StatusCode::BAD_REQUEST,
                format!("Search words may be at most {MAX_SEARCH_LEN} bytes long."),
            ));
        }
        let query = Query::Search {
            words: words.to_owned(),
            page,
            per_page: SEARCH_PAGE_LEN,
            order,
        };
        match self.read(query).await? {
            Output::Search(page) => Ok(page),
            other => Err(unexpected(other)),
        }
    }

    /// A torrent's details and its parsed file.
    pub(crate) async fn torrent(
        &self,
        info_hash: InfoHash,
    ) -> Result<(TorrentDetails, Torrent), WebError> {
        let details = match self.read(Query::Details(info_hash)).await? {
            Output::Details(Some(details)) => *details,
            Output::Details(None) => return Err(WebError::not_found("such torrent")),
            other => return Err(unexpected(other)),
        };
        let file = self.torrent_file(info_hash).await?;
        let torrent = Torrent::parse(&file).map_err(|e| {
            WebError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the stored torrent file does not parse: {e}"),
            )
        })?;
        Ok((details, torrent))
    }

    /// A torrent file, byte for byte as uploaded.
    pub(crate) async fn torrent_file(&self, info_hash: InfoHash) -> Result<Vec<u8>, WebError> {
        match self.read(Query::TorrentFile(info_hash)).await? {
            Output::TorrentFile(Some(bytes)) => Ok(bytes),
            Output::TorrentFile(None) => Err(WebError::not_found("such torrent")),
            other => Err(unexpected(other)),
        }
    }

    /// Publishes a torrent file as a signed-in user; an invalid file, or one made for
    /// another cluster, is refused before it costs a consensus round, and nothing is
    /// stored. The answer says whether the torrent was already there.
    pub(crate) async fn publish(&self, user: &str, file: Vec<u8>) -> Result<Publish, WebError> {
        if file.is_empty() {
            return Err(WebError::new(
                StatusCode::BAD_REQUEST,
                "Choose a torrent file to upload.",
            ));
        }
        if file.len() > MAX_TORRENT_FILE_LEN {
            return Err(super::upload_limit::too_large(Some(file.len() as u64)));
        }
        match admission::admit(&file, &self.inner.config.ca) {
            Ok(_) => {}
            Err(e @ NotAdmitted::Invalid(_)) => {
                return Err(WebError::new(
                    StatusCode::BAD_REQUEST,
                    format!("This is not a valid torrent file: {e}. Nothing was stored."),
                ));
            }
            Err(e @ NotAdmitted::ForeignCa { .. }) => {
                return Err(WebError::new(
                    StatusCode::BAD_REQUEST,
                    format!("This tracker does not accept this torrent: {e}. Nothing was stored."),
                ));
            }
        }
        let command = Command::Publish {
            torrent: file,
            by: Uploader::User(user.to_owned()),
            now_ms: now_ms(),
        };
        match self.write(command).await? {
            Output::Published(hash) => Ok(Publish::New(hash)),
            Output::AlreadyPublished(hash) => Ok(Publish::Existing(hash)),
            Output::Error(ApiError::Unauthorized) => Err(WebError::new(
                StatusCode::FORBIDDEN,
                "Your account is disabled; it cannot publish.",
            )),
            other => Err(unexpected(other)),
        }
    }

    /// A user's API tokens (hashes and labels).
    pub(crate) async fn tokens(&self, user: &str) -> Result<Vec<TokenRecord>, WebError> {
        match self.read(Query::Tokens(user.to_owned())).await? {
            Output::Tokens(tokens) => Ok(tokens),
            other => Err(unexpected(other)),
        }
    }

    /// Makes a new API token for `user`; the token itself is returned once and never
    /// stored.
    pub(crate) async fn create_token(
        &self,
        user: &str,
        label: &str,
    ) -> Result<(String, TokenHash), WebError> {
        let label = label.trim();
        if label.is_empty() {
            return Err(WebError::new(
                StatusCode::BAD_REQUEST,
                "Give the token a label, such as the machine it is for.",
            ));
        }
        let token = crate::admin::new_token();
        debug_assert!(token.len() >= MIN_TOKEN_LEN);
        let token_hash = TokenHash::of(&token);
        self.write_done(Command::CreateToken {
            user: user.to_owned(),
            token_hash,
            label: label.to_owned(),
            now_ms: now_ms(),
        })
        .await?;
        Ok((token, token_hash))
    }

    /// Revokes one of `user`'s tokens.
    pub(crate) async fn revoke_token(
        &self,
        user: &str,
        token_hash: TokenHash,
    ) -> Result<(), WebError> {
        self.write_done(Command::RevokeToken {
            user: user.to_owned(),
            token_hash,
        })
        .await
    }
}

/// The parameters of a search, from the search page's query string and the JSON API's
/// alike.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct SearchParams {
    /// The words searched for.
    #[serde(default)]
    pub(crate) q: String,
    /// The page of results, from 0.
    #[serde(default)]
    pub(crate) page: u32,
    /// What to sort by; see [`search_order`].
    #[serde(default)]
    sort: Option<String>,
    /// Which way; see [`search_order`].
    #[serde(default)]
    order: Option<String>,
}

impl SearchParams {
    /// The order asked for, or why it cannot be.
    pub(crate) fn order(&self) -> Result<SearchOrder, WebError> {
        search_order(self.sort.as_deref(), self.order.as_deref())
    }
}

/// The search order of the `sort` (`added`, `name`, `size`, `seeders`, `leechers`,
/// `completed`) and `order` (`asc`, `desc`) parameters. Without `order`, names sort from
/// A and everything else from the largest or latest.
fn search_order(sort: Option<&str>, order: Option<&str>) -> Result<SearchOrder, WebError> {
    let by = match sort.unwrap_or("added") {
        "added" | "date" => SortKey::Added,
        "name" => SortKey::Name,
        "size" => SortKey::Size,
        "seeders" => SortKey::Seeders,
        "leechers" | "peers" => SortKey::Leechers,
        "completed" => SortKey::Completed,
        other => {
            return Err(WebError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "Results cannot be sorted by {other:?}: sort by added, name, size, \
                     seeders, leechers or completed."
                ),
            ));
        }
    };
    let descending = match order {
        None | Some("") => by != SortKey::Name,
        Some("desc") => true,
        Some("asc") => false,
        Some(other) => {
            return Err(WebError::new(
                StatusCode::BAD_REQUEST,
                format!("The order {other:?} is neither asc nor desc."),
            ));
        }
    };
    Ok(SearchOrder { by, descending })
}

/// The `sort` and `order` parameters of a search order.
pub(crate) fn search_order_params(order: SearchOrder) -> (&'static str, &'static str) {
    let sort = match order.by {
        SortKey::Added => "added",
        SortKey::Name => "name",
        SortKey::Size => "size",
        SortKey::Seeders => "seeders",
        SortKey::Leechers => "leechers",
        SortKey::Completed => "completed",
    };
    (sort, if order.descending { "desc" } else { "asc" })
}

/// A token hash from its 64 hexadecimal digits.
pub(crate) fn parse_token_hash(text: &str) -> Option<TokenHash> {
    blake3::Hash::from_hex(text.trim())
        .ok()
        .map(|h| TokenHash(*h.as_bytes()))
}

/// A token hash as 64 hexadecimal digits.
pub(crate) fn token_hash_hex(hash: &TokenHash) -> String {
    blake3::Hash::from_bytes(hash.0).to_hex().to_string()
}
