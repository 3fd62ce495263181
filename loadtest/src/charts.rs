//! SVG line charts of a run's per-second series (plotters, SVG backend only).

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;

/// One line of a chart.
pub struct Line {
    pub label: String,
    pub color: RGBColor,
    pub points: Vec<(f64, f64)>,
}

impl Line {
    pub fn new(label: &str, color: RGBColor, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.to_owned(),
            color,
            points,
        }
    }
}

pub const BLUE_DARK: RGBColor = RGBColor(31, 119, 180);
pub const BLUE_LIGHT: RGBColor = RGBColor(140, 190, 230);
pub const ORANGE_DARK: RGBColor = RGBColor(230, 110, 20);
pub const ORANGE_LIGHT: RGBColor = RGBColor(250, 190, 120);
pub const GREEN: RGBColor = RGBColor(44, 160, 44);
pub const PURPLE: RGBColor = RGBColor(148, 103, 189);
pub const GREY: RGBColor = RGBColor(80, 80, 80);

/// What one chart shows.
pub struct Chart<'a> {
    pub title: &'a str,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    pub lines: Vec<Line>,
    /// Lines on a second y axis, at the right.
    pub right: Option<(&'a str, Vec<Line>)>,
    /// A vertical marker (the end of arrivals), with its label.
    pub marker: Option<(f64, &'a str)>,
}

fn top(lines: &[Line]) -> f64 {
    let max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max);
    if max <= 0.0 {
        1.0
    } else {
        max * 1.1
    }
}

/// Draws the chart into an SVG file.
pub fn draw(path: &Path, chart: Chart) -> anyhow::Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
    let x_max = chart
        .lines
        .iter()
        .chain(chart.right.iter().flat_map(|r| r.1.iter()))
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let y_max = top(&chart.lines);
    let root = SVGBackend::new(path, (1000, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(chart.title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70);
    if chart.right.is_some() {
        builder.right_y_label_area_size(80);
    }
    let mut ctx = builder
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(|e| err(&e))?
        .set_secondary_coord(
            0.0..x_max,
            0.0..chart.right.as_ref().map_or(1.0, |r| top(&r.1)),
        );
    ctx.configure_mesh()
        .x_desc(chart.x_desc)
        .y_desc(chart.y_desc)
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| err(&e))?;
    if let Some((x, label)) = chart.marker {
        ctx.draw_series(LineSeries::new(vec![(x, 0.0), (x, y_max)], GREY))
            .map_err(|e| err(&e))?
            .label(label)
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREY));
    }
    for line in &chart.lines {
        let color = line.color;
        ctx.draw_series(LineSeries::new(
            line.points.iter().copied(),
            color.stroke_width(2),
        ))
        .map_err(|e| err(&e))?
        .label(line.label.as_str())
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    if let Some((desc, lines)) = &chart.right {
        ctx.configure_secondary_axes()
            .y_desc(*desc)
            .draw()
            .map_err(|e| err(&e))?;
        for line in lines {
            let color = line.color;
            ctx.draw_secondary_series(LineSeries::new(
                line.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label(format!("{} (right axis)", line.label))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        }
    }
    ctx.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
