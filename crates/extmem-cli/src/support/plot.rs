//! PNG plots of the benchmarks (plotters, bitmap backend; text in DejaVu Sans).

use plotters::prelude::*;
use std::path::Path;

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// The font file: `$EXTMEM_FONT`, else DejaVu Sans where Debian puts it.
fn font_path() -> std::path::PathBuf {
    std::env::var_os("EXTMEM_FONT").map_or_else(|| FONT.into(), Into::into)
}

/// Fails early, before a long benchmark, when the plot could not be drawn.
pub fn check_font() -> extmem::Result<()> {
    let path = font_path();
    if path.is_file() {
        return Ok(());
    }
    Err(extmem::Error::Unsupported(format!(
        "--png needs the font {} (Debian: apt-get install fonts-dejavu-core, or set EXTMEM_FONT to a .ttf file)",
        path.display()
    )))
}

fn font() -> extmem::Result<()> {
    let path = font_path();
    let bytes = std::fs::read(&path)
        .map_err(|e| extmem::Error::Io { context: format!("reading {}", path.display()), source: e })?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| extmem::Error::Unsupported(format!("{} is not a font plotters can read", path.display())))
}

/// A log-log plot of latency (ms) against size (bytes), one line per series.
pub fn latency(path: &Path, title: &str, sizes: &[u64], series: &[(&str, Vec<f64>)]) -> extmem::Result<()> {
    font()?;
    let fail = |e: String| extmem::Error::Unsupported(format!("drawing {}: {e}", path.display()));
    let root = BitMapBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    let (x0, x1) = (sizes.iter().copied().min().unwrap_or(1) as f64, sizes.iter().copied().max().unwrap_or(2) as f64);
    let all = series.iter().flat_map(|(_, v)| v.iter().copied());
    let (y0, y1) = all.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d((x0 * 0.8..x1 * 1.25).log_scale(), (y0 * 0.7..y1 * 1.5).log_scale())
        .map_err(|e| fail(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("bytes")
        .y_desc("milliseconds")
        .x_label_formatter(&|v| match *v {
            v if v >= (1u64 << 30) as f64 => format!("{:.0} GiB", v / (1u64 << 30) as f64),
            v if v >= (1u64 << 20) as f64 => format!("{:.0} MiB", v / (1u64 << 20) as f64),
            v => format!("{:.0} KiB", v / 1024.0),
        })
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| fail(e.to_string()))?;
    for (i, (name, values)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points: Vec<(f64, f64)> = sizes.iter().map(|&s| s as f64).zip(values.iter().copied()).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(3)))
            .map_err(|e| fail(e.to_string()))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3)));
        chart
            .draw_series(points.into_iter().map(|p| Circle::new(p, 4, color.filled())))
            .map_err(|e| fail(e.to_string()))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| fail(e.to_string()))?;
    root.present().map_err(|e| fail(e.to_string()))
}
