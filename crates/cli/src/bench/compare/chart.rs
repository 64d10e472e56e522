//! The latency distributions of `ferrosync bench compare` as one PNG: a panel per workload,
//! a line per system through its latencies at each quantile (log scale).

use super::QUANTILES;
use anyhow::{Context, bail};
use plotters::prelude::*;

pub(super) struct Panel {
    pub title: String,
    /// System name → latency (ms) at each of [`QUANTILES`].
    pub series: Vec<(String, Vec<f64>)>,
}

const FONT: &str = "sans-serif";
/// One colour per system in every panel: Ferrosync's warm, the peers' cool.
fn colour(system: &str) -> RGBColor {
    match system {
        s if s.starts_with("ferrosync (") => RGBColor(0xe8, 0x9a, 0x3c),
        s if s.starts_with("ferrosync websocket") => RGBColor(0x9b, 0x1b, 0x30),
        s if s.starts_with("ferrosync") => RGBColor(0xd9, 0x48, 0x1c),
        s if s.starts_with("nats") => RGBColor(0x1f, 0x6f, 0xb4),
        _ => RGBColor(0x2a, 0x9d, 0x5c),
    }
}

/// Text needs a TrueType font; the usual Debian ones are looked for.
fn load_font() -> anyhow::Result<()> {
    const CANDIDATES: [&str; 3] = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
    ];
    let path = CANDIDATES
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .context("no TrueType font found (Debian: apt install fonts-dejavu-core)")?;
    let bytes: &'static [u8] = Box::leak(std::fs::read(path)?.into_boxed_slice());
    plotters::style::register_font(FONT, FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("{path} is not a usable font"))?;
    Ok(())
}

/// The latency axis's labelled ticks: 1, 2 and 5 times each power of ten between `low` and
/// `high`. Left to itself, a log axis spanning less than a decade gets no label at all.
fn ticks(low: f64, high: f64) -> Vec<f64> {
    let mut ticks = Vec::new();
    let mut decade = 10f64.powf(low.log10().floor());
    while decade <= high {
        ticks.extend([1.0, 2.0, 5.0].map(|m| decade * m).into_iter().filter(|v| (low..=high).contains(v)));
        decade *= 10.0;
    }
    ticks
}

pub(super) fn draw(path: &std::path::Path, panels: &[Panel]) -> anyhow::Result<()> {
    if panels.is_empty() {
        bail!("nothing was measured");
    }
    load_font()?;
    let columns = 2usize;
    let rows = panels.len().div_ceil(columns);
    let root = BitMapBackend::new(path, (1200, 380 * rows as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let labels = ["p50", "p75", "p90", "p95", "p99", "p99.5", "p99.9", "max"];
    for (area, panel) in root.split_evenly((rows, columns)).iter().zip(panels) {
        let values = panel.series.iter().flat_map(|(_, v)| v.iter().copied()).filter(|v| *v > 0.0);
        let (low, high) = values.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (low, high) = if high > 0.0 { (low / 1.5, high * 1.5) } else { (0.01, 1.0) };
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, (FONT, 20))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(56)
            .build_cartesian_2d(
                0usize..QUANTILES.len() - 1,
                (low..high).log_scale().with_key_points(ticks(low, high)),
            )?;
        chart
            .configure_mesh()
            .x_labels(QUANTILES.len())
            .x_label_formatter(&|i| labels.get(*i).copied().unwrap_or_default().to_owned())
            .y_desc("latency, ms")
            .y_label_formatter(&|v| match *v {
                v if v >= 10.0 => format!("{v:.0}"),
                v if v >= 1.0 => format!("{v:.1}"),
                v => format!("{v:.2}"),
            })
            .label_style((FONT, 12))
            .draw()?;
        for (name, latencies) in &panel.series {
            let colour = colour(name);
            let points: Vec<(usize, f64)> = latencies.iter().enumerate().map(|(q, v)| (q, v.max(low))).collect();
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font((FONT, 12))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::ticks;

    #[test]
    fn every_latency_axis_has_labels_within_a_decade_or_across_several() {
        assert_eq!(ticks(0.13, 0.9), [0.2, 0.5]);
        assert_eq!(ticks(130.0, 750.0), [200.0, 500.0]);
        let wide = ticks(0.04, 60.0);
        assert_eq!(wide.len(), 10, "{wide:?}");
        assert!(wide.iter().all(|t| (0.04..=60.0).contains(t)), "{wide:?}");
    }
}
