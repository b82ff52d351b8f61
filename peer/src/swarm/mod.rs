//! The swarm core (sans-IO): see the module docs once written.
