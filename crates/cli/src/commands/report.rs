//! `mmlatent report RUN… --html OUT`: one self-contained HTML page comparing runs — a table in
//! the seeds' style (joint coherence, coherence by number of given modalities, FD/FID where
//! measured) from each run's newest evaluation, then each run's sample grids and loss plots,
//! embedded as `data:` URIs so the page travels as one file.

use super::runs::{eval_folders, RunSummary};
use anyhow::{bail, Context, Result};
use base64::Engine as _;
use mmlatent_eval::provenance::utc_now;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Run folders to compare (or folders of run folders).
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// The HTML file to write.
    #[arg(long)]
    pub html: PathBuf,
    /// At most this many sample grids per run (the newest evaluation's first, then samples/).
    #[arg(long, default_value_t = 12)]
    pub max_grids: usize,
}

pub fn run(args: Args) -> Result<()> {
    super::common::check_output_file("--html", &args.html, "html")?;
    let mut summaries = vec![];
    for path in &args.runs {
        for run in super::runs::find_runs(path)? {
            summaries.push(RunSummary::read(&run).with_context(|| format!("run {}", run.display()))?);
        }
    }
    if summaries.is_empty() {
        bail!("no run folders in {}", args.runs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
    }
    let page = render(&summaries, args.max_grids)?;
    std::fs::write(&args.html, page).with_context(|| format!("--html {}: cannot write", args.html.display()))?;
    eprintln!("wrote {} ({} runs)", args.html.display(), summaries.len());
    Ok(())
}

/// `text` with HTML's special characters escaped (for text and quoted attribute values).
fn escape(text: &str) -> String {
    html_escape::encode_double_quoted_attribute(text).into_owned()
}

/// The PNG files of `dir`, by name.
fn pngs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")) && p.is_file())
        .collect();
    files.sort();
    files
}

/// A `<figure>` with the PNG `path` embedded, captioned with its path relative to `run`.
fn figure(out: &mut String, run: &Path, path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let caption = path.strip_prefix(run).unwrap_or(path).display().to_string();
    let _ = writeln!(
        out,
        "<figure><img src=\"data:image/png;base64,{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
        base64::engine::general_purpose::STANDARD.encode(&bytes),
        escape(&caption),
        escape(&caption)
    );
    Ok(())
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = values.collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:80em}\
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;padding:.3em .6em}\
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#eee}\
figure{display:inline-block;margin:.5em;vertical-align:top}figcaption{font-size:.8em;color:#444}\
img{image-rendering:pixelated;max-width:100%}";

/// The whole page.
pub fn render(runs: &[RunSummary], max_grids: usize) -> Result<String> {
    let sizes = runs
        .iter()
        .filter_map(|r| r.eval.as_ref())
        .flat_map(|(_, e)| e.conditional_coherence.by_size.iter().map(|a| a.size))
        .max()
        .unwrap_or(0);
    let any_fid = runs.iter().any(|r| r.eval.as_ref().is_some_and(|(_, e)| e.fid.is_some()));
    let mut out = String::new();
    let _ = writeln!(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    let _ = writeln!(out, "<title>mmlatent report</title><style>{STYLE}</style></head><body>");
    let _ = writeln!(
        out,
        "<h1>mmlatent report</h1><p>{} runs; written {} by mmlatent {}.</p>",
        runs.len(),
        utc_now(),
        env!("CARGO_PKG_VERSION")
    );
    let _ = write!(
        out,
        "<table id=\"results\"><thead><tr><th>run</th><th>model</th><th>dataset</th><th>steps</th><th>sampler</th>\
         <th>joint coherence (%) ↑</th>"
    );
    for size in 1..=sizes {
        let _ = write!(out, "<th>given {size} (%) ↑</th>");
    }
    let _ = write!(out, "<th>FD joint ↓</th>");
    if any_fid {
        let _ = write!(out, "<th>FID joint ↓</th>");
    }
    let _ = writeln!(out, "</tr></thead><tbody>");
    for (i, r) in runs.iter().enumerate() {
        let _ = write!(
            out,
            "<tr><td><a href=\"#run-{i}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td>",
            escape(&r.path.display().to_string()),
            escape(&r.model),
            escape(&r.dataset),
            escape(&r.steps())
        );
        let report = r.eval.as_ref().map(|(_, e)| e);
        let sampler = report.and_then(|e| e.provenance.as_ref()).map(|p| p.sampler.short_name());
        let _ = write!(out, "<td>{}</td>", escape(sampler.as_deref().unwrap_or("-")));
        let cell = |v: Option<f64>, digits: usize| match v {
            Some(v) => format!("<td class=\"n\">{v:.digits$}</td>"),
            None => "<td class=\"n\">-</td>".to_string(),
        };
        out.push_str(&cell(report.map(|e| 100.0 * e.joint_coherence), 1));
        for size in 1..=sizes {
            out.push_str(&cell(report.and_then(|e| e.conditional_coherence.average(size)).map(|v| 100.0 * v), 1));
        }
        out.push_str(&cell(report.and_then(|e| mean(e.fd.joint.values().copied())), 2));
        if any_fid {
            out.push_str(&cell(report.and_then(|e| e.fid.as_ref()).and_then(|f| mean(f.joint.values().copied())), 2));
        }
        let _ = writeln!(out, "</tr>");
    }
    let _ = writeln!(
        out,
        "</tbody></table><p>Coherence from each run's newest evaluation: joint, and conditional averaged by the \
         number of given modalities; FD: Fréchet distance in the evaluation classifiers' features, FID: \
         Inception-v3, both between joint samples and test items, averaged over modalities.</p>"
    );
    for (i, r) in runs.iter().enumerate() {
        let _ = writeln!(out, "<section id=\"run-{i}\"><h2>{}</h2>", escape(&r.path.display().to_string()));
        let _ = writeln!(
            out,
            "<p>{} on {}; {}; steps {}.</p>",
            escape(&r.model),
            escape(&r.dataset),
            r.state,
            escape(&r.steps())
        );
        let mut grids: Vec<PathBuf> = vec![];
        if let Some((dir, report)) = &r.eval {
            let _ = writeln!(
                out,
                "<p>Evaluation {}: {}.</p>",
                escape(&dir.strip_prefix(&r.path).unwrap_or(dir).display().to_string()),
                escape(&r.headline())
            );
            if let Some(p) = &report.provenance {
                let _ = writeln!(out, "<p>Evaluated {} with seed {}.</p>", escape(&p.date), p.seed);
            }
            grids.extend(pngs(dir));
        }
        grids.extend(pngs(&r.path.join("samples")));
        if !grids.is_empty() {
            let _ = writeln!(out, "<h3>Sample grids</h3>");
            if grids.len() > max_grids {
                let _ = writeln!(out, "<p>The first {max_grids} of {} grids.</p>", grids.len());
            }
            for g in grids.iter().take(max_grids) {
                figure(&mut out, &r.path, g)?;
            }
        }
        let plots = pngs(&r.path.join("plots"));
        if !plots.is_empty() {
            let _ = writeln!(out, "<h3>Loss plots</h3>");
            for p in &plots {
                figure(&mut out, &r.path, p)?;
            }
        }
        let older = eval_folders(&r.path)?.len().saturating_sub(1);
        if older > 0 {
            let _ = writeln!(out, "<p>{older} earlier evaluation(s) under eval/.</p>");
        }
        let _ = writeln!(out, "</section>");
    }
    // Lets a headless browser say how many images it decoded (see the report test).
    let _ = writeln!(
        out,
        "<script>addEventListener('load',()=>{{document.body.dataset.imagesLoaded=\
         Array.from(document.images).filter(i=>i.complete&&i.naturalWidth>0).length;}});</script>"
    );
    let _ = writeln!(out, "</body></html>");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        let escaped = escape("<a href=\"x\">&");
        assert!(!escaped.contains(['<', '>', '"']) && escaped.contains("&amp;"), "{escaped}");
    }
}
