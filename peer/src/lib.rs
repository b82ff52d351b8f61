//! Placeholder: the peer is built in its own issue.
