//! Tiny synthetic multimodal datasets for tests and smoke runs.
//!
//! "squares": class k ∈ 0..10 is a bright 8×8 square at cell k of a 4×3 grid on a 1×28×28 image.
//! Every modality draws its own instance of the class (a jittered position, a modality-specific
//! brightness and noise level), so modalities share only the label, as in PolyMNIST.
//!
//! "hidden patch" ([`hidden_patch`]): the first modality is a squares modality; in the others the
//! class is a small flat grey patch (5×5, 3 % of the pixels) at the class's cell, on a background
//! of uniform noise — a modality whose reconstruction is all background and whose class is
//! nearly none of its pixels, like a garment on grass.

use mmlatent_core::dataset::{MultimodalDataset, Split};
use mmlatent_core::ModalitySpec;
use tch::{Device, Kind, Tensor};

/// `n_train` / `n_test` tuples of `n_modalities` image modalities, labels balanced.
pub fn squares(n_train: usize, n_test: usize, n_modalities: usize, seed: u64) -> MultimodalDataset {
    let modalities: Vec<ModalitySpec> =
        (0..n_modalities).map(|m| ModalitySpec::image(&format!("m{m}"), 1, 28, 28)).collect();
    let train = make_split(n_train, n_modalities, seed.wrapping_mul(2));
    let test = make_split(n_test, n_modalities, seed.wrapping_mul(2) + 1);
    MultimodalDataset {
        name: "squares".into(),
        vocabularies: vec![None; n_modalities],
        modalities,
        num_classes: 10,
        class_names: (0..10).map(|k| format!("cell {k}")).collect(),
        train,
        test,
    }
}

fn make_split(n: usize, n_modalities: usize, seed: u64) -> Split {
    let _guard = tch::no_grad_guard();
    let generator_seed = seed as i64 + 12345;
    tch::manual_seed(generator_seed);
    let labels = Tensor::arange(n as i64, (Kind::Int64, Device::Cpu)).remainder(10);
    let label_vec: Vec<i64> = Vec::try_from(&labels).expect("labels to vec");
    let items = (0..n_modalities)
        .map(|m| {
            let brightness = 0.6 + 0.4 * (m as f64 / n_modalities.max(1) as f64);
            let noise = 0.05 + 0.05 * m as f64;
            let img = Tensor::rand([n as i64, 1, 28, 28], (Kind::Float, Device::Cpu)) * noise;
            let jitter =
                mmlatent_core::host::to_vec::<i64>(&Tensor::randint(3, [n as i64, 2], (Kind::Int64, Device::Cpu)))
                    .expect("jitter");
            for (i, &k) in label_vec.iter().enumerate() {
                let (row, col) = (k / 4, k % 4);
                let y = row * 9 + jitter[2 * i];
                let x = col * 7 + jitter[2 * i + 1].min(1);
                let _ = img.get(i as i64).narrow(1, y, 8).narrow(2, x, 6).fill_(brightness);
            }
            (img.clamp(0.0, 1.0) * 255.0).round().to_kind(Kind::Uint8)
        })
        .collect();
    Split { items, labels }
}

/// `n_train` / `n_test` tuples: modality `m0` as in [`squares`], then `hidden` modalities whose
/// class is a 5×5 patch of value 0.5 (jittered within the class's cell) on uniform noise.
pub fn hidden_patch(n_train: usize, n_test: usize, hidden: usize, seed: u64) -> MultimodalDataset {
    let mut dataset = squares(n_train, n_test, 1, seed);
    for (split, n, split_seed) in
        [(&mut dataset.train, n_train, seed.wrapping_mul(2) + 7), (&mut dataset.test, n_test, seed.wrapping_mul(2) + 8)]
    {
        let _guard = tch::no_grad_guard();
        tch::manual_seed(split_seed as i64);
        let labels = mmlatent_core::host::to_vec::<i64>(&split.labels).expect("labels");
        for _ in 0..hidden {
            let img = Tensor::rand([n as i64, 1, 28, 28], (Kind::Float, Device::Cpu));
            let jitter =
                mmlatent_core::host::to_vec::<i64>(&Tensor::randint(3, [n as i64, 2], (Kind::Int64, Device::Cpu)))
                    .expect("jitter");
            for (i, &k) in labels.iter().enumerate() {
                let (y, x) = ((k / 4) * 9 + jitter[2 * i], (k % 4) * 7 + jitter[2 * i + 1].min(1));
                let _ = img.get(i as i64).narrow(1, y, 5).narrow(2, x, 5).fill_(0.5);
            }
            split.items.push((img * 255.0).round().to_kind(Kind::Uint8));
        }
    }
    for m in 1..=hidden {
        dataset.modalities.push(ModalitySpec::image(&format!("m{m}"), 1, 28, 28));
        dataset.vocabularies.push(None);
    }
    dataset.name = "hidden-patch".into();
    dataset
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squares_are_valid_and_class_dependent() {
        let ds = squares(40, 20, 3, 0);
        ds.check().unwrap();
        let b = ds.train.head(&ds.modalities, 20, Device::Cpu);
        // Class 0 lights the top-left corner, class 11 does not exist; class 3 the top-right.
        let top_left = b.items[0].get(0).narrow(1, 2, 6).narrow(2, 2, 4).mean(Kind::Float).double_value(&[]);
        let top_right = b.items[0].get(3).narrow(1, 2, 6).narrow(2, 2, 4).mean(Kind::Float).double_value(&[]);
        assert!(top_left > 0.5 && top_right < 0.2, "{top_left} {top_right}");
    }

    /// The hidden modalities' patch sits at the class's cell: flat there, noisy elsewhere.
    #[test]
    fn hidden_patches_are_flat_at_the_class_cell() {
        let ds = hidden_patch(20, 10, 2, 1);
        ds.check().unwrap();
        assert_eq!((ds.modalities.len(), ds.train.items.len(), ds.test.items.len()), (3, 3, 3));
        let item = ds.train.items[2].get(5).to_kind(Kind::Float) / 255.0; // class 5: row 1, col 1
        let patch = item.narrow(1, 11, 3).narrow(2, 9, 3);
        assert!((patch.mean(Kind::Float).double_value(&[]) - 0.5).abs() < 0.01);
        assert!(patch.std(true).double_value(&[]) < 0.01);
        assert!(item.std(true).double_value(&[]) > 0.2, "the background is not noise");
    }
}
