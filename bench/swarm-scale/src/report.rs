//! Turning a run's [`Outcome`] into the figures the swarm is judged by, a table row and a
//! plot.

use crate::scenario::{Arrivals, Scenario, fluid_bound};
use crate::sim::{BIN, Outcome};

/// The figures of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    /// Scenario name.
    pub scenario: String,
    /// Leechers (honest, not leaving).
    pub leechers: usize,
    /// The fluid lower bound, seconds (flash crowds; for spread arrivals, the same formula
    /// over every leecher, a bound only on the first ones).
    pub t_star: f64,
    /// Completion time (from each leecher's start), seconds: p50, p99, max.
    pub secs: [f64; 3],
    /// The same divided by `t_star`.
    pub over_t_star: [f64; 3],
    /// Each leecher's time divided by F / its downlink: p50, p99, max.
    pub over_own_bound: [f64; 3],
    /// Bytes uploaded over uplink capacity present, in the middle 80 % of the transfer.
    pub uplink_use: f64,
    /// Bytes the first seeder uploaded, in copies of the file.
    pub seeder_copies: f64,
    /// Leechers that never completed.
    pub incomplete: usize,
    /// Every completion time ÷ T*, sorted (for the CDF).
    pub sorted_ratios: Vec<f64>,
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn triple(sorted: &[f64]) -> [f64; 3] {
    [
        quantile(sorted, 0.5),
        quantile(sorted, 0.99),
        sorted.last().copied().unwrap_or(f64::NAN),
    ]
}

/// The figures of `outcome`, a run of `scenario`.
pub fn figures(scenario: &Scenario, outcome: &Outcome) -> Figures {
    let f = scenario.file_len() as f64;
    let ups: Vec<f64> = outcome.leechers.iter().map(|l| l.0).collect();
    let downs: Vec<f64> = outcome.leechers.iter().map(|l| l.1).collect();
    let t_star = fluid_bound(scenario.file_len(), scenario.seeder_up, &ups, &downs);
    let mut secs: Vec<f64> = outcome.leechers.iter().filter_map(|l| l.2).collect();
    secs.sort_by(f64::total_cmp);
    let mut own: Vec<f64> = outcome
        .leechers
        .iter()
        .filter_map(|&(_, down, took)| took.map(|t| t / (f / down)))
        .collect();
    own.sort_by(f64::total_cmp);
    let incomplete = outcome.leechers.len() - secs.len();
    let ratios: Vec<f64> = secs.iter().map(|s| s / t_star).collect();
    // The transfer runs from the first start to the last completion; its middle 80 %.
    let start = 0.1;
    let end = outcome.end_secs;
    let (from, to) = (start + 0.1 * (end - start), start + 0.9 * (end - start));
    let bin = BIN.as_secs_f64();
    let (lo, hi) = ((from / bin) as usize, (to / bin) as usize);
    let sent: f64 = outcome.uploaded_bins.iter().take(hi).skip(lo).sum();
    let capacity: f64 = outcome.capacity_bins.iter().take(hi).skip(lo).sum();
    let uplink_use = if capacity > 0.0 {
        sent / capacity
    } else {
        f64::NAN
    };
    Figures {
        scenario: scenario.name.clone(),
        leechers: outcome.leechers.len(),
        t_star,
        secs: triple(&secs),
        over_t_star: triple(&ratios),
        over_own_bound: triple(&own),
        uplink_use,
        seeder_copies: outcome.seeder_bytes as f64 / f,
        incomplete,
        sorted_ratios: ratios,
    }
}

/// The table's header (Markdown).
pub const TABLE_HEAD: &str = "| scenario | leechers | T* (s) | p50 / p99 / max (s) | p50 / p99 / max ÷ T* | p50 / p99 / max ÷ (F/d) | uplink use | seeder bytes ÷ F | incomplete | sim wall / CPU (s) | peak RSS (MiB) |\n|---|---|---|---|---|---|---|---|---|---|---|";

/// One row of the table.
pub fn table_row(fig: &Figures, wall_secs: f64, cpu_secs: f64, peak_rss_mib: f64) -> String {
    let [a, b, c] = fig.secs;
    let [d, e, g] = fig.over_t_star;
    let [h, i, j] = fig.over_own_bound;
    format!(
        "| {} | {} | {:.1} | {a:.1} / {b:.1} / {c:.1} | {d:.3} / {e:.3} / {g:.3} | {h:.2} / {i:.2} / {j:.2} | {:.1} % | {:.2} | {} | {wall_secs:.0} / {cpu_secs:.0} | {peak_rss_mib:.0} |",
        fig.scenario,
        fig.leechers,
        fig.t_star,
        fig.uplink_use * 100.0,
        fig.seeder_copies,
        fig.incomplete,
    )
}

/// Whether a scenario's leechers all start at once (so that T* is the bound that applies).
pub fn is_flash_crowd(scenario: &Scenario) -> bool {
    scenario.arrivals == Arrivals::FlashCrowd
}

/// An SVG plot of the completion-time CDFs (x: completion ÷ T*, y: share of leechers
/// done), one line per named run.
pub fn cdf_svg(title: &str, runs: &[(String, Vec<f64>)]) -> String {
    let (w, h, left, bottom, top, right) = (720.0, 420.0, 60.0, 50.0, 40.0, 20.0);
    let x_max = runs
        .iter()
        .filter_map(|(_, r)| r.last().copied())
        .fold(1.5_f64, f64::max)
        .ceil()
        .max(1.0);
    let px = |x: f64| left + (x / x_max) * (w - left - right);
    let py = |y: f64| h - bottom - y * (h - bottom - top);
    let colours = [
        "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
    ];
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
        w / 2.0,
        escape(title)
    );
    // Axes, grid and ticks.
    let steps = (x_max * 4.0) as usize;
    for k in 0..=steps {
        let x = k as f64 / 4.0;
        svg += &format!(
            "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"#ddd\"/><text x=\"{0:.1}\" y=\"{3:.1}\" text-anchor=\"middle\">{x:.2}</text>\n",
            px(x),
            py(0.0),
            py(1.0),
            py(0.0) + 16.0
        );
    }
    for k in 0..=4 {
        let y = f64::from(k) / 4.0;
        svg += &format!(
            "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{2:.1}\" y2=\"{1:.1}\" stroke=\"#ddd\"/><text x=\"{3:.1}\" y=\"{4:.1}\" text-anchor=\"end\">{5:.0} %</text>\n",
            px(0.0),
            py(y),
            px(x_max),
            px(0.0) - 6.0,
            py(y) + 4.0,
            y * 100.0
        );
    }
    svg += &format!(
        "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"black\" stroke-dasharray=\"4 3\"/><text x=\"{0:.1}\" y=\"{3:.1}\" text-anchor=\"middle\">T*</text>\n",
        px(1.0),
        py(0.0),
        py(1.0),
        py(1.0) - 4.0
    );
    svg += &format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">completion time ÷ T* (fluid lower bound)</text>\n<text x=\"14\" y=\"{:.1}\" transform=\"rotate(-90 14 {2:.1})\" text-anchor=\"middle\">leechers complete</text>\n",
        (px(0.0) + px(x_max)) / 2.0,
        h - 12.0,
        (py(0.0) + py(1.0)) / 2.0
    );
    for (k, (name, ratios)) in runs.iter().enumerate() {
        let colour = colours[k % colours.len()];
        let n = ratios.len().max(1) as f64;
        let mut points = format!("{:.1},{:.1}", px(0.0), py(0.0));
        for (j, r) in ratios.iter().enumerate() {
            points += &format!(
                " {:.1},{:.1} {:.1},{:.1}",
                px(*r),
                py(j as f64 / n),
                px(*r),
                py((j + 1) as f64 / n)
            );
        }
        svg += &format!(
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{points}\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{colour}\">{}</text>\n",
            px(0.0) + 10.0,
            py(1.0) + 16.0 + 16.0 * k as f64,
            escape(name)
        );
    }
    svg += "</svg>\n";
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_take_the_value_at_or_above_the_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(triple(&v), [50.0, 99.0, 100.0]);
        assert_eq!(triple(&[3.0]), [3.0, 3.0, 3.0]);
    }

    #[test]
    fn the_plot_is_one_svg_with_a_line_per_run() {
        let svg = cdf_svg(
            "a <b>",
            &[("x".into(), vec![1.0, 1.2]), ("y".into(), vec![1.1])],
        );
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a &lt;b&gt;"));
    }
}
