//! Short runs of the swarm simulator (300 leechers; the 1 GiB file in 1 MiB pieces
//! for the flash crowds, 256 MiB for the rest): the swarm core and
//! the tracker's neighbour choice must come within a loose bound of the fluid optimum,
//! and every behaviour the full benchmark relies on must hold: every honest leecher ends
//! with every piece (on disk and in its core), nobody honest is banned, the corrupt peer
//! is banned, the liar's pieces are asked for and refused, leechers that leave do not
//! stop the rest, and a seed replays exactly.

use swarm_scale::report::figures;
use swarm_scale::scenario::Scenario;

const LEECHERS: usize = 300;
/// The flash crowds' file: 1 GiB. Smaller files make the start, when only the seeder has
/// pieces, weigh more against T* (256 MiB: max 1.66 T* where 1 GiB gives 1.24).
const FLASH_PIECES: u32 = 1024;
/// The other scenarios check behaviour, not speed: 256 MiB is enough.
const PIECES: u32 = 256;

/// One flash crowd: within 1.6 T*, every leecher complete, nobody honest banned.
fn flash_crowd(seed: u64) {
    let scenario = Scenario::flash_crowd(LEECHERS, FLASH_PIECES, seed);
    let outcome = swarm_scale::run(&scenario);
    assert!(
        outcome.errors.is_empty(),
        "seed {seed}: {:?}",
        outcome.errors
    );
    let fig = figures(&scenario, &outcome);
    assert_eq!(fig.incomplete, 0, "seed {seed}: {fig:?}");
    let [p50, _, max] = fig.over_t_star;
    println!(
        "seed {seed}: T* {:.1} s, p50 {p50:.3}, max {max:.3} T*, uplink use {:.1} %",
        fig.t_star,
        fig.uplink_use * 100.0
    );
    assert!(max <= 1.6, "seed {seed}: the last leecher took {max:.3} T*");
    assert_eq!(outcome.honest_banned, 0);
}

// Three seeds, one test each so that they run side by side.
#[test]
fn flash_crowd_seed_1_finishes_within_1_6_t_star_with_every_piece() {
    flash_crowd(1);
}

#[test]
fn flash_crowd_seed_2_finishes_within_1_6_t_star_with_every_piece() {
    flash_crowd(2);
}

#[test]
fn flash_crowd_seed_3_finishes_within_1_6_t_star_with_every_piece() {
    flash_crowd(3);
}

#[test]
fn a_corrupt_peer_is_banned_and_a_liar_is_worked_around() {
    let scenario = Scenario::adversarial(LEECHERS, PIECES, 7);
    let outcome = swarm_scale::run(&scenario);
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    let fig = figures(&scenario, &outcome);
    assert_eq!(fig.incomplete, 0, "{fig:?}");
    assert!(outcome.corrupt_bans > 0, "nobody met the corrupt peer");
    assert!(outcome.not_haves > 0, "nobody asked the liar");
    assert_eq!(outcome.honest_banned, 0);
}

#[test]
fn leechers_leaving_and_the_seeder_leaving_do_not_stop_the_rest() {
    let scenario = Scenario::arrivals_with_churn(LEECHERS, PIECES, 11);
    let outcome = swarm_scale::run(&scenario);
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    let fig = figures(&scenario, &outcome);
    assert!(outcome.departed > 0, "nobody left");
    assert!(fig.seeder_copies < 2.5, "the seeder stayed: {fig:?}");
    // The seeder sent every piece before it left, and no departure took a last copy.
    let (fewest, most) = outcome.seeder_spread.expect("the seeder left");
    assert!(
        fewest >= 1,
        "the seeder left having sent pieces {fewest} to {most} times"
    );
    assert!(outcome.lost_pieces.is_empty(), "{:?}", outcome.lost_pieces);
    assert_eq!(fig.incomplete, 0, "{fig:?}");
}

#[test]
fn a_seed_replays_exactly() {
    let scenario = Scenario::flash_crowd(60, 64, 5);
    let a = swarm_scale::run(&scenario);
    let b = swarm_scale::run(&scenario);
    assert_eq!(a.leechers, b.leechers);
    assert_eq!(a.events, b.events);
}
