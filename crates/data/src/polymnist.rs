//! PolyMNIST (Sutter et al., 2021): folders `{train,test}/m{k}/{i}.{label}.png`, one folder per
//! modality, each image 3×28×28; the files `i` of every `m{k}` form tuple `i` and share its label.
//! An optional `classes.txt` (one class name a line) names the classes; without it there are 10.
//!
//! Also the PolyMNIST recipe that builds such a dataset from grey items (IDX) and background
//! images: modality k places an item of the tuple's class, binarised at > 128, on a random
//! crop of background k, and inverts the background's colour where the item is. Tuples share
//! only the label: every modality draws its own instance of the class.

use crate::image_file::Colour;
use crate::rng::SplitMix64;
use crate::{fsutil, idx, image_file};
use anyhow::{bail, ensure, Context, Result};
use mmlatent_core::dataset::{MultimodalDataset, Split};
use mmlatent_core::ModalitySpec;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// The file naming the classes of a PolyMNIST-format folder.
pub const CLASSES_FILE: &str = "classes.txt";

/// The label in the file names of samples that have none (joint samples: `{i}.-1.png`).
pub const UNLABELLED: i64 = -1;

/// True when `dir` has the PolyMNIST layout.
pub fn is_polymnist_dir(dir: &Path) -> bool {
    dir.join("train").join("m0").is_dir() || dir.join("test").join("m0").is_dir()
}

/// The files of one modality folder: index → (label, path), from names `{i}.{label}.png`.
fn list_modality(dir: &Path) -> Result<BTreeMap<usize, (i64, PathBuf)>> {
    let mut files = BTreeMap::new();
    for path in fsutil::list_dir(dir)? {
        let name = fsutil::file_name(&path);
        let parts: Vec<&str> = name.split('.').collect();
        let parsed = match parts.as_slice() {
            [i, label, ext] if ext.eq_ignore_ascii_case("png") => {
                i.parse::<usize>().ok().zip(label.parse::<i64>().ok())
            }
            _ => None,
        };
        let Some((i, label)) = parsed else {
            bail!("{}: not a PolyMNIST file name (expected {{index}}.{{label}}.png)", path.display());
        };
        if files.insert(i, (label, path.clone())).is_some() {
            bail!("{}: a second file for tuple {i} in {}", path.display(), dir.display());
        }
    }
    Ok(files)
}

/// The modality folders `m0, m1, ...` of a split folder, which must be numbered without gaps.
fn modality_dirs(split_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut ks: Vec<usize> = vec![];
    for path in fsutil::list_dir(split_dir)? {
        if let Some(k) = fsutil::file_name(&path).strip_prefix('m').and_then(|k| k.parse().ok()) {
            if path.is_dir() {
                ks.push(k);
            }
        }
    }
    ks.sort();
    ensure!(!ks.is_empty(), "{}: no modality folders m0, m1, ...", split_dir.display());
    if let Some(missing) = (0..ks.len()).find(|&k| ks[k] != k) {
        bail!("{}: modality folder m{missing} is missing (found m{ks:?})", split_dir.display());
    }
    Ok(ks.iter().map(|k| split_dir.join(format!("m{k}"))).collect())
}

/// Reads the class names of `dir`, or 10 numbered classes.
fn read_class_names(dir: &Path) -> Result<Vec<String>> {
    let path = dir.join(CLASSES_FILE);
    if !path.exists() {
        return Ok((0..10).map(|k| k.to_string()).collect());
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}: cannot read", path.display()))?;
    let names: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    ensure!(!names.is_empty(), "{}: no class names", path.display());
    Ok(names)
}

/// One split folder: the image tensors of every modality (`u8 [N, C, H, W]`), the labels, and
/// the image shape found.
fn load_split(
    split_dir: &Path,
    num_classes: i64,
    shape: Option<(usize, usize, usize)>,
) -> Result<(Split, (usize, usize, usize))> {
    load_split_labelled(split_dir, num_classes, shape, false)
}

/// Reads one split folder `m{k}/{i}.{label}.png` on its own — e.g. what `mmlatent sample --out`
/// writes — with the labels of the file names, [`UNLABELLED`] allowed. Images keep the first
/// files' size, 3 channels.
pub fn load_split_folder(dir: &Path, num_classes: i64) -> Result<Split> {
    Ok(load_split_labelled(dir, num_classes, None, true)?.0)
}

fn load_split_labelled(
    split_dir: &Path,
    num_classes: i64,
    shape: Option<(usize, usize, usize)>,
    allow_unlabelled: bool,
) -> Result<(Split, (usize, usize, usize))> {
    let dirs = modality_dirs(split_dir)?;
    let listings = dirs.iter().map(|d| list_modality(d)).collect::<Result<Vec<_>>>()?;
    let reference = &listings[0];
    ensure!(!reference.is_empty(), "{}: no images", dirs[0].display());
    for (k, listing) in listings.iter().enumerate().skip(1) {
        if listing.len() != reference.len() || !listing.keys().eq(reference.keys()) {
            let missing = reference.keys().find(|i| !listing.contains_key(i));
            let extra = listing.keys().find(|i| !reference.contains_key(i));
            bail!(
                "modality count mismatch: {} has {} files but {} has {}{}",
                dirs[0].display(),
                reference.len(),
                dirs[k].display(),
                listing.len(),
                match (missing, extra) {
                    (Some(i), _) => format!(" (tuple {i} is missing from m{k})"),
                    (_, Some(i)) => format!(" (tuple {i} exists only in m{k})"),
                    _ => String::new(),
                }
            );
        }
        for (i, (label, path)) in listing {
            let (expected, _) = &reference[i];
            ensure!(
                label == expected,
                "{}: label {label} differs from the label {expected} of tuple {i} in m0",
                path.display()
            );
        }
    }
    for (label, path) in reference.values().filter(|(l, _)| !(allow_unlabelled && *l == UNLABELLED)) {
        ensure!((0..num_classes).contains(label), "{}: label {label} is out of range 0..{num_classes}", path.display());
    }
    // The image shape: given (from the other split), or that of the first image (3 channels).
    let shape = match shape {
        Some(s) => s,
        None => {
            // The size most of the first three images share, so that one odd first file is the
            // one reported rather than every good file after it.
            let mut sizes = vec![];
            for (_, path) in reference.values().take(3) {
                let img = image_file::decode(path)?;
                sizes.push((img.height() as usize, img.width() as usize));
            }
            let (h, w) = sizes
                .iter()
                .copied()
                .rev()
                .max_by_key(|s| sizes.iter().filter(|t| *t == s).count())
                .expect("non-empty");
            (3, h, w)
        }
    };
    let (c, h, w) = shape;
    let n = reference.len();
    let items = listings
        .iter()
        .zip(&dirs)
        .map(|(listing, dir)| {
            let paths: Vec<&PathBuf> = listing.values().map(|(_, p)| p).collect();
            let images: Vec<(Vec<u8>, Colour)> =
                paths.par_iter().map(|p| image_file::read_u8(p, c, h, w)).collect::<Result<_>>()?;
            check_colours(dir, &paths, images.iter().map(|(_, colour)| *colour))?;
            let bytes: Vec<u8> = images.into_iter().flat_map(|(b, _)| b).collect();
            Ok(Tensor::from_slice(&bytes).view([n as i64, c as i64, h as i64, w as i64]))
        })
        .collect::<Result<Vec<_>>>()?;
    let labels: Vec<i64> = reference.values().map(|(l, _)| *l).collect();
    Ok((Split { items, labels: Tensor::from_slice(&labels) }, shape))
}

/// The images of one modality folder are read as RGB. One kind of file throughout is read as
/// it is, greyscale copied to the three channels and an alpha channel dropped, each with one
/// warning; a folder that mixes kinds (a stray greyscale or RGBA file among RGB ones) is
/// refused, naming a file of the rarer kind and the counts.
fn check_colours(dir: &Path, paths: &[&PathBuf], colours: impl Iterator<Item = Colour>) -> Result<()> {
    let mut counts: std::collections::BTreeMap<Colour, (usize, usize)> = Default::default();
    for (i, colour) in colours.enumerate() {
        counts.entry(colour).or_insert((0, i)).0 += 1;
    }
    let example = |first: usize| paths[first].display().to_string();
    if counts.len() > 1 {
        let (rare, (count, first)) = counts.iter().min_by_key(|(_, (n, _))| *n).expect("two kinds");
        let mix: Vec<String> = counts.iter().map(|(k, (n, _))| format!("{n} {}", k.describe())).collect();
        bail!(
            "{}: mixes {} images; {count} {} (e.g. {}) among the others: convert them to one kind (RGB)",
            dir.display(),
            mix.join(", "),
            rare.describe(),
            example(*first)
        );
    }
    if let Some((&colour, &(count, first))) = counts.iter().next() {
        let what = match colour {
            Colour::Rgb => return Ok(()),
            Colour::Grey => "greyscale, read as RGB (grey in every channel)",
            Colour::GreyAlpha => "greyscale with an alpha channel, read as RGB without it",
            Colour::Rgba => "RGBA, read as RGB without the alpha channel",
        };
        eprintln!("warning: {}: all {count} images are {what} (e.g. {})", dir.display(), example(first));
    }
    Ok(())
}

/// Loads a PolyMNIST-format folder.
pub fn load(dir: &Path) -> Result<MultimodalDataset> {
    let class_names = read_class_names(dir)?;
    let num_classes = class_names.len() as i64;
    let (train, shape) = load_split(&dir.join("train"), num_classes, None)?;
    let (test, _) = load_split(&dir.join("test"), num_classes, Some(shape))?;
    ensure!(
        train.items.len() == test.items.len(),
        "modality count mismatch: {} has {} modalities but {} has {}",
        dir.join("train").display(),
        train.items.len(),
        dir.join("test").display(),
        test.items.len()
    );
    let (c, h, w) = shape;
    let k = train.items.len();
    Ok(MultimodalDataset {
        name: "polymnist".into(),
        modalities: (0..k).map(|m| ModalitySpec::image(&format!("m{m}"), c as i64, h as i64, w as i64)).collect(),
        num_classes,
        class_names,
        vocabularies: vec![None; k],
        train,
        test,
    })
}

/// Writes an image-only dataset in PolyMNIST format (`{train,test}/m{k}/{i}.{label}.png` and
/// `classes.txt`). Returns the number of files written.
pub fn write(dataset: &MultimodalDataset, dir: &Path) -> Result<usize> {
    ensure!(
        dataset.modalities.iter().all(|m| m.is_image()),
        "dataset {}: PolyMNIST format holds images only",
        dataset.name
    );
    for split in ["train", "test"] {
        let folder = dir.join(split);
        if folder.is_dir() && fsutil::list_dir(&folder)?.into_iter().next().is_some() {
            bail!("{}: already holds a dataset; write to a new or empty folder", folder.display());
        }
    }
    let mut written = 0;
    for (split_name, split) in [("train", &dataset.train), ("test", &dataset.test)] {
        let labels = mmlatent_core::host::to_vec::<i64>(&split.labels)?;
        for (k, (items, spec)) in split.items.iter().zip(&dataset.modalities).enumerate() {
            let folder = dir.join(split_name).join(format!("m{k}"));
            std::fs::create_dir_all(&folder).with_context(|| format!("{}: cannot create", folder.display()))?;
            let shape = spec.item_shape();
            let (c, h, w) = (shape[0] as usize, shape[1] as usize, shape[2] as usize);
            let bytes = mmlatent_core::host::to_vec::<u8>(items)?;
            bytes.par_chunks_exact(c * h * w).zip(labels.par_iter()).enumerate().try_for_each(
                |(i, (chw, label))| image_file::write_png(&folder.join(format!("{i}.{label}.png")), chw, c, h, w),
            )?;
            written += labels.len();
        }
    }
    let classes = dir.join(CLASSES_FILE);
    std::fs::write(&classes, dataset.class_names.join("\n") + "\n")
        .with_context(|| format!("{}: cannot write", classes.display()))?;
    Ok(written)
}

/// An RGB background image (`height × width × 3` bytes, row-major) to crop from.
#[derive(Clone, Debug)]
pub struct Background {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Background {
    /// Reads a background image file (any size at least that of the items).
    pub fn read(path: &Path) -> Result<Self> {
        let img = image_file::decode(path)?.to_rgb8();
        Ok(Self { width: img.width() as usize, height: img.height() as usize, rgb: img.into_raw() })
    }
}

/// The PolyMNIST recipe for one item: `item` (grey, `h × w`) binarised at > 128 is drawn on the
/// `h × w` crop of `background` at (`x0`, `y0`) by inverting the crop's colour (v ↦ 255 − v)
/// where the item is; writes `[3, h, w]` bytes into `out`.
pub fn compose(item: &[u8], h: usize, w: usize, background: &Background, x0: usize, y0: usize, out: &mut [u8]) {
    let plane = h * w;
    for y in 0..h {
        for x in 0..w {
            let p = y * w + x;
            let src = ((y0 + y) * background.width + x0 + x) * 3;
            let on = item[p] > 128;
            for c in 0..3 {
                let v = background.rgb[src + c];
                out[c * plane + p] = if on { 255 - v } else { v };
            }
        }
    }
}

/// Builds `n` PolyMNIST tuples from the items `subset` of `source`, one modality per background.
/// Tuple i takes `subset[i mod |subset|]` in modality 0 and, in every other modality, a random
/// item of the same class from `subset`; every modality crops its background at random. Each
/// tuple and modality has its own random stream, so the result does not depend on threads.
pub fn compose_split(
    source: &idx::ImageSet,
    subset: &[usize],
    n: usize,
    backgrounds: &[Background],
    seed: u64,
) -> Result<Split> {
    ensure!(!subset.is_empty(), "no source items to build from");
    let (h, w) = (source.height, source.width);
    for (k, b) in backgrounds.iter().enumerate() {
        ensure!(
            b.width >= w && b.height >= h,
            "background {k} is {}×{}, smaller than the {w}×{h} items",
            b.width,
            b.height
        );
    }
    let mut pools: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for &i in subset {
        pools.entry(source.labels[i]).or_default().push(i);
    }
    let labels: Vec<i64> = (0..n).map(|i| source.labels[subset[i % subset.len()]]).collect();
    let per = 3 * h * w;
    let items = backgrounds
        .iter()
        .enumerate()
        .map(|(k, bg)| {
            let mut bytes = vec![0u8; n * per];
            bytes.par_chunks_exact_mut(per).enumerate().for_each(|(i, out)| {
                let mut rng = SplitMix64::stream(seed, (i * backgrounds.len() + k) as u64);
                let base = subset[i % subset.len()];
                let item = if k == 0 {
                    base
                } else {
                    let pool = &pools[&source.labels[base]];
                    pool[rng.below(pool.len())]
                };
                let (x0, y0) = (rng.below(bg.width - w + 1), rng.below(bg.height - h + 1));
                compose(source.image(item), h, w, bg, x0, y0, out);
            });
            Tensor::from_slice(&bytes).view([n as i64, 3, h as i64, w as i64])
        })
        .collect();
    Ok(Split { items, labels: Tensor::from_slice(&labels) })
}

/// What [`build`] made.
#[derive(Debug, serde::Serialize)]
pub struct BuildSummary {
    pub train: usize,
    pub test: usize,
    pub modalities: usize,
    pub files: usize,
}

/// Builds a PolyMNIST-format dataset in `out` from the IDX folder `source` (its train and test
/// splits) and one background image per modality. `n_train` / `n_test` default to the source's
/// split sizes (items are reused, with new crops and partners, when more are asked).
pub fn build(
    source: &Path,
    backgrounds: &[PathBuf],
    out: &Path,
    n_train: Option<usize>,
    n_test: Option<usize>,
    seed: u64,
) -> Result<BuildSummary> {
    ensure!(!backgrounds.is_empty(), "at least one background image is needed (one per modality)");
    let bgs = backgrounds.iter().map(|p| Background::read(p)).collect::<Result<Vec<_>>>()?;
    let train_src = idx::read_split(source, "train")?;
    let test_src = idx::read_split(source, "test")?;
    let make = |src: &idx::ImageSet, n: Option<usize>, stream: u64| {
        let subset: Vec<usize> = (0..src.len()).collect();
        compose_split(src, &subset, n.unwrap_or(src.len()), &bgs, SplitMix64::stream(seed, stream).next_u64())
    };
    let train = make(&train_src, n_train, 0)?;
    let test = make(&test_src, n_test, 1)?;
    let (h, w) = (train_src.height as i64, train_src.width as i64);
    let dataset = MultimodalDataset {
        name: "polymnist".into(),
        modalities: (0..bgs.len()).map(|k| ModalitySpec::image(&format!("m{k}"), 3, h, w)).collect(),
        num_classes: 10,
        class_names: (0..10).map(|k| k.to_string()).collect(),
        vocabularies: vec![None; bgs.len()],
        train,
        test,
    };
    dataset.check()?;
    let files = write(&dataset, out)?;
    Ok(BuildSummary { train: dataset.train.len(), test: dataset.test.len(), modalities: bgs.len(), files })
}
