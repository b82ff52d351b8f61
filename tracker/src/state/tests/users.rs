//! Users and tokens.

use super::*;
use crate::state::{Stats, TokenRecord, UserRecord};

#[test]
fn add_user_refuses_taken_and_malformed_names() {
    let mut h = Harness::new();
    let add = |name: &str| Command::AddUser {
        name: name.into(),
        password_hash: "$argon2id$x".into(),
        role: Role::User,
        now_ms: 5,
    };
    assert_eq!(h.err(add("bob")), ApiError::UserExists("bob".into()));
    for bad in ["", "has space", "slash/", "é", &"x".repeat(65)] {
        assert!(
            matches!(h.err(add(bad)), ApiError::BadRequest(_)),
            "{bad:?}"
        );
    }
    h.ok(add("Carol_1.-x"));
    h.ok(add(&"y".repeat(64)));
    match h.query(Query::User("Carol_1.-x".into())) {
        Output::User(Some(UserRecord {
            role: Role::User,
            disabled: false,
            created_ms: 5,
            ..
        })) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(h.query(Query::User("nobody".into())), Output::User(None));
}

#[test]
fn token_owner_needs_an_existing_token_and_an_enabled_user() {
    let mut h = Harness::new();
    assert_eq!(
        h.query(Query::TokenOwner(bob_token())),
        Output::TokenOwner(Some("bob".into()))
    );
    assert_eq!(
        h.query(Query::TokenOwner(TokenHash::of("x"))),
        Output::TokenOwner(None)
    );
    h.ok(Command::SetUserDisabled {
        name: "bob".into(),
        disabled: true,
    });
    assert_eq!(
        h.query(Query::TokenOwner(bob_token())),
        Output::TokenOwner(None)
    );
    h.ok(Command::SetUserDisabled {
        name: "bob".into(),
        disabled: false,
    });
    h.ok(Command::RevokeToken {
        user: "bob".into(),
        token_hash: bob_token(),
    });
    assert_eq!(
        h.query(Query::TokenOwner(bob_token())),
        Output::TokenOwner(None)
    );
}

#[test]
fn tokens_belong_to_existing_users_and_are_listed_oldest_first() {
    let mut h = Harness::new();
    let create = |user: &str, token: &str, now_ms| Command::CreateToken {
        user: user.into(),
        token_hash: TokenHash::of(token),
        label: format!("{token} label"),
        now_ms,
    };
    assert_eq!(
        h.err(create("nobody", "t1", 9)),
        ApiError::UnknownUser("nobody".into())
    );
    h.ok(create("bob", "t2", 9));
    h.ok(create("bob", "t2", 9)); // the same again: no change
    assert!(matches!(
        h.err(create("alice", "t2", 9)),
        ApiError::BadRequest(_)
    ));
    match h.query(Query::Tokens("bob".into())) {
        Output::Tokens(tokens) => {
            let labels: Vec<&str> = tokens
                .iter()
                .map(|t: &TokenRecord| t.label.as_str())
                .collect();
            assert_eq!(labels, vec!["laptop", "t2 label"]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        h.query(Query::Tokens("alice".into())),
        Output::Tokens(vec![])
    );
    assert!(matches!(
        h.err(Command::RevokeToken {
            user: "alice".into(),
            token_hash: TokenHash::of("t2"),
        }),
        ApiError::BadRequest(_)
    ));
    assert_eq!(
        h.err(Command::SetUserDisabled {
            name: "nobody".into(),
            disabled: true
        }),
        ApiError::UnknownUser("nobody".into())
    );
}

#[test]
fn users_are_listed_by_name_and_counted() {
    let h = Harness::new();
    match h.query(Query::Users) {
        Output::Users(users) => {
            let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
            assert_eq!(names, vec!["alice", "bob"]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        h.query(Query::Stats),
        Output::Stats(Stats {
            users: 2,
            ..Stats::default()
        })
    );
}
