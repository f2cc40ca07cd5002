//! A researcher's loop through the built binary on a tiny EBM run: samples leave the tool as
//! files in the dataset's layout (joint and conditioned on the run's test tuples) and come back
//! through the PolyMNIST reader; `eval` writes a folder of its own with provenance; `runs` lists
//! the run; `report --html` writes a page that a real headless Chromium loads, finding the
//! results table and decoding every embedded image.
//!
//! Needs `chromium` (Debian's package; `scripts/setup.sh` installs it, `MMLATENT_CHROMIUM`
//! names another binary): without it the test fails, saying so.

use std::path::Path;
use std::process::{Command, Output};

mod common;

/// The toy EBM of 6 steps with 3 Langevin steps.
fn ebm() -> String {
    common::TOY_EBM.replace("steps = 8", "steps = 6").replace("langevin_steps = 2", "langevin_steps = 3")
}

/// Runs the binary in `dir`, with the classifier cache in `cache/` beside the test's folders.
fn mmlatent(dir: &Path, args: &[&str]) -> Output {
    let root = if dir.ends_with("elsewhere") { dir.parent().expect("a parent") } else { dir };
    common::mmlatent_with(dir, &root.join("cache"), args, None)
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = mmlatent(dir, args);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{args:?} failed:\n{text}");
    text
}

fn refused(dir: &Path, args: &[&str], needle: &str) {
    let out = mmlatent(dir, args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert!(err.contains(needle) && !err.contains("panicked"), "{args:?}: `{needle}` not in {err}");
}

fn chromium() -> String {
    let binary = std::env::var("MMLATENT_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let found = Command::new(&binary).arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{binary} --version` failed: this test needs a headless Chromium (Debian: apt-get install -y chromium; \
         scripts/setup.sh installs it; MMLATENT_CHROMIUM names another binary)"
    );
    binary
}

#[test]
fn samples_evaluations_and_the_html_report() {
    let browser = chromium();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("exp.toml"), ebm()).unwrap();
    ok(d, &["train", "exp.toml", "--run", "runs/a"]);

    // Joint samples as files: one PNG per sample and modality, unlabelled, read back.
    ok(d, &["sample", "runs/a", "--joint", "5", "--out", "joint", "--seed", "1"]);
    let joint = mmlatent_data::polymnist::load_split_folder(&d.join("joint"), 10).unwrap();
    assert_eq!(Vec::<i64>::try_from(&joint.labels).unwrap(), vec![-1; 5]);
    assert_eq!(joint.items.len(), 2);
    // Another seed draws other samples; the same seed the same ones.
    ok(d, &["sample", "runs/a", "--joint", "5", "--out", "joint2", "--seed", "2"]);
    ok(d, &["sample", "runs/a", "--joint", "5", "--out", "joint1", "--seed", "1", "--steps", "3"]);
    let read = |name: &str| std::fs::read(d.join(name).join("m0/0.-1.png")).unwrap();
    assert_ne!(read("joint"), read("joint2"));
    assert_eq!(read("joint"), read("joint1"));
    // Conditioned on the run's own test tuples: their labels in the names.
    ok(d, &["sample", "runs/a", "--given", "m0", "--given-split", "test", "--limit", "7", "--out", "cond"]);
    let cond = mmlatent_data::polymnist::load_split_folder(&d.join("cond"), 10).unwrap();
    let dataset = mmlatent_data::synthetic::squares(2000, 500, 2, 0);
    let expected: Vec<i64> = Vec::try_from(&dataset.test.labels.narrow(0, 0, 7)).unwrap();
    assert_eq!(Vec::<i64>::try_from(&cond.labels).unwrap(), expected);
    // A grid with rows of 4 tuples: 2 rows of tuples × 2 modalities.
    ok(d, &["sample", "runs/a", "--joint", "8", "--nrow", "4", "--out", "grid.png"]);
    let grid = mmlatent_data::image_file::decode(&d.join("grid.png")).unwrap();
    // 28-pixel items drawn 84 pixels a side (scaled by 3), 2 pixels between cells.
    assert_eq!((grid.width(), grid.height()), (4 * 86 + 2, 4 * 86 + 2));
    refused(d, &["sample", "runs/a", "--joint", "2", "--out", "joint"], "already holds files");
    refused(d, &["sample", "runs/a", "--joint", "2", "--out", "j3", "--sampler", "heun"], "--sampler heun");
    refused(d, &["sample", "runs/a", "--given", "m0,m1=x.png", "--out", "j4"], "not both");

    // Two evaluations, each in its own folder, with provenance.
    let eval = ["eval", "runs/a", "--samples", "16", "--batch", "8", "--classifier-steps", "20"];
    ok(d, &eval);
    ok(d, &[&eval[..], &["--steps", "2", "--seed", "9"]].concat());
    let folders: Vec<String> = {
        let mut f: Vec<String> = std::fs::read_dir(d.join("runs/a/eval"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        f.sort();
        f
    };
    assert_eq!(folders, vec!["ebm-6-langevin-2", "ebm-6-langevin-3"], "{folders:?}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("runs/a/eval/ebm-6-langevin-2/report.json")).unwrap())
            .unwrap();
    let p = &report["provenance"];
    assert_eq!(p["checkpoints"][0]["step"], 6);
    assert_eq!(p["sampler"]["settings"]["steps"], 2);
    assert_eq!(p["sampler"]["evaluations_per_sample"], 2);
    assert_eq!(p["seed"], 9);
    assert!(p["classifiers"].as_str().unwrap().contains("cache/classifiers/squares-"), "{p}");
    assert!(p["date"].as_str().unwrap().ends_with('Z') && p["version"].is_string() && p["command"].is_array());
    // From another working directory, the same classifiers are found.
    std::fs::create_dir_all(d.join("elsewhere")).unwrap();
    let text = ok(&d.join("elsewhere"), &[&["eval", "../runs/a"], &eval[2..], &["--name", "again"]].concat());
    assert!(text.contains("using the classifiers in"), "{text}");
    let csv = std::fs::read_to_string(d.join("runs/a/eval/again/report.csv")).unwrap();
    for value in csv.lines().skip(1).filter_map(|l| l.rsplit(',').next()) {
        assert!(value.len() <= 12, "unrounded value {value} in\n{csv}");
    }

    // `runs` lists the run, finished, with the newest evaluation's numbers.
    let listing = ok(d, &["runs", "runs"]);
    assert!(listing.contains("runs/a") && listing.contains("ebm 6/6") && listing.contains("finished"), "{listing}");
    assert!(listing.contains("joint ") && listing.contains("given 1 "), "{listing}");

    // The HTML report in a real browser: the table, its rows, and every image decoded.
    ok(d, &["report", "runs/a", "--html", "report.html"]);
    let page = std::fs::read_to_string(d.join("report.html")).unwrap();
    let images = page.matches("<img src=\"data:image/png;base64,").count();
    assert!(images >= 2, "{images} images embedded");
    let out = Command::new(&browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", d.join("report.html").display()))
        .env("HOME", d)
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && dom.contains("<table id=\"results\">"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dom.contains("<td><a href=\"#run-0\">runs/a</a></td>"), "{dom:.2000}");
    assert!(dom.contains(&format!("data-images-loaded=\"{images}\"")), "not every image decoded: {:.300}", {
        let at = dom.find("<body").unwrap_or(0);
        &dom[at..]
    });
}
