//! A tiny synthetic multimodal dataset for tests and smoke runs: "squares".
//!
//! Class k ∈ 0..10 is a bright 8×8 square at cell k of a 4×3 grid on a 1×28×28 image. Every
//! modality draws its own instance of the class (a jittered position, a modality-specific
//! brightness and noise level), so modalities share only the label, as in PolyMNIST.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squares_are_valid_and_class_dependent() {
        let ds = squares(40, 20, 3, 0);
        ds.validate().unwrap();
        let b = ds.train.head(&ds.modalities, 20, Device::Cpu);
        // Class 0 lights the top-left corner, class 11 does not exist; class 3 the top-right.
        let top_left = b.items[0].get(0).narrow(1, 2, 6).narrow(2, 2, 4).mean(Kind::Float).double_value(&[]);
        let top_right = b.items[0].get(3).narrow(1, 2, 6).narrow(2, 2, 4).mean(Kind::Float).double_value(&[]);
        assert!(top_left > 0.5 && top_right < 0.2, "{top_left} {top_right}");
    }
}
