//! The one interface through which evaluation and the CLI's `sample` talk to any trained model.

use crate::ModalitySpec;
use tch::{Device, Tensor};

/// A trained multimodal generative model that can draw joint and conditional samples.
///
/// Implemented by MLD, the EBM-prior model and every VAE baseline; evaluation never knows
/// which model it scores.
pub trait MultimodalModel {
    /// A short name for reports, e.g. `mld` or `mopoe`.
    fn name(&self) -> &str;

    /// The modalities, in the order used by `generate`.
    fn modalities(&self) -> &[ModalitySpec];

    /// The device the model's weights live on.
    fn device(&self) -> Device;

    /// Draws samples.
    ///
    /// `given` has one entry per modality: `Some(batch)` holds real inputs of that modality
    /// (`[n, ..shape]`, in data space, on any device) to condition on; `None` marks a modality
    /// to generate. With every entry `None` this is joint generation of `n` tuples; otherwise
    /// `n` must equal the batch size of the given inputs.
    ///
    /// Returns one tensor per modality, in data space (images `f32` in `[0, 1]`, text `i64`
    /// token ids, vectors `f32`), on the model's device. Given modalities are returned as given.
    /// Checks `given` ([`check_given`]) and turns gradients off, then calls
    /// [`MultimodalModel::generate_checked`].
    fn generate(&self, given: &[Option<Tensor>], n: i64) -> anyhow::Result<Vec<Tensor>> {
        let n = check_given(self.modalities(), given, n)?;
        let _guard = tch::no_grad_guard();
        self.generate_checked(given, n)
    }

    /// What each model implements of [`MultimodalModel::generate`]: `given` already matches the
    /// modalities, `n` is the number of tuples to draw, and gradients are off.
    fn generate_checked(&self, given: &[Option<Tensor>], n: i64) -> anyhow::Result<Vec<Tensor>>;

    /// For a two-stage latent model (MLD): its latent space, which evaluation uses to tell a
    /// failed first stage (the autoencoders) from a failed second one (the latent generator).
    fn latent_view(&self) -> Option<&dyn LatentView> {
        None
    }

    /// Network evaluations per generated sample of the current sampler, where the model counts
    /// them (for reports: the cost side of a sampler comparison).
    fn evaluations_per_sample(&self) -> Option<usize> {
        None
    }
}

/// The latent space of a two-stage model: per-modality encoders and decoders trained first,
/// then a generative model of the concatenated latents.
pub trait LatentView {
    /// `(offset, size)` of each modality's block in the concatenated latent vector.
    fn latent_spans(&self) -> Vec<(i64, i64)>;

    /// Encodes a batch of tuples (one data-space tensor per modality, as `generate` takes them)
    /// into the space the generator models, `[n, D]` (for MLD: the standardised latents).
    fn encode(&self, inputs: &[Tensor]) -> anyhow::Result<Tensor>;

    /// Encodes and decodes each modality: the first stage's reconstructions, in data space.
    fn reconstruct(&self, inputs: &[Tensor]) -> anyhow::Result<Vec<Tensor>>;

    /// Draws `n` joint samples of the generator in the same space as [`LatentView::encode`].
    fn sample_joint_latents(&self, n: i64) -> anyhow::Result<Tensor>;

    /// Decodes `[n, D]` latents in the space of [`LatentView::encode`] into data space, one
    /// tensor per modality (the inverse of `encode` up to the first stage's loss).
    fn decode(&self, latents: &Tensor) -> anyhow::Result<Vec<Tensor>>;
}

/// Checks the `given` argument of [`MultimodalModel::generate`] against the model and returns
/// the batch size `n` to use. Shared by the implementations so all of them reject bad calls alike.
pub fn check_given(modalities: &[ModalitySpec], given: &[Option<Tensor>], n: i64) -> anyhow::Result<i64> {
    anyhow::ensure!(
        given.len() == modalities.len(),
        "generate: {} entries in `given` for a model of {} modalities",
        given.len(),
        modalities.len()
    );
    let mut batch = None;
    for (spec, g) in modalities.iter().zip(given) {
        if let Some(t) = g {
            let size = t.size();
            anyhow::ensure!(
                size.len() == spec.item_shape().len() + 1 && size[1..] == spec.item_shape()[..],
                "generate: modality {} expects items of shape {:?}, got a batch of shape {:?}",
                spec.name,
                spec.item_shape(),
                size
            );
            match batch {
                None => batch = Some(size[0]),
                Some(b) => {
                    anyhow::ensure!(b == size[0], "generate: given batches differ in size ({b} and {})", size[0])
                }
            }
        }
    }
    let n = batch.unwrap_or(n);
    anyhow::ensure!(n > 0, "generate: asked for {n} samples");
    Ok(n)
}
