//! Training curves as PNG plots (plotters): one panel per metric, each with its own y scale
//! (logarithmic when the values are positive and span more than two decades), axis labels, and
//! a marker on every point so that a curve of one logged point is still drawn. The x axis
//! counts steps, so its ticks are whole numbers however short the run. The labels use
//! Open Sans, compiled into the binary (`assets/fonts/`, Apache 2.0), so every machine draws
//! them alike.

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

/// The font of every label (see `assets/fonts/README.md`).
const FONT: &[u8] = include_bytes!("../../../assets/fonts/OpenSans-Regular.ttf");

/// Registers the embedded font with plotters once.
fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok());
    anyhow::ensure!(ok, "the embedded font could not be loaded");
    Ok(())
}

/// One named curve of (x, y) points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Pixel size of one panel.
const PANEL: (u32, u32) = (520, 300);

/// Draws each series in a panel of its own (two panels a row) under `title`, with `x_label`
/// on every x axis and the series' name on its y axis, and writes the whole as a PNG.
pub fn plot_curves(path: &Path, title: &str, x_label: &str, series: &[Series]) -> Result<()> {
    let series: Vec<(&str, Vec<(f64, f64)>)> = series
        .iter()
        .map(|s| (s.name.as_str(), s.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect()))
        .filter(|(_, p): &(&str, Vec<(f64, f64)>)| !p.is_empty())
        .collect();
    if series.is_empty() {
        return Err(anyhow!("nothing to plot in {}", path.display()));
    }
    register_font()?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let cols = series.len().min(2) as u32;
    let rows = series.len().div_ceil(2) as u32;
    const TITLE: u32 = 40;
    let size = (cols * PANEL.0, rows * PANEL.1 + TITLE);
    let mut buffer = vec![255u8; (size.0 * size.1 * 3) as usize];
    let mut draw = || -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = BitMapBackend::with_buffer(&mut buffer, size).into_drawing_area();
        root.fill(&WHITE)?;
        let (head, body) = root.split_vertically(TITLE);
        head.titled(title, ("sans-serif", 24))?;
        let panels = body.split_evenly((rows as usize, cols as usize));
        for ((name, points), area) in series.iter().zip(&panels) {
            panel(area, name, x_label, points)?;
        }
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| anyhow!("cannot draw {}: {e}", path.display()))?;
    let img = image::RgbImage::from_raw(size.0, size.1, buffer).expect("buffer matches the size");
    img.save(path).with_context(|| format!("cannot write {}", path.display()))
}

/// One metric's panel.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    name: &str,
    x_label: &str,
    points: &[(f64, f64)],
) -> std::result::Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    // Steps are whole numbers: an integer axis puts its ticks on whole steps only.
    let points: Vec<(i64, f64)> = points.iter().map(|&(x, y)| (x.round() as i64, y)).collect();
    let (x0, x1) = points.iter().fold((i64::MAX, i64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y0, y1) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let (x0, x1) = if x1 > x0 { (x0, x1) } else { (x0 - 1, x1 + 1) };
    let pad = ((y1 - y0) * 0.05).max(1e-6 * y1.abs().max(1.0));
    let log_y = y0 > 0.0 && y1 / y0 > 100.0;
    let mut builder = ChartBuilder::on(area);
    builder.margin(12).caption(name, ("sans-serif", 18)).x_label_area_size(40).y_label_area_size(70);
    let marker = points.len() <= 60;
    macro_rules! finish {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .x_labels(((x1 - x0) as usize + 1).min(8))
                .y_desc(name)
                .label_style(("sans-serif", 13))
                .axis_desc_style(("sans-serif", 15))
                .draw()?;
            chart.draw_series(LineSeries::new(points.iter().copied(), BLUE.stroke_width(2)))?;
            if marker {
                chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, BLUE.filled())))?;
            }
        }};
    }
    if log_y {
        finish!(builder.build_cartesian_2d(x0..x1, (y0 * 0.9..y1 * 1.1).log_scale())?);
    } else {
        finish!(builder.build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dark pixels in the rectangle `(x, y, w, h)` of an RGB image.
    fn ink(img: &image::RgbImage, x: u32, y: u32, w: u32, h: u32) -> usize {
        let mut n = 0;
        for yy in y..y + h {
            for xx in x..x + w {
                if img.get_pixel(xx, yy).0.iter().all(|&c| c < 128) {
                    n += 1;
                }
            }
        }
        n
    }

    /// The x axis of a short run labels whole steps only (no "1.5").
    #[test]
    fn step_ticks_are_whole_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let short = Series { name: "loss".into(), points: vec![(1.0, 0.5), (2.0, 0.4), (3.0, 0.3)] };
        plot_curves(&dir.path().join("short.png"), "short", "step", &[short]).unwrap();
        // The integer axis: plotters' key points of an i64 range of three steps.
        use plotters::coord::ranged1d::Ranged;
        let axis: plotters::coord::types::RangedCoordi64 = (1i64..3i64).into();
        let ticks = axis.key_points(3usize);
        assert_eq!(ticks, vec![1, 2, 3]);
    }

    /// One panel per metric (two a row), a lone point drawn, labels drawn with the embedded
    /// font (the title band is not blank), nothing to plot an error.
    #[test]
    fn one_panel_per_metric_with_labels_and_single_points() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loss.png");
        let falling =
            Series { name: "loss".into(), points: (0..50).map(|i| (i as f64, 100.0 / (1.0 + i as f64))).collect() };
        let huge = Series { name: "energy".into(), points: (0..50).map(|i| (i as f64, -5000.0 + i as f64)).collect() };
        let single = Series { name: "val_loss".into(), points: vec![(49.0, 0.5)] };
        plot_curves(&path, "toy: training", "step", &[falling, huge, single]).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!((img.width(), img.height()), (2 * PANEL.0, 2 * PANEL.1 + 40));
        assert!(ink(&img, 0, 0, img.width(), 40) > 50, "no title drawn");
        // The lone point's panel (second row, first column) holds its marker and axes.
        assert!(ink(&img, 0, 40 + PANEL.1, PANEL.0, PANEL.1) > 200, "empty val_loss panel");
        assert!(plot_curves(&path, "x", "step", &[]).is_err());
        let only_nan = Series { name: "x".into(), points: vec![(0.0, f64::NAN)] };
        assert!(plot_curves(&path, "x", "step", &[only_nan]).is_err());
    }
}
