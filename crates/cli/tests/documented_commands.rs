//! Every command that the README and the book (`docs/src/**/*.md`) show is run here, through the
//! built `mmlatent` binary, on short real runs the suite trains itself; a documented command
//! that fails, or does not write what it says it writes, fails the suite.
//!
//! **What is run.** Every fenced block whose info string is `sh`. Each of its lines (a trailing
//! `# comment` is dropped, `\` continues a line) must be an `mmlatent …` command or one of the
//! README's set-up lines (`bash scripts/setup.sh && …`: `cargo run --release -- ARGS` runs as
//! `mmlatent ARGS`; `cargo test`/`cargo build` are what the suite itself is, and are skipped).
//! Anything else in an `sh` block is an error: shell that the suite cannot run belongs in a
//! block of another kind (`bash`, `text`, `console`).
//!
//! **Where.** Each page runs in a fresh folder, its commands in page order, with what a user
//! would have at hand, stood in for by small generated files:
//! - `configs/` (the repository's), the bundled dataset (`default`);
//! - `fashion-mnist/` and `mnist/` (IDX folders), `svhn/` (`train_32x32.mat`, `test_32x32.mat`),
//!   `photos/<any name>.png|.jpg` (background images: any name a command uses under `photos/`),
//!   `digit.png` (one 3×28×28 image), `real_pngs/` and `fake_pngs/` (folders of PNGs),
//!   `pt_inception-2015-12-05.safetensors` (Inception-v3 weights, random);
//! - `data/PolyMNIST`, `data/mnist-svhn`, `data/cub` (the reference configs' data folders, tiny),
//!   when a command needs them and the page has not built them;
//! - `runs/<name>`, when a command uses a run the page has not trained: a short real run of
//!   `configs/<name>.toml`, trained once for the whole suite.
//!
//! **Sizes.** Commands are written as users run them (thousands of steps, `--samples 1000`);
//! [`shrink`] turns them into seconds-long ones: every `train`/`quickstart` gets a few steps of
//! small batches and networks (the same settings again on `--resume`, which may change only
//! `train.steps`), and counts of samples, iterations and epochs are capped. The shrinking is
//! the only change made to a documented command.
//!
//! **Checked.** Exit status 0, and every output it names exists afterwards: `--out`, `--run` (or
//! `runs/<experiment name>`), `--html`, `--json`, `--csv`, an evaluation's `report.json`; a folder
//! of samples holds one PNG per sample and one label line per sample.

#[path = "../../data/tests/common/mod.rs"]
mod data_files;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// README.md and every page of the book, in a fixed order.
fn pages() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut pages = vec![root().join("README.md")];
    let mut book = vec![];
    walk(&root().join("docs/src"), &mut book);
    book.sort();
    pages.extend(book);
    pages
}

/// One documented command: where it is, as written, and its arguments (after `mmlatent`).
#[derive(Clone, Debug)]
struct Documented {
    line: usize,
    text: String,
    args: Vec<String>,
}

/// The set-up line the suite itself is (skipped), and the prefix of one that runs the tool.
const SETUP: &str = "bash scripts/setup.sh";
const CARGO_RUN: &str = "cargo run --release --";

/// The commands of the `sh` blocks of a page, in order; an error for a line the suite cannot run.
fn commands_of(text: &str) -> Result<Vec<Documented>, String> {
    let mut out = vec![];
    let mut in_sh: Option<bool> = None;
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            in_sh = match in_sh {
                Some(_) => None,
                None => Some(info.trim().split([',', ' ']).next() == Some("sh")),
            };
            continue;
        }
        if in_sh != Some(true) {
            continue;
        }
        let line = strip_comment(raw).trim().to_string();
        let (start, joined) = match pending.take() {
            Some((start, head)) => (start, format!("{head} {line}")),
            None => (i + 1, line),
        };
        if let Some(head) = joined.strip_suffix('\\') {
            pending = Some((start, head.trim_end().to_string()));
            continue;
        }
        if joined.is_empty() {
            continue;
        }
        let mut command = joined.as_str();
        if let Some(rest) = command.strip_prefix(SETUP) {
            match rest.trim().strip_prefix("&&").map(str::trim) {
                None => continue,
                Some(rest) if rest.starts_with("cargo test") || rest.starts_with("cargo build") => continue,
                Some(rest) => command = rest,
            }
        }
        let args = if let Some(rest) = command.strip_prefix(CARGO_RUN) {
            tokenize(rest)?
        } else if let Some(rest) = command.strip_prefix("mmlatent ") {
            tokenize(rest)?
        } else {
            return Err(format!(
                "line {start}: `{joined}` is not an mmlatent command; put shell that the suite cannot run in a \
                 `bash` or `text` block"
            ));
        };
        out.push(Documented { line: start, text: joined.clone(), args });
    }
    Ok(out)
}

/// A line without its trailing `# comment` (a `#` outside quotes that follows a space).
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double, mut prev) = (false, false, ' ');
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev.is_whitespace() => return &line[..i],
            _ => {}
        }
        prev = c;
    }
    line
}

/// Splits a command line as a POSIX shell would for plain words, quotes and backslashes; shell
/// syntax the suite does not run (pipes, redirections, substitutions, `;`, `&&`) is an error.
fn tokenize(line: &str) -> Result<Vec<String>, String> {
    let mut words = vec![];
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err(format!("`{line}`: unterminated quote")),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => w.extend(chars.next()),
                        Some('$') | Some('`') => return Err(format!("`{line}`: substitutions are not run")),
                        Some(c) => w.push(c),
                        None => return Err(format!("`{line}`: unterminated quote")),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            '|' | '&' | ';' | '<' | '>' | '$' | '`' | '(' | ')' => {
                return Err(format!("`{line}`: shell syntax `{c}` is not run by the suite"))
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

/// The value of `--flag VALUE` or `--flag=VALUE` in `args`.
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let eq = format!("{flag}=");
    args.iter().enumerate().find_map(
        |(i, a)| {
            if a == flag {
                args.get(i + 1).map(String::as_str)
            } else {
                a.strip_prefix(&eq)
            }
        },
    )
}

/// `args` with `--flag`'s value replaced by `value` (or `--flag value` appended).
fn set_flag(args: &mut Vec<String>, flag: &str, value: String) {
    let eq = format!("{flag}=");
    if let Some(i) = args.iter().position(|a| a == flag) {
        if i + 1 < args.len() {
            args[i + 1] = value;
            return;
        }
    }
    if let Some(i) = args.iter().position(|a| a.starts_with(&eq)) {
        args[i] = format!("{flag}={value}");
        return;
    }
    args.extend([flag.to_string(), value]);
}

/// `--flag`'s numeric value capped at `max` when the command gives it.
fn cap_flag(args: &mut Vec<String>, flag: &str, max: u64) {
    if let Some(v) = flag_value(args, flag).and_then(|v| v.parse::<u64>().ok()) {
        set_flag(args, flag, v.min(max).to_string());
    }
}

/// `--flag`'s numeric value capped at `max`, or `--flag max` when the command leaves it out.
fn cap_or_set_flag(args: &mut Vec<String>, flag: &str, max: u64) {
    match flag_value(args, flag) {
        Some(_) => cap_flag(args, flag, max),
        None => set_flag(args, flag, max.to_string()),
    }
}

/// The positional arguments of a sub-command (words that are neither flags nor flag values;
/// every flag of these commands that takes no value is listed).
fn positionals(args: &[String]) -> Vec<String> {
    const SWITCHES: [&str; 3] = ["--resume", "--no-pytorch", "--help"];
    let mut out = vec![];
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
        } else if a.starts_with("--") {
            skip = !a.contains('=') && !SWITCHES.contains(&a.as_str());
        } else {
            out.push(a.clone());
        }
    }
    out
}

/// The model kind of an experiment file in `dir`.
fn model_kind(dir: &Path, config: &str) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(config)).ok()?;
    let table: toml::Table = toml::from_str(&text).ok()?;
    table.get("model")?.get("kind")?.as_str().map(str::to_string)
}

/// The `--set` settings that make a training command of `kind` take seconds: a few steps of
/// small batches, checkpoints on the way, small networks and cheap samplers. `resume`: a few
/// steps more than a first run.
fn quick_settings(kind: &str, resume: bool) -> Vec<String> {
    let mut sets: Vec<&str> = vec![
        "train.batch_size=16",
        "train.checkpoint_every=2",
        "train.log_every=1",
        "data.max_train=96",
        "data.max_test=48",
    ];
    sets.push(if resume { "train.steps=6" } else { "train.steps=4" });
    match kind {
        "mld" => sets.extend([
            "model.autoencoder.steps=4",
            "model.autoencoder.batch_size=16",
            "model.autoencoder.width=8",
            "model.score.width=64",
            "model.sampler.steps=4",
            "model.sampler.jump_length=2",
            "model.sampler.jump_n_sample=2",
        ]),
        "ebm" | "ebm-generalised" => sets.extend(["model.langevin_steps=4"]),
        _ => {}
    }
    sets.into_iter().map(String::from).collect()
}

/// The documented command `args` as the suite runs it in `dir` (see the module's "Sizes").
fn shrink(args: &[String], dir: &Path) -> Vec<String> {
    let mut out = args.to_vec();
    let with_sets = |out: &mut Vec<String>, sets: Vec<String>| {
        for s in sets {
            out.extend(["--set".to_string(), s]);
        }
    };
    match args.first().map(String::as_str) {
        Some("train") => {
            let config = positionals(&args[1..]).into_iter().next().unwrap_or_default();
            let kind = model_kind(dir, &config).unwrap_or_default();
            with_sets(&mut out, quick_settings(&kind, args.iter().any(|a| a == "--resume")));
        }
        Some("quickstart") => {
            with_sets(&mut out, quick_settings("mld", false));
            set_flag(&mut out, "--samples", "16".into());
            set_flag(&mut out, "--classifier-steps", "10".into());
        }
        Some("eval") => {
            cap_or_set_flag(&mut out, "--samples", 16);
            set_flag(&mut out, "--classifier-steps", "10".into());
            cap_or_set_flag(&mut out, "--fid-samples", 16);
            cap_flag(&mut out, "--steps", 4);
        }
        Some("classifier") => set_flag(&mut out, "--classifier-steps", "10".into()),
        Some("sample") => {
            cap_flag(&mut out, "--joint", 16);
            cap_flag(&mut out, "--limit", 8);
            cap_flag(&mut out, "--per-input", 4);
            cap_flag(&mut out, "--steps", 4);
        }
        Some("fid") => cap_or_set_flag(&mut out, "--max-images", 16),
        Some("bench") => {
            set_flag(&mut out, "--iters", "1".into());
            set_flag(&mut out, "--epochs", "0".into());
            set_flag(&mut out, "--batch", "16".into());
        }
        Some("data") if args.get(1).map(String::as_str) == Some("build") => {
            cap_flag(&mut out, "--train", 96);
            cap_flag(&mut out, "--test", 48);
            cap_flag(&mut out, "--max-per-class", 20);
            cap_flag(&mut out, "--dm", 2);
        }
        _ => {}
    }
    out
}

/// The paths a command says it writes, that must exist once it has run.
fn outputs(args: &[String], dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> =
        ["--out", "--html", "--json", "--csv"].iter().filter_map(|f| flag_value(args, f)).map(PathBuf::from).collect();
    match args.first().map(String::as_str) {
        Some("train") => {
            let run = flag_value(args, "--run").map(PathBuf::from).unwrap_or_else(|| {
                let config = positionals(&args[1..]).into_iter().next().unwrap_or_default();
                let name = std::fs::read_to_string(dir.join(&config))
                    .ok()
                    .and_then(|t| t.parse::<toml::Table>().ok())
                    .and_then(|t| t.get("name").and_then(|n| n.as_str()).map(str::to_string))
                    .unwrap_or_else(|| Path::new(&config).file_stem().unwrap().to_string_lossy().into_owned());
                Path::new("runs").join(name)
            });
            out.push(run.join("config.toml"));
            out.push(run.join("metrics.jsonl"));
        }
        Some("quickstart") => out.push(PathBuf::from(flag_value(args, "--out").unwrap_or("runs/quickstart"))),
        Some("eval") => {
            if let Some(run) = positionals(&args[1..]).first() {
                out.push(Path::new(run).join("eval"));
            }
        }
        _ => {}
    }
    out
}

/// For `sample … --out DIR` (a folder): the number of samples it must hold, one PNG per sample in
/// `DIR/m0/` and one line per sample in `DIR/labels.txt` (`--joint N`, `--per-input N` per given
/// file, or `--limit N` tuples of a split of at least N).
fn expected_samples(args: &[String]) -> Option<usize> {
    if args.first().map(String::as_str) != Some("sample") || flag_value(args, "--out")?.ends_with(".png") {
        return None;
    }
    let value = |flag: &str, default: usize| flag_value(args, flag).map_or(Some(default), |v| v.parse().ok());
    match (flag_value(args, "--joint"), flag_value(args, "--given")) {
        (Some(n), _) => n.parse().ok(),
        (None, Some(given)) if given.contains('=') => value("--per-input", 8),
        (None, Some(_)) => value("--limit", 100),
        _ => None,
    }
}

/// Checks a sample folder `dir` against [`expected_samples`].
fn check_sample_folder(dir: &Path, n: usize) -> Result<(), String> {
    let pngs = std::fs::read_dir(dir.join("m0"))
        .map_err(|e| format!("{}: {e}", dir.join("m0").display()))?
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "png")))
        .count();
    let labels = std::fs::read_to_string(dir.join("labels.txt")).map_err(|e| format!("labels.txt: {e}"))?;
    if pngs != n || labels.lines().count() != n {
        return Err(format!(
            "{} holds {pngs} PNGs in m0/ and {} labels, not {n}",
            dir.display(),
            labels.lines().count()
        ));
    }
    Ok(())
}

/// Shared, slow fixtures: random Inception weights, short runs of `configs/<name>.toml` trained
/// once, and the classifiers cache (`MMLATENT_CACHE`).
struct Shared {
    dir: tempfile::TempDir,
    runs: Mutex<BTreeMap<String, Result<PathBuf, String>>>,
}

impl Shared {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let inception = mmlatent_eval::inception::InceptionV3::new(tch::Device::Cpu);
        inception.save(&dir.path().join("pt_inception-2015-12-05.safetensors")).unwrap();
        let trained = dir.path().join("trained");
        std::fs::create_dir_all(&trained).unwrap();
        write_inputs(&trained, &[]);
        Self { dir, runs: Mutex::new(BTreeMap::new()) }
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// `runs/<name>` trained (once) from `configs/<name>.toml`, copied into `dir`.
    fn supply_run(&self, name: &str, dir: &Path) -> Result<(), String> {
        let mut runs = self.runs.lock().unwrap();
        let trained = self.dir.path().join("trained");
        let result = runs
            .entry(name.to_string())
            .or_insert_with(|| {
                let config = format!("configs/{name}.toml");
                if !trained.join(&config).is_file() {
                    return Err(format!("runs/{name} is used but never trained, and there is no {config} to train it"));
                }
                let args: Vec<String> = ["train", &config, "--run", &format!("runs/{name}")].map(String::from).to_vec();
                supply_data(self, &args, &trained)?;
                run(self, &shrink(&args, &trained), &trained).map(|_| trained.join("runs").join(name))
            })
            .clone()?;
        let target = dir.join("runs").join(name);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        copy_dir(&result, &target);
        Ok(())
    }
}

/// `cp -a src dst`.
fn copy_dir(src: &Path, dst: &Path) {
    let status = Command::new("cp").arg("-a").arg(src).arg(dst).status().unwrap();
    assert!(status.success(), "cannot copy {} to {}", src.display(), dst.display());
}

/// Runs `mmlatent args` in `dir`; its output on success, else a message with its stderr.
fn run(shared: &Shared, args: &[String], dir: &Path) -> Result<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_mmlatent"))
        .args(args)
        .current_dir(dir)
        .env("MMLATENT_CACHE", shared.cache())
        .env_remove("MMLATENT_FAULT")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned() + &stderr)
    } else {
        let tail: Vec<&str> = stderr.lines().rev().take(25).collect::<Vec<_>>().into_iter().rev().collect();
        Err(format!("exit status {}; ran `mmlatent {}`:\n{}", out.status, args.join(" "), tail.join("\n")))
    }
}

/// The inputs every page starts with (see the module's doc), written into `dir`.
fn write_inputs(dir: &Path, shared_files: &[(&Path, &str)]) {
    copy_dir(&root().join("configs"), &dir.join("configs"));
    data_files::write_mnist_dir(&dir.join("fashion-mnist"), 120, 60);
    data_files::write_mnist_dir(&dir.join("mnist"), 120, 60);
    std::fs::create_dir_all(dir.join("svhn")).unwrap();
    data_files::write_svhn_dir(&dir.join("svhn"), 120, 60);
    data_files::write_rgb_png(&dir.join("digit.png"), 28, 28, 3);
    for (folder, seed) in [("real_pngs", 0), ("fake_pngs", 50)] {
        std::fs::create_dir_all(dir.join(folder)).unwrap();
        for i in 0..12 {
            data_files::write_rgb_png(&dir.join(folder).join(format!("{i}.png")), 28, 28, seed + i);
        }
    }
    for (src, name) in shared_files {
        std::os::unix::fs::symlink(src, dir.join(name)).unwrap();
    }
}

/// A photograph stood in for: an RGB image of 64×64 with some structure, PNG or JPEG by name.
fn write_photo(path: &Path, seed: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let img = image::RgbImage::from_fn(64, 64, |x, y| {
        let v = |k: usize| ((x as usize * (3 + k) + y as usize * (5 + seed) + seed * 40 + k * 70) % 256) as u8;
        image::Rgb([v(0), v(1), v(2)])
    });
    img.save(path).unwrap();
}

/// The reference configs' data folders, built tiny with the tool itself (PolyMNIST, MNIST-SVHN)
/// or written directly (CUB), when `args` uses their configs and `dir` does not hold them.
fn supply_data(shared: &Shared, args: &[String], dir: &Path) -> Result<(), String> {
    for a in args {
        let needs = |prefix: &str| a.starts_with(&format!("configs/{prefix}-"));
        if needs("polymnist") && !dir.join("data/PolyMNIST").exists() {
            let photos: Vec<String> = (0..5).map(|k| format!("photos/poly{k}.png")).collect();
            for (k, p) in photos.iter().enumerate() {
                write_photo(&dir.join(p), 100 + k);
            }
            let mut build: Vec<String> =
                ["data", "build", "polymnist", "--source", "fashion-mnist", "--out", "data/PolyMNIST", "--backgrounds"]
                    .map(String::from)
                    .to_vec();
            build.extend(photos);
            run(shared, &build, dir)?;
        }
        if needs("mnist-svhn") && !dir.join("data/mnist-svhn").exists() {
            let build = [
                "data",
                "build",
                "mnist-svhn",
                "--mnist",
                "mnist",
                "--svhn",
                "svhn",
                "--out",
                "data/mnist-svhn",
                "--dm",
                "2",
            ];
            run(shared, &build.map(String::from), dir)?;
        }
        if needs("cub") && !dir.join("data/cub").exists() {
            write_cub(&dir.join("data/cub"));
        }
    }
    Ok(())
}

/// A small CUB folder (MMVAE layout): two classes of 12 training images, one class of 8 test
/// images, 10 captions each.
fn write_cub(dir: &Path) {
    let mut captions = BTreeMap::new();
    for (split, classes, n, file) in [
        ("train", ["001.Red_bird", "002.Blue_bird"].as_slice(), 12, "text_trainvalclasses.txt"),
        ("test", &["003.Grey_bird"], 8, "text_testclasses.txt"),
    ] {
        let mut text = String::new();
        for (c, class) in classes.iter().enumerate() {
            let folder = dir.join(split).join(class);
            std::fs::create_dir_all(&folder).unwrap();
            for i in 0..n {
                data_files::write_rgb_png(&folder.join(format!("{i:03}.png")), 64, 64, c * 31 + i);
                for j in 0..10 {
                    text += &format!(
                        "this bird has a {} crown and short wings number {j}\n",
                        class.split('.').nth(1).unwrap()
                    );
                }
            }
        }
        captions.insert(file, text);
    }
    for (file, text) in captions {
        std::fs::write(dir.join(file), text).unwrap();
    }
}

/// Supplies what the command `args` reads but the page has not made: photos, data folders and
/// trained runs (see the module's doc).
fn supply_inputs(shared: &Shared, args: &[String], dir: &Path) -> Result<(), String> {
    for (i, a) in args.iter().enumerate() {
        if a.starts_with("photos/") && !dir.join(a).exists() {
            write_photo(&dir.join(a), i);
        }
    }
    supply_data(shared, args, dir)?;
    // Runs the command reads: positional run folders of the commands that open runs, and the
    // value of --autoencoders-from.
    let opens_runs = matches!(args.first().map(String::as_str), Some("sample" | "eval" | "report" | "runs"));
    let mut candidates: Vec<String> = if opens_runs { positionals(&args[1..]) } else { vec![] };
    candidates.extend(flag_value(args, "--autoencoders-from").map(str::to_string));
    for candidate in candidates {
        let path = candidate.trim_end_matches('/');
        if let Some(name) = path.strip_prefix("runs/").filter(|n| !n.is_empty() && !n.contains('/')) {
            if !dir.join(path).exists() {
                shared.supply_run(name, dir)?;
            }
        }
    }
    Ok(())
}

/// Runs the documented commands of one page in a fresh folder; the failures, one message each.
fn run_page(shared: &Shared, page: &Path) -> Vec<String> {
    let name = page.strip_prefix(root()).unwrap_or(page).display().to_string();
    let text = std::fs::read_to_string(page).unwrap();
    let commands = match commands_of(&text) {
        Ok(c) => c,
        Err(e) => return vec![format!("{name}: {e}")],
    };
    if commands.is_empty() {
        return vec![];
    }
    let sandbox = tempfile::tempdir().unwrap();
    let dir = sandbox.path();
    let weights = shared.dir.path().join("pt_inception-2015-12-05.safetensors");
    write_inputs(dir, &[(&weights, "pt_inception-2015-12-05.safetensors")]);
    let mut failures = vec![];
    for c in &commands {
        let started = std::time::Instant::now();
        let result = supply_inputs(shared, &c.args, dir).and_then(|()| {
            let args = shrink(&c.args, dir);
            run(shared, &args, dir)?;
            let missing: Vec<String> = outputs(&c.args, dir)
                .into_iter()
                .filter(|p| !dir.join(p).exists())
                .map(|p| p.display().to_string())
                .collect();
            if !missing.is_empty() {
                return Err(format!("it ran, but did not write {}", missing.join(", ")));
            }
            if let (Some(n), Some(out)) = (expected_samples(&args), flag_value(&args, "--out")) {
                check_sample_folder(&dir.join(out), n)?;
            }
            Ok(())
        });
        eprintln!("{name}:{} ({:.1} s) {}", c.line, started.elapsed().as_secs_f64(), c.text);
        if let Err(e) = result {
            failures.push(format!("{name}:{}: `{}`\n{e}", c.line, c.text));
        }
    }
    failures
}

/// The README's two set-up commands are there as the suite and CI run them.
#[test]
fn the_readme_shows_the_two_setup_commands() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    for command in [
        "bash scripts/setup.sh && cargo run --release -- quickstart",
        "bash scripts/setup.sh && cargo test --workspace",
    ] {
        assert!(readme.contains(command), "README.md no longer shows `{command}`");
    }
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    assert!(ci.contains("cargo test --workspace"), ".ci/run does not run the README's test command");
}

/// The harness's own reading of blocks, lines and sizes.
#[test]
fn documented_blocks_are_read_as_a_shell_would() {
    let page = "text\n```sh\nmmlatent train configs/default-mld.toml --set train.steps=2000   # a comment\n\
                mmlatent sample runs/x \\\n  --joint 16 --out 'a b.png'\n```\n```text\nnot run\n```\n\
                ```sh\nbash scripts/setup.sh && cargo run --release -- quickstart\nbash scripts/setup.sh && cargo test --workspace\n```\n";
    let commands = commands_of(page).unwrap();
    let args: Vec<Vec<String>> = commands.iter().map(|c| c.args.clone()).collect();
    assert_eq!(args[0], ["train", "configs/default-mld.toml", "--set", "train.steps=2000"]);
    assert_eq!(args[1], ["sample", "runs/x", "--joint", "16", "--out", "a b.png"]);
    assert_eq!(args[2], ["quickstart"]);
    assert_eq!((commands.len(), commands[1].line), (3, 4));
    assert!(commands_of("```sh\nls runs | head\n```\n").unwrap_err().contains("not an mmlatent command"));
    assert!(commands_of("```sh\nmmlatent runs | head\n```\n").unwrap_err().contains("shell syntax"));
    let dir = tempfile::tempdir().unwrap();
    let sample: Vec<String> = ["sample", "runs/x", "--joint", "1000", "--out", "j/"].map(String::from).to_vec();
    assert_eq!(shrink(&sample, dir.path())[3], "16");
    assert_eq!(outputs(&sample, dir.path()), [PathBuf::from("j/")]);
    assert_eq!(expected_samples(&shrink(&sample, dir.path())), Some(16));
    let from_file: Vec<String> = ["sample", "runs/x", "--given", "m0=d.png", "--out", "f/"].map(String::from).to_vec();
    assert_eq!(expected_samples(&from_file), Some(8));
    assert_eq!(
        positionals(&["runs/a".into(), "--html".into(), "r.html".into(), "runs/b".into()]),
        ["runs/a", "runs/b"]
    );
}

/// Every documented command, page by page (see the module's doc).
#[test]
fn every_documented_command_runs() {
    let shared = Shared::new();
    let mut seen = HashSet::new();
    let mut failures = vec![];
    let mut count = 0;
    for page in pages() {
        if !seen.insert(page.clone()) {
            continue;
        }
        count += commands_of(&std::fs::read_to_string(&page).unwrap()).map_or(0, |c| c.len());
        failures.extend(run_page(&shared, &page));
    }
    assert!(count > 10, "only {count} documented commands found: are the pages there?");
    assert!(
        failures.is_empty(),
        "{} of {count} documented commands failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
