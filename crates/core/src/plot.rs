//! Loss curves as PNG line plots (plotters). Axis labels use a system TrueType font when one
//! is found (DejaVu Sans, Liberation Sans); without one the curves are drawn unlabelled.

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// Registers a system font with plotters once; false when none is found.
fn font_available() -> bool {
    static FONT: OnceLock<bool> = OnceLock::new();
    *FONT.get_or_init(|| {
        for p in FONT_PATHS {
            if let Ok(bytes) = std::fs::read(p) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

/// One named curve of (x, y) points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Draws the series on one chart (log-scaled y when every value is positive and they span
/// more than two decades) and writes it as a PNG.
pub fn plot_curves(path: &Path, title: &str, x_label: &str, series: &[Series]) -> Result<()> {
    let points: Vec<(f64, f64)> =
        series.iter().flat_map(|s| s.points.iter().copied()).filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
    if points.is_empty() {
        return Err(anyhow!("nothing to plot in {}", path.display()));
    }
    let (x0, x1) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y0, y1) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let pad = ((y1 - y0) * 0.05).max(1e-6);
    let log_y = y0 > 0.0 && y1 / y0 > 100.0;
    let labelled = font_available();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    const SIZE: (u32, u32) = (800, 480);
    let mut buffer = vec![255u8; (SIZE.0 * SIZE.1 * 3) as usize];
    let mut draw = || -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = BitMapBackend::with_buffer(&mut buffer, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let mut builder = ChartBuilder::on(&root);
        builder.margin(15);
        if labelled {
            builder.caption(title, ("sans-serif", 22)).x_label_area_size(40).y_label_area_size(70);
        }
        let colours = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
        macro_rules! finish {
            ($chart:expr) => {{
                let mut chart = $chart;
                if labelled {
                    chart.configure_mesh().x_desc(x_label).label_style(("sans-serif", 14)).draw()?;
                } else {
                    chart.configure_mesh().disable_x_mesh().disable_y_mesh().draw()?;
                }
                for (i, s) in series.iter().enumerate() {
                    let c = colours[i % colours.len()];
                    let drawn = chart.draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2)))?;
                    if labelled {
                        drawn
                            .label(s.name.clone())
                            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
                    }
                }
                if labelled && series.len() > 1 {
                    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
                }
            }};
        }
        if log_y {
            finish!(builder.build_cartesian_2d(x0..x1, (y0 * 0.9..y1 * 1.1).log_scale())?);
        } else {
            finish!(builder.build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))?);
        }
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| anyhow!("cannot draw {}: {e}", path.display()))?;
    let img = image::RgbImage::from_raw(SIZE.0, SIZE.1, buffer).expect("buffer matches the size");
    img.save(path).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loss.png");
        let s = Series { name: "loss".into(), points: (0..50).map(|i| (i as f64, 100.0 / (1.0 + i as f64))).collect() };
        plot_curves(&path, "loss", "step", &[s]).unwrap();
        assert!(image::open(&path).unwrap().width() == 800);
        assert!(plot_curves(&path, "x", "step", &[]).is_err());
    }
}
