//! The run over time as an SVG chart: listeners receiving audio and joins per second, the
//! share of each second's frames that were on time, and each second's 99th-percentile
//! lateness against the allowance.

use crate::report::Report;
use plotters::prelude::*;
use std::path::Path;

/// Draws `report`'s timeline into an SVG file.
pub fn svg(report: &Report, path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (960, 720)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, rest) = root.split_vertically(270);
    let (middle, bottom) = rest.split_vertically(225);
    let t_max = report.timeline.len().max(1) as u64;

    let most = report
        .timeline
        .iter()
        .map(|p| p.connected.max(p.joins))
        .max()
        .unwrap_or(1)
        .max(1);
    let mut chart = ChartBuilder::on(&top)
        .caption(
            "Listeners receiving audio and joins per second",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0..t_max, 0..most + most / 10)?;
    chart.configure_mesh().x_desc("seconds").draw()?;
    chart
        .draw_series(LineSeries::new(
            report.timeline.iter().map(|p| (p.t, p.connected)),
            &BLUE,
        ))?
        .label("receiving")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart
        .draw_series(LineSeries::new(
            report.timeline.iter().map(|p| (p.t, p.joins)),
            &RED,
        ))?
        .label("joins/s")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart.configure_series_labels().border_style(BLACK).draw()?;

    let mut share = ChartBuilder::on(&middle)
        .caption(
            "Frames on time in each second (%), against the earliest delivery",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0..t_max, 0f64..101f64)?;
    share.configure_mesh().x_desc("seconds").draw()?;
    share.draw_series(LineSeries::new(
        report
            .timeline
            .iter()
            .filter(|p| p.frames > 0)
            .map(|p| (p.t, 100.0 * p.on_time)),
        &GREEN,
    ))?;

    let worst = report
        .timeline
        .iter()
        .map(|p| p.late_p99_ms)
        .fold(report.allowance_ms, f64::max);
    let mut late = ChartBuilder::on(&bottom)
        .caption(
            "99th-percentile lateness in each second (ms); dashed: the allowance",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0..t_max, 0f64..worst * 1.1)?;
    late.configure_mesh().x_desc("seconds").draw()?;
    late.draw_series(LineSeries::new(
        report
            .timeline
            .iter()
            .filter(|p| p.frames > 0)
            .map(|p| (p.t, p.late_p99_ms)),
        &MAGENTA,
    ))?;
    late.draw_series(DashedLineSeries::new(
        [(0, report.allowance_ms), (t_max, report.allowance_ms)],
        6,
        4,
        BLACK.into(),
    ))?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::Tick;

    #[test]
    fn a_run_becomes_an_svg_chart() {
        let ticks: Vec<Tick> = (0..10u64)
            .map(|t| Tick {
                joined: t * 100,
                connected: t * 100,
                failed: 0,
                retries: 0,
                frames: t * t * 2500,
                late: std::array::from_fn(|i| if i < 2 { t * 1000 } else { 0 }),
            })
            .collect();
        let report = Report::new(1000, &[], &ticks, 1000.0);
        let path = std::env::temp_dir().join(format!("stentor-plot-{}.svg", std::process::id()));
        svg(&report, &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("<svg"), "{}", &text[..50]);
        assert!(text.contains("joins per second"));
        assert!(text.contains("lateness"));
        assert!(text.matches("<polyline").count() >= 4, "four series");
        let _ = std::fs::remove_file(path);
    }
}
