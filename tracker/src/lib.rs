//! Placeholder: the tracker is built in its own issue.
