//! The frame of every page: header with the search box and the account links, the
//! content, and a footer naming the node. `maud` escapes every interpolated string.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::auth::Visitor;

/// A whole page.
pub(crate) struct Page<'a> {
    pub(crate) title: &'a str,
    pub(crate) visitor: &'a Visitor,
    pub(crate) node: u64,
    /// The search box's text.
    pub(crate) query: &'a str,
    /// Which page this is, for `data-page` (the script picks its work by it).
    pub(crate) kind: &'a str,
    pub(crate) body: Markup,
}

impl Page<'_> {
    /// The page with a status code.
    pub(crate) fn render(self, status: StatusCode) -> Response {
        let Page {
            title,
            visitor,
            node,
            query,
            kind,
            body,
        } = self;
        let markup = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · ByteTorrent" }
                    link rel="icon" type="image/svg+xml" href="/static/favicon.svg";
                    link rel="stylesheet" href="/static/app.css";
                    script src="/static/app.js" defer {}
                }
                body data-page=(kind) data-csrf=(visitor.csrf_token()) {
                    header.top {
                        a.brand href="/" { "ByteTorrent" }
                        form.search action="/" method="get" role="search" {
                            input type="search" name="q" value=(query)
                                placeholder="Search torrents by name" aria-label="Search";
                            button type="submit" { "Search" }
                        }
                        nav {
                            a href="/cluster" { "Cluster" }
                            @if let Some(name) = visitor.name() {
                                a href="/upload" { "Upload" }
                                a href="/tokens" { "API tokens" }
                                @if visitor.is_admin() {
                                    a href="/admin/users" { "Users" }
                                }
                                span.user { (name) }
                                form.inline action="/signout" method="post" {
                                    input type="hidden" name="csrf" value=(visitor.csrf_token());
                                    button.link type="submit" { "Sign out" }
                                }
                            } @else {
                                a href="/signin" { "Sign in" }
                                a href="/signup" { "Sign up" }
                            }
                        }
                    }
                    main {
                        @if let Some(e) = &visitor.lookup_error {
                            p.notice.error { "Your sign-in could not be checked: " (e) }
                        }
                        (body)
                    }
                    footer { "Served by tracker node " (node) }
                }
            }
        };
        (status, Html(markup.into_string())).into_response()
    }
}

/// A paragraph with a message, `class` `error` or `ok`.
pub(crate) fn notice(class: &str, text: &str) -> Markup {
    html! { p class={ "notice " (class) } { (text) } }
}
