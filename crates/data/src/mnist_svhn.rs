//! MNIST-SVHN: pairs of an MNIST digit and an SVHN digit of the same class, built as in
//! MMVAE/MoPoE/MLD. Per class c, with the items of c listed in index order on each side, take
//! the first n = min(#MNIST_c, #SVHN_c, max_per_class) of each, then append `dm` random
//! permutations of each side's n items (dm = 20 in MoPoE and MLD, 30 in MMVAE): each side's
//! item appears dm times, paired with random partners of its class.
//!
//! The pairing is seeded and stored in the output folder as IDX `i32` index files
//! (`{train,test}-ms-{mnist,svhn}.idx`) next to `mnist-svhn.json`, which records where the
//! MNIST and SVHN sources are. Loading gives two modalities: `mnist` 1×28×28, `svhn` 3×32×32.

use crate::rng::SplitMix64;
use crate::{idx, svhn};
use anyhow::{ensure, Context, Result};
use mmlatent_core::dataset::{MultimodalDataset, Split};
use mmlatent_core::ModalitySpec;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::Tensor;

/// The manifest of a built MNIST-SVHN folder.
pub const MANIFEST: &str = "mnist-svhn.json";
/// The reference's cap on items per class (MMVAE's `max_d`).
pub const DEFAULT_MAX_PER_CLASS: usize = 10_000;

/// What `mnist-svhn.json` records.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The MNIST IDX folder and the SVHN `.mat` folder (relative paths are relative to the manifest's folder).
    pub mnist: PathBuf,
    pub svhn: PathBuf,
    pub dm: usize,
    pub max_per_class: usize,
    pub seed: u64,
    pub train_pairs: usize,
    pub test_pairs: usize,
}

/// True when `dir` is a built MNIST-SVHN folder.
pub fn is_mnist_svhn_dir(dir: &Path) -> bool {
    dir.join(MANIFEST).is_file()
}

/// The index file of `side` (`mnist` or `svhn`) of `split`.
pub fn index_file(dir: &Path, split: &str, side: &str) -> PathBuf {
    dir.join(format!("{split}-ms-{side}.idx"))
}

/// Pairs items by label (see the module doc): returns the MNIST and the SVHN index of each pair.
pub fn pair_by_label(
    mnist_labels: &[i64],
    svhn_labels: &[i64],
    dm: usize,
    max_per_class: usize,
    rng: &mut SplitMix64,
) -> (Vec<i64>, Vec<i64>) {
    let (mut left, mut right) = (vec![], vec![]);
    let classes = mnist_labels.iter().chain(svhn_labels).copied().max().map_or(0, |m| m + 1);
    for c in 0..classes {
        let of_class = |labels: &[i64]| -> Vec<i64> {
            labels.iter().enumerate().filter(|(_, &l)| l == c).map(|(i, _)| i as i64).collect()
        };
        let (m, s) = (of_class(mnist_labels), of_class(svhn_labels));
        let n = m.len().min(s.len()).min(max_per_class);
        for _ in 0..dm {
            left.extend(rng.permutation(n).into_iter().map(|i| m[i]));
            right.extend(rng.permutation(n).into_iter().map(|i| s[i]));
        }
    }
    (left, right)
}

/// Builds the pairing of the MNIST folder `mnist` and the SVHN folder `svhn` into `out`.
pub fn build(
    mnist: &Path,
    svhn_dir: &Path,
    out: &Path,
    dm: usize,
    max_per_class: usize,
    seed: u64,
) -> Result<Manifest> {
    ensure!(dm > 0, "dm must be at least 1");
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let absolute = |p: &Path| p.canonicalize().with_context(|| format!("{}: folder not found", p.display()));
    let (mnist, svhn_dir) = (absolute(mnist)?, absolute(svhn_dir)?);
    let mut counts = [0; 2];
    for (s, split) in ["train", "test"].into_iter().enumerate() {
        let m = idx::read_split(&mnist, split)?;
        let v = svhn::read(&svhn::split_file(&svhn_dir, split))?;
        let mut rng = SplitMix64::stream(seed, s as u64);
        let (left, right) = pair_by_label(&m.labels, &v.labels, dm, max_per_class, &mut rng);
        ensure!(
            !left.is_empty(),
            "no class has items in both {} and {} ({split})",
            mnist.display(),
            svhn_dir.display()
        );
        idx::write_indices(&index_file(out, split, "mnist"), &left)?;
        idx::write_indices(&index_file(out, split, "svhn"), &right)?;
        counts[s] = left.len();
    }
    let manifest =
        Manifest { mnist, svhn: svhn_dir, dm, max_per_class, seed, train_pairs: counts[0], test_pairs: counts[1] };
    let path = out.join(MANIFEST);
    std::fs::write(&path, serde_json::to_string_pretty(&manifest)?)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(manifest)
}

/// Reads the index file of one side and checks it against the source's size.
fn read_side(dir: &Path, split: &str, side: &str, source_len: usize) -> Result<Tensor> {
    let path = index_file(dir, split, side);
    let ids = idx::read_indices(&path)?;
    if let Some((p, &i)) = ids.iter().enumerate().find(|(_, &i)| i < 0 || i as usize >= source_len) {
        anyhow::bail!(
            "{}: pair {p} points to item {i}, out of range 0..{source_len} of the {side} {split} set",
            path.display()
        );
    }
    Ok(Tensor::from_slice(&ids))
}

/// Loads a built MNIST-SVHN folder: the sources named by its manifest, paired by its index files.
pub fn load(dir: &Path) -> Result<MultimodalDataset> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}: cannot read", path.display()))?;
    let manifest: Manifest =
        serde_json::from_str(&text).with_context(|| format!("{}: malformed manifest", path.display()))?;
    let (mnist, svhn_dir) = (dir.join(&manifest.mnist), dir.join(&manifest.svhn));
    let mut splits = vec![];
    for split in ["train", "test"] {
        let m = idx::read_split(&mnist, split).with_context(|| format!("MNIST source of {}", path.display()))?;
        ensure!(
            (m.height, m.width) == (28, 28),
            "{}: MNIST images are {}×{}, expected 28×28",
            mnist.display(),
            m.height,
            m.width
        );
        let v = svhn::read(&svhn::split_file(&svhn_dir, split))
            .with_context(|| format!("SVHN source of {}", path.display()))?;
        let (left, right) = (read_side(dir, split, "mnist", m.len())?, read_side(dir, split, "svhn", v.len())?);
        ensure!(
            left.size() == right.size(),
            "{} and {} list different numbers of pairs",
            index_file(dir, split, "mnist").display(),
            index_file(dir, split, "svhn").display()
        );
        let labels = Tensor::from_slice(&m.labels).index_select(0, &left);
        let svhn_labels = Tensor::from_slice(&v.labels).index_select(0, &right);
        let disagree = labels.ne_tensor(&svhn_labels).sum(tch::Kind::Int64).int64_value(&[]);
        ensure!(
            disagree == 0,
            "{}: {disagree} pairs join digits of different classes",
            index_file(dir, split, "svhn").display()
        );
        let items = vec![m.tensor().index_select(0, &left), v.tensor().index_select(0, &right)];
        splits.push(Split { items, labels });
    }
    let test = splits.pop().expect("two splits");
    let train = splits.pop().expect("two splits");
    Ok(MultimodalDataset {
        name: "mnist-svhn".into(),
        modalities: vec![ModalitySpec::image("mnist", 1, 28, 28), ModalitySpec::image("svhn", 3, 32, 32)],
        num_classes: 10,
        class_names: (0..10).map(|k| k.to_string()).collect(),
        vocabularies: vec![None, None],
        train,
        test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_share_labels_and_repeat_each_item_dm_times() {
        let mnist = [0, 1, 1, 0, 2, 1, 0];
        let svhn = [1, 1, 0, 0, 0, 0, 1, 1];
        let (l, r) = pair_by_label(&mnist, &svhn, 3, 100, &mut SplitMix64::new(5));
        // Class 0: n = min(3, 4) = 3; class 1: n = min(3, 4) = 3; class 2: n = 0.
        assert_eq!(l.len(), 3 * (3 + 3));
        assert!(l.iter().zip(&r).all(|(&a, &b)| mnist[a as usize] == svhn[b as usize]));
        for i in [0, 3, 6, 1, 2, 5] {
            assert_eq!(l.iter().filter(|&&x| x == i).count(), 3, "mnist item {i}");
        }
        // Only the first n SVHN items of each class are used.
        assert!(!r.contains(&5) && !r.contains(&7));
        let (l2, _) = pair_by_label(&mnist, &svhn, 3, 100, &mut SplitMix64::new(5));
        assert_eq!(l, l2);
        let (l3, _) = pair_by_label(&mnist, &svhn, 3, 2, &mut SplitMix64::new(5));
        assert_eq!(l3.len(), 3 * (2 + 2));
    }
}
