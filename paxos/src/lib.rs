//! A generic Multi-Paxos library (being built).
