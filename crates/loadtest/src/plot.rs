//! The run over time as an SVG chart: listeners receiving audio, joins per second, and
//! frames delivered per listener per second (50 when every listener keeps up).

use crate::report::Report;
use plotters::prelude::*;
use std::path::Path;

/// Draws `report`'s timeline into an SVG file.
pub fn svg(report: &Report, path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(270);
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

    let mut rate = ChartBuilder::on(&bottom)
        .caption(
            "Frames delivered per listener per second (50 = keeping up)",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0..t_max, 0f64..80f64)?;
    rate.configure_mesh().x_desc("seconds").draw()?;
    rate.draw_series(LineSeries::new(
        report
            .timeline
            .iter()
            .filter(|p| p.connected > 0)
            .map(|p| (p.t, p.frames as f64 / p.connected as f64)),
        &GREEN,
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
                frames: t * t * 2500,
            })
            .collect();
        let report = Report::new(1000, &[], &ticks, 1000.0);
        let path = std::env::temp_dir().join(format!("stentor-plot-{}.svg", std::process::id()));
        svg(&report, &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("<svg"), "{}", &text[..50]);
        assert!(text.contains("joins per second"));
        assert!(text.matches("<polyline").count() >= 3, "three series");
        let _ = std::fs::remove_file(path);
    }
}
