//! The account pages: sign up, sign in and out, API tokens, and user administration.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::password;
use crate::service::now_ms;
use crate::state::{Command, Output, Query, Role, TokenHash};

use super::Site;
use super::actions::{WebError, parse_token_hash, token_hash_hex};
use super::auth::{self, SESSION_COOKIE, Visitor};
use super::format;
use super::layout::notice;
use super::pages::{CsrfForm, hidden_csrf};

/// The sign-up and sign-in forms' fields.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct AccountForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

fn account_body(visitor: &Visitor, sign_up: bool, name: &str, error: Option<&str>) -> Markup {
    let (title, action, button) = if sign_up {
        ("Sign up", "/signup", "Create account")
    } else {
        ("Sign in", "/signin", "Sign in")
    };
    html! {
        h1 { (title) }
        @if let Some(e) = error { (notice("error", e)) }
        form.account #account-form action=(action) method="post" {
            (hidden_csrf(visitor))
            label { "User name" input #name type="text" name="name" value=(name) required autocomplete="username"; }
            label { "Password" input #password type="password" name="password" required
                autocomplete=(if sign_up { "new-password" } else { "current-password" }); }
            @if sign_up {
                label { "Password again" input #confirm type="password" name="confirm" required autocomplete="new-password"; }
                p.muted { "1 to 64 letters, digits, ‘_’, ‘.’ or ‘-’; a password of at least " (password::MIN_LEN) " characters." }
            }
            button type="submit" { (button) }
        }
        @if sign_up {
            p { "Have an account? " a href="/signin" { "Sign in" } }
        } @else {
            p { "New here? " a href="/signup" { "Sign up" } }
        }
    }
}

/// `GET /signup`.
pub(crate) async fn sign_up_form(State(site): State<Site>, visitor: Visitor) -> Response {
    site.page(
        &visitor,
        "Sign up",
        "signup",
        account_body(&visitor, true, "", None),
    )
    .render(StatusCode::OK)
}

/// `GET /signin`.
pub(crate) async fn sign_in_form(State(site): State<Site>, visitor: Visitor) -> Response {
    site.page(
        &visitor,
        "Sign in",
        "signin",
        account_body(&visitor, false, "", None),
    )
    .render(StatusCode::OK)
}

/// `POST /signup`: creates the account and signs in.
pub(crate) async fn sign_up(
    State(site): State<Site>,
    visitor: Visitor,
    Form(form): Form<AccountForm>,
) -> Response {
    let result = async {
        if !visitor.csrf_ok(form.csrf.as_deref()) {
            return Err(WebError::csrf());
        }
        crate::state::validate_user_name(&form.name)
            .map_err(|e| WebError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
        if let Some(why) = password::refuse(&form.password) {
            return Err(WebError::new(StatusCode::BAD_REQUEST, sentence(why)));
        }
        if form.password != form.confirm {
            return Err(WebError::new(
                StatusCode::BAD_REQUEST,
                "The two passwords differ.",
            ));
        }
        let password_hash = password::hash(form.password.clone())
            .await
            .map_err(|e| WebError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
        site.write_done(Command::AddUser {
            name: form.name.clone(),
            password_hash,
            role: Role::User,
            now_ms: now_ms(),
        })
        .await
        .map_err(|e| {
            if e.status == StatusCode::CONFLICT {
                WebError::new(
                    StatusCode::CONFLICT,
                    "That user name is taken; choose another.",
                )
            } else {
                e
            }
        })?;
        site.start_session(&form.name).await
    }
    .await;
    account_outcome(&site, &visitor, true, &form.name, result)
}

/// `POST /signin`: checks the password (rate-limited) and starts a session.
pub(crate) async fn sign_in(
    State(site): State<Site>,
    visitor: Visitor,
    Form(form): Form<AccountForm>,
) -> Response {
    let result = async {
        if !visitor.csrf_ok(form.csrf.as_deref()) {
            return Err(WebError::csrf());
        }
        let keys = auth::limit_keys(visitor.ip, &form.name);
        if let Err(wait) = site.inner.limiter.check(&keys) {
            return Err(WebError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too many failed sign-ins. Wait {} seconds and try again.",
                    wait.as_secs().max(1)
                ),
            ));
        }
        let wrong = || WebError::new(StatusCode::UNAUTHORIZED, "Wrong user name or password.");
        let user = match site.read(Query::User(form.name.clone())).await? {
            Output::User(user) => user,
            _ => None,
        };
        let ok = match &user {
            Some(user) => password::verify(form.password.clone(), user.password_hash.clone()).await,
            None => false,
        };
        let Some(user) = user.filter(|_| ok) else {
            site.inner.limiter.fail(&keys);
            return Err(wrong());
        };
        if user.disabled {
            return Err(WebError::new(
                StatusCode::FORBIDDEN,
                "This account is disabled. Ask an administrator.",
            ));
        }
        site.start_session(&user.name).await
    }
    .await;
    account_outcome(&site, &visitor, false, &form.name, result)
}

/// The answer to a sign-up (`signup`) or sign-in form: the session cookie and a redirect,
/// or the form again with the error and the name typed so far.
fn account_outcome(
    site: &Site,
    visitor: &Visitor,
    signup: bool,
    name: &str,
    result: Result<HeaderValue, WebError>,
) -> Response {
    let (title, page) = if signup {
        ("Sign up", "signup")
    } else {
        ("Sign in", "signin")
    };
    match result {
        Ok(cookie) => signed_in(cookie),
        Err(e) => site
            .page(
                visitor,
                title,
                page,
                account_body(visitor, signup, name, Some(&e.message)),
            )
            .render(e.status),
    }
}

impl Site {
    /// Stores a new session for `user` and returns its cookie.
    async fn start_session(&self, user: &str) -> Result<HeaderValue, WebError> {
        let id = auth::new_secret();
        let ttl = self.inner.config.session_ttl;
        let now = now_ms();
        self.write_done(Command::CreateSession {
            session_hash: TokenHash::of(&id),
            user: user.to_owned(),
            expires_ms: now.saturating_add(ttl.as_millis() as u64),
            now_ms: now,
        })
        .await?;
        Ok(auth::set_cookie(SESSION_COOKIE, &id, ttl))
    }
}

fn signed_in(cookie: HeaderValue) -> Response {
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

/// `POST /signout`.
pub(crate) async fn sign_out(
    State(site): State<Site>,
    visitor: Visitor,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !visitor.csrf_ok(form.csrf.as_deref()) {
        return site.error_page(&visitor, &WebError::csrf());
    }
    if let Some(id) = visitor.session()
        && let Err(e) = site
            .write_done(Command::EndSession {
                session_hash: TokenHash::of(id),
            })
            .await
    {
        return site.error_page(&visitor, &e);
    }
    (
        [(header::SET_COOKIE, auth::clear_cookie(SESSION_COOKIE))],
        Redirect::to("/"),
    )
        .into_response()
}

/// What the tokens page shows besides the list.
#[derive(Default)]
struct TokensMessage {
    new_token: Option<(String, String)>,
    error: Option<WebError>,
}

async fn tokens_page(site: &Site, visitor: &Visitor, message: TokensMessage) -> Response {
    let Some(user) = visitor.name() else {
        return site.error_page(visitor, &WebError::sign_in("manage API tokens"));
    };
    let tokens = site.tokens(user).await;
    let status = message
        .error
        .as_ref()
        .map(|e| e.status)
        .or(tokens.as_ref().err().map(|e| e.status))
        .unwrap_or(StatusCode::OK);
    let body = html! {
        h1 { "API tokens" }
        p.muted { "A peer publishes torrents with one of your tokens (" code { "bt publish --token …" } "). Revoke a token when a machine no longer needs it." }
        @if let Some(e) = &message.error { (notice("error", &e.message)) }
        @if let Some((label, token)) = &message.new_token {
            div.new-token {
                p { "Your new token " strong { "“" (label) "”" } " — copy it now, it is shown only this once:" }
                p { code #new-token { (token) } }
            }
        }
        form #token-form action="/tokens" method="post" {
            (hidden_csrf(visitor))
            label { "Label " input #token-label type="text" name="label" required maxlength="256" placeholder="build server"; }
            button type="submit" { "Create token" }
        }
        @match &tokens {
            Err(e) => (notice("error", &e.message)),
            Ok(list) if list.is_empty() => p.muted #no-tokens { "You have no tokens." },
            Ok(list) => table.tokens #tokens {
                thead { tr { th { "Label" } th { "Created" } th { "Fingerprint" } th {} } }
                tbody {
                    @for t in list {
                        @let hex = token_hash_hex(&t.token_hash);
                        tr {
                            td { (t.label) }
                            td { (format::time(t.created_ms)) }
                            td { code { (hex[..12]) "…" } }
                            td {
                                form.inline action="/tokens/revoke" method="post" {
                                    (hidden_csrf(visitor))
                                    input type="hidden" name="token_hash" value=(hex);
                                    button.danger type="submit" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            },
        }
    };
    site.page(visitor, "API tokens", "tokens", body)
        .render(status)
}

/// `GET /tokens`.
pub(crate) async fn tokens(State(site): State<Site>, visitor: Visitor) -> Response {
    tokens_page(&site, &visitor, TokensMessage::default()).await
}

/// The token form's fields.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TokenForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    label: String,
    #[serde(default)]
    token_hash: String,
}

/// `POST /tokens`: creates a token and shows it once.
pub(crate) async fn create_token(
    State(site): State<Site>,
    visitor: Visitor,
    Form(form): Form<TokenForm>,
) -> Response {
    let result = async {
        let user = visitor.writer(form.csrf.as_deref(), "manage API tokens")?;
        site.create_token(user, &form.label).await
    }
    .await;
    let message = match result {
        Ok((token, _)) => TokensMessage {
            new_token: Some((form.label.trim().to_owned(), token)),
            error: None,
        },
        Err(e) => TokensMessage {
            new_token: None,
            error: Some(e),
        },
    };
    let mut response = tokens_page(&site, &visitor, message).await;
    // The page shows a secret: keep it out of caches and history.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `POST /tokens/revoke`.
pub(crate) async fn revoke_token(
    State(site): State<Site>,
    visitor: Visitor,
    Form(form): Form<TokenForm>,
) -> Response {
    let result = async {
        let user = visitor.writer(form.csrf.as_deref(), "manage API tokens")?;
        let hash = parse_token_hash(&form.token_hash)
            .ok_or_else(|| WebError::new(StatusCode::BAD_REQUEST, "No such token."))?;
        site.revoke_token(user, hash).await
    }
    .await;
    match result {
        Ok(()) => Redirect::to("/tokens").into_response(),
        Err(e) => {
            tokens_page(
                &site,
                &visitor,
                TokensMessage {
                    new_token: None,
                    error: Some(e),
                },
            )
            .await
        }
    }
}

/// `GET /admin/users`: every user, with a button to disable or enable each.
pub(crate) async fn users(State(site): State<Site>, visitor: Visitor) -> Response {
    if !visitor.is_admin() {
        return site.error_page(
            &visitor,
            &WebError::new(StatusCode::FORBIDDEN, "Only administrators manage users."),
        );
    }
    let users = match site.read(Query::Users).await {
        Ok(Output::Users(users)) => users,
        Ok(_) => Vec::new(),
        Err(e) => return site.error_page(&visitor, &e),
    };
    let body = html! {
        h1 { "Users" }
        p.muted { "A disabled user cannot sign in, publish, or use any of its API tokens until enabled again." }
        table.users #users {
            thead { tr { th { "Name" } th { "Role" } th { "Created" } th { "State" } th {} } }
            tbody {
                @for u in &users {
                    tr data-user=(u.name) {
                        td { (u.name) }
                        td { @if u.role == Role::Admin { "administrator" } @else { "user" } }
                        td { (format::time(u.created_ms)) }
                        td.state { @if u.disabled { "disabled" } @else { "enabled" } }
                        td {
                            @if Some(u.name.as_str()) != visitor.name() {
                                form.inline action="/admin/users/disabled" method="post" {
                                    (hidden_csrf(&visitor))
                                    input type="hidden" name="name" value=(u.name);
                                    input type="hidden" name="disabled" value=(if u.disabled { "false" } else { "true" });
                                    button.danger[!u.disabled] type="submit" {
                                        @if u.disabled { "Enable" } @else { "Disable" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    site.page(&visitor, "Users", "users", body)
        .render(StatusCode::OK)
}

/// The disable form's fields.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct DisableForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    disabled: String,
}

/// `POST /admin/users/disabled`.
pub(crate) async fn set_user_disabled(
    State(site): State<Site>,
    visitor: Visitor,
    Form(form): Form<DisableForm>,
) -> Response {
    if !visitor.csrf_ok(form.csrf.as_deref()) {
        return site.error_page(&visitor, &WebError::csrf());
    }
    if !visitor.is_admin() {
        return site.error_page(
            &visitor,
            &WebError::new(StatusCode::FORBIDDEN, "Only administrators manage users."),
        );
    }
    let command = Command::SetUserDisabled {
        name: form.name.clone(),
        disabled: form.disabled == "true",
    };
    match site.write_done(command).await {
        Ok(()) => Redirect::to("/admin/users").into_response(),
        Err(e) => site.error_page(&visitor, &e),
    }
}

/// `why` as a sentence on a page: capitalised, with a full stop.
fn sentence(why: String) -> String {
    let mut chars = why.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => why,
    }
}
