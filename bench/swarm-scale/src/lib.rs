//! A swarm simulator for measuring the swarm at scale: up to tens of thousands of peers,
//! each running the real swarm core ([`peer::swarm::Swarm`]), against the tracker crate's
//! real state machine, over modelled uplinks, downlinks and latencies.
//!
//! Results are judged against the fluid lower bound T* (Kumar and Ross, 2006; see
//! [`scenario::fluid_bound`]): completion time ÷ T* at p50, p99 and max, and the share of
//! the swarm's uplink capacity in use over the middle 80 % of the transfer.
//!
//! * [`scenario`]: the swarms to simulate (flash crowd, Poisson arrivals with churn,
//!   misbehaving peers).
//! * [`sim`]: the event engine and network model.
//! * [`queue`]: its event queue.
//! * [`tracker_side`]: the tracker state machine as the peers use it.
//! * [`report`]: figures, table rows and the CDF plot.

pub mod queue;
pub mod report;
pub mod scenario;
pub mod sim;
pub mod tracker_side;

/// Runs `scenario` to the end.
pub fn run(scenario: &scenario::Scenario) -> sim::Outcome {
    sim::Sim::new(scenario.clone()).run()
}

/// Runs `scenario` to the end, printing a line of progress to standard error about every
/// `every` of wall time (long runs take many minutes).
pub fn run_with_progress(
    scenario: &scenario::Scenario,
    every: std::time::Duration,
) -> sim::Outcome {
    sim::Sim::new(scenario.clone()).progress_every(every).run()
}
