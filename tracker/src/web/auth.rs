//! Who is asking: the browser cookie, the session, CSRF tokens, password checks and the
//! sign-in rate limit.
//!
//! * `bt_browser`: a random id every browser gets on its first request (`HttpOnly`,
//!   `SameSite=Lax`). It is the key of the browser's CSRF tokens, so forms work before
//!   signing in (sign-in and sign-up are protected too).
//! * `bt_session`: a random session id, set on sign-in (`HttpOnly`, `SameSite=Lax`). The
//!   replicated state stores only its BLAKE3 hash, with the user and an expiry, so every
//!   node recognises it.
//! * The CSRF token of a page is `BLAKE3-keyed(derive_key(browser id), session id)` in hex:
//!   another site can neither read it nor compute it, it changes when the session does,
//!   and any node can check it without a shared secret. Forms carry it in a hidden field
//!   `csrf`, JSON writes in the header `X-CSRF-Token`.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::service::now_ms;
use crate::state::{Output, Query, Role, TokenHash, UserRecord};

use super::Site;

/// The browser cookie's name.
pub(crate) const BROWSER_COOKIE: &str = "bt_browser";
/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "bt_session";
/// The header carrying the CSRF token of a JSON write.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// How many failed sign-ins are allowed in a window, per user name and per client address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Failures allowed per user name in the window. 5: enough for typos, far too few for
    /// guessing a password.
    pub per_user: u32,
    /// Failures allowed per client address in the window. 20: several people behind one
    /// address (an office, a NAT) may each mistype, but one address cannot try many
    /// names.
    pub per_address: u32,
    /// The window. 60 s: a person who mistyped waits a minute at most.
    pub window: Duration,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_user: 5,
            per_address: 20,
            window: Duration::from_secs(60),
        }
    }
}

/// Recent failed sign-ins per key (`ip:...`, `user:...`), on this node. (Each node counts
/// its own: behind a load balancer spreading requests over `n` nodes, a guesser gets at
/// most `n` times the limit, still a handful a minute.)
pub(crate) struct Limiter {
    limit: RateLimit,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// Keys tracked at most; beyond, keys with no recent failure are dropped first.
const MAX_KEYS: usize = 100_000;

impl Limiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Limiter {
            limit,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn allowed(&self, key: &str) -> u32 {
        if key.starts_with("ip:") {
            self.limit.per_address
        } else {
            self.limit.per_user
        }
    }

    /// `Err(wait)` if any of `keys` has used up its failures.
    pub(crate) fn check(&self, keys: &[String]) -> Result<(), Duration> {
        let now = Instant::now();
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = None;
        for key in keys {
            if let Some(times) = map.get(key) {
                let recent: Vec<&Instant> = times
                    .iter()
                    .filter(|t| now.duration_since(**t) < self.limit.window)
                    .collect();
                if recent.len() >= self.allowed(key) as usize
                    && let Some(oldest) = recent.first()
                {
                    let left = self
                        .limit
                        .window
                        .saturating_sub(now.duration_since(**oldest));
                    wait = Some(wait.map_or(left, |w: Duration| w.max(left)));
                }
            }
        }
        wait.map_or(Ok(()), Err)
    }

    /// Records a failed sign-in under each of `keys`.
    pub(crate) fn fail(&self, keys: &[String]) {
        let now = Instant::now();
        let window = self.limit.window;
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_KEYS {
            map.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < window)
            });
        }
        for key in keys {
            let times = map.entry(key.clone()).or_default();
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) >= window)
            {
                times.pop_front();
            }
            times.push_back(now);
            while times.len() > self.allowed(key) as usize + 1 {
                times.pop_front();
            }
        }
    }
}

/// The rate-limit keys of a sign-in attempt.
pub(crate) fn limit_keys(ip: Option<IpAddr>, name: &str) -> Vec<String> {
    let mut keys = vec![format!("user:{}", name.to_ascii_lowercase())];
    if let Some(ip) = ip {
        keys.push(format!("ip:{ip}"));
    }
    keys
}

/// The browser id of a request, put in its extensions by [`ensure_browser_cookie`].
#[derive(Clone, Debug)]
pub(crate) struct BrowserId(pub(crate) String);

/// A cookie's value from the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether a cookie value looks like one of ours (random ids are 52 characters of
/// lowercase base32); anything else is ignored and replaced.
fn well_formed(value: &str) -> bool {
    value.len() == 52
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// A new random id for a cookie: 256 bits.
pub(crate) fn new_secret() -> String {
    crate::admin::new_token()
}

/// A `Set-Cookie` value.
pub(crate) fn set_cookie(name: &str, value: &str, max_age: Duration) -> HeaderValue {
    let text = format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}",
        max_age.as_secs()
    );
    // Names and values are ours: ASCII letters and digits.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A `Set-Cookie` value that deletes a cookie.
pub(crate) fn clear_cookie(name: &str) -> HeaderValue {
    set_cookie(name, "", Duration::ZERO)
}

/// Gives a browser without a (well-formed) browser cookie a new one, and makes the id
/// available to the handlers.
pub(crate) async fn ensure_browser_cookie(mut request: Request, next: Next) -> Response {
    let existing = cookie(request.headers(), BROWSER_COOKIE)
        .filter(|v| well_formed(v))
        .map(str::to_owned);
    let (id, fresh) = match existing {
        Some(id) => (id, false),
        None => (new_secret(), true),
    };
    request.extensions_mut().insert(BrowserId(id.clone()));
    let mut response = next.run(request).await;
    if fresh {
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(BROWSER_COOKIE, &id, Duration::from_secs(400 * 24 * 3600)),
        );
    }
    response
}

/// The CSRF token of the browser `browser` with session `session`, as a hash.
pub(crate) fn csrf_hash(browser: &str, session: Option<&str>) -> blake3::Hash {
    let key = blake3::derive_key("bytetorrent web csrf v1", browser.as_bytes());
    blake3::keyed_hash(&key, session.unwrap_or("").as_bytes())
}

/// Who is asking, as far as the cookies say.
#[derive(Clone, Debug)]
pub(crate) struct Visitor {
    browser: String,
    /// The session id from the cookie, if any (valid or not).
    session: Option<String>,
    /// The signed-in user, if the session is live and the user enabled.
    pub(crate) user: Option<UserRecord>,
    /// Why the session could not be checked (this node cannot reach the cluster).
    pub(crate) lookup_error: Option<String>,
    /// The client's address.
    pub(crate) ip: Option<IpAddr>,
}

impl Visitor {
    /// The signed-in user's name.
    pub(crate) fn name(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.name.as_str())
    }

    /// Whether the signed-in user is an administrator.
    pub(crate) fn is_admin(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.role == Role::Admin)
    }

    /// The session id, for signing out.
    pub(crate) fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    fn csrf_hash(&self) -> blake3::Hash {
        csrf_hash(&self.browser, self.session.as_deref())
    }

    /// The CSRF token this visitor's forms carry.
    pub(crate) fn csrf_token(&self) -> String {
        self.csrf_hash().to_hex().to_string()
    }

    /// Whether `given` is this visitor's CSRF token (compared in constant time).
    pub(crate) fn csrf_ok(&self, given: Option<&str>) -> bool {
        given
            .and_then(|g| blake3::Hash::from_hex(g.trim()).ok())
            .is_some_and(|g| g == self.csrf_hash())
    }

    /// The signed-in user allowed to write with the CSRF token `given`: a missing or
    /// wrong token, or nobody signed in, is the error to show (`what` completes "You
    /// must sign in to ...").
    pub(crate) fn writer(
        &self,
        given: Option<&str>,
        what: &str,
    ) -> Result<&str, super::actions::WebError> {
        if !self.csrf_ok(given) {
            return Err(super::actions::WebError::csrf());
        }
        self.name()
            .ok_or_else(|| super::actions::WebError::sign_in(what))
    }
}

impl FromRequestParts<Site> for Visitor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, site: &Site) -> Result<Self, Self::Rejection> {
        let browser = match parts.extensions.get::<BrowserId>() {
            Some(BrowserId(id)) => id.clone(),
            None => String::new(),
        };
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let session = cookie(&parts.headers, SESSION_COOKIE)
            .filter(|v| well_formed(v))
            .map(str::to_owned);
        let mut visitor = Visitor {
            browser,
            session,
            user: None,
            lookup_error: None,
            ip,
        };
        if let Some(id) = &visitor.session {
            let query = Query::Session {
                session_hash: TokenHash::of(id),
                now_ms: now_ms(),
            };
            // Under the leader's lease, so a sign-out or a disabled user takes effect at
            // once on every node; if the cluster does not answer, this replica's own state
            // (possibly a moment behind) still lets people read pages signed in.
            let answer = match site.read(query.clone()).await {
                Ok(answer) => Ok(answer),
                Err(e) => match site.service().node().read_local(query).await {
                    Ok(answer) => Ok(answer),
                    Err(_) => Err(e.message),
                },
            };
            match answer {
                Ok(Output::Session(user)) => visitor.user = user,
                Ok(other) => visitor.lookup_error = Some(format!("unexpected answer {other:?}")),
                Err(e) => visitor.lookup_error = Some(e),
            }
        }
        Ok(visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_refuses_after_the_allowed_failures_per_key() {
        let limiter = Limiter::new(RateLimit {
            per_user: 2,
            per_address: 3,
            window: Duration::from_secs(60),
        });
        let keys = limit_keys(Some([10, 0, 0, 1].into()), "Bob");
        assert!(limiter.check(&keys).is_ok());
        limiter.fail(&keys);
        limiter.fail(&keys);
        assert!(limiter.check(&keys).is_err());
        // The same user from another address is limited too; another user from the same
        // address is not, until the address has used up its own allowance.
        let elsewhere = limit_keys(Some([10, 0, 0, 2].into()), "bob");
        assert!(limiter.check(&elsewhere).is_err());
        let carol = limit_keys(Some([10, 0, 0, 1].into()), "carol");
        assert!(limiter.check(&carol).is_ok());
        limiter.fail(&carol);
        assert!(limiter.check(&carol).is_err());
    }

    #[test]
    fn csrf_tokens_depend_on_browser_and_session() {
        let visitor = |browser: &str, session: Option<&str>| Visitor {
            browser: browser.into(),
            session: session.map(str::to_owned),
            user: None,
            lookup_error: None,
            ip: None,
        };
        let a = visitor("a", None);
        assert!(a.csrf_ok(Some(&a.csrf_token())));
        assert!(!a.csrf_ok(None));
        assert!(!a.csrf_ok(Some("")));
        assert!(!a.csrf_ok(Some(&visitor("b", None).csrf_token())));
        assert!(!a.csrf_ok(Some(&visitor("a", Some("s")).csrf_token())));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("x=1; bt_session=abc; y=2"),
        );
        assert_eq!(cookie(&headers, "bt_session"), Some("abc"));
        assert_eq!(cookie(&headers, "bt_browser"), None);
    }
}
