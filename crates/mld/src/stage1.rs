//! What stage 1 keeps of the class, per modality — measured when the autoencoders are done,
//! printed and written to `<run>/stage1.json`:
//! - the held-out reconstruction loss (the same as the stage's logged `val_loss`);
//! - a linear class probe on the modality's latents (fit on encoded training tuples, scored on
//!   held-out tuples): how much of the class a given modality can pass on in stage 2;
//! - with the dataset's evaluation classifiers at hand ([`TrainContext::judge`]): their accuracy
//!   on the held-out real items and on their reconstructions.
//!
//! A modality whose reconstructions the classifiers read at less than [`KEEPS_CLASS`] of their
//! accuracy on its real items has lost the class in stage 1 (on a textured background the latent
//! spends itself on the texture), and no stage 2 can bring it back: the run warns.

use crate::autoencoder::Autoencoder;
use anyhow::{Context, Result};
use mmlatent_core::Split;
use mmlatent_train::family::TrainContext;
use serde::Serialize;
use tch::{Kind, Tensor};

/// The file the report is written to, in the run folder.
pub const FILE: &str = "stage1.json";
/// Training tuples the probes are fit on (the first ones).
pub const PROBE_TRAIN: usize = 20_000;
/// Reconstructions are read at less than this fraction of the real items' accuracy: warn.
pub const KEEPS_CLASS: f64 = 0.85;

/// One modality's line of the report.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ModalityReport {
    pub modality: String,
    pub held_out_nll: f64,
    /// Linear probe accuracy on the latents.
    pub probe: f64,
    /// The classifiers' accuracy on held-out real items, when they were at hand.
    pub real_accuracy: Option<f64>,
    /// Their accuracy on the same items' reconstructions.
    pub reconstruction_accuracy: Option<f64>,
}

/// The report of a run's stage 1.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Stage1Report {
    /// `independent` (the seed's MLD) or `contrastive` (the cross-modal variant).
    pub variant: String,
    pub held_out_tuples: usize,
    pub probe_train_tuples: usize,
    pub modalities: Vec<ModalityReport>,
}

impl Stage1Report {
    /// The warnings the report calls for, one line each.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = vec![];
        for m in &self.modalities {
            if let (Some(real), Some(recon)) = (m.real_accuracy, m.reconstruction_accuracy) {
                if recon < KEEPS_CLASS * real {
                    out.push(format!(
                        "modality {}: the classifiers read {:.1} % of its reconstructions correctly against {:.1} % of \
                         its real images (linear probe on its latent: {:.1} %): its autoencoder keeps far less of the \
                         class than the data has, and stage 2 cannot bring it back{}",
                        m.modality,
                        100.0 * recon,
                        100.0 * real,
                        100.0 * m.probe,
                        if self.variant == "independent" {
                            " (the contrastive variant of stage 1, [model.autoencoder.contrastive], trains the \
                             autoencoders to keep what the modalities share)"
                        } else {
                            ""
                        }
                    ));
                }
            }
        }
        out
    }

    /// The report as a table, one line per modality.
    pub fn table(&self) -> String {
        let mut out = format!(
            "stage 1 ({}): held-out reconstruction loss, linear class probe on the latent ({} training tuples), \
             classifiers on {} held-out real items and their reconstructions\n",
            self.variant, self.probe_train_tuples, self.held_out_tuples
        );
        out += &format!("{:<12} {:>12} {:>8} {:>8} {:>8}\n", "modality", "nll", "probe %", "real %", "recon %");
        let pct = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{:.1}", 100.0 * v));
        for m in &self.modalities {
            out += &format!(
                "{:<12} {:>12.2} {:>8.1} {:>8} {:>8}\n",
                m.modality,
                m.held_out_nll,
                100.0 * m.probe,
                pct(m.real_accuracy),
                pct(m.reconstruction_accuracy)
            );
        }
        out
    }
}

/// Measures the report of `autoencoders` on `ctx`'s dataset (held-out items: `held_out`).
pub fn measure(autoencoders: &[Autoencoder], ctx: &TrainContext, held_out: &Split) -> Result<Stage1Report> {
    let _guard = tch::no_grad_guard();
    let dataset = ctx.dataset;
    let mut train = Split {
        items: dataset.train.items.iter().map(Tensor::shallow_clone).collect(),
        labels: dataset.train.labels.shallow_clone(),
    };
    train.truncate(PROBE_TRAIN);
    let device = ctx.device;
    let classes = dataset.num_classes;
    let (y_train, y_test) = (train.labels.to_device(device), held_out.labels.to_device(device));
    let mut modalities = vec![];
    for (m, ae) in autoencoders.iter().enumerate() {
        let z_train = ae.encode_split(&train, m, crate::ENCODE_BATCH);
        let z_test = ae.encode_split(held_out, m, crate::ENCODE_BATCH);
        let probe = mmlatent_core::probe::linear_probe((&z_train, &y_train), (&z_test, &y_test), classes)?;
        let (real_accuracy, reconstruction_accuracy) = match ctx.judge {
            Some(judge) => {
                let real = mmlatent_core::dataset::to_data_space(&held_out.items[m], &ae.spec).to_device(device);
                let accuracy = |x: &Tensor| -> Result<f64> {
                    let predicted = judge(m, x)?.to_device(device);
                    Ok(predicted.eq_tensor(&y_test).to_kind(Kind::Double).mean(Kind::Double).double_value(&[]))
                };
                (Some(accuracy(&real)?), Some(accuracy(&decode_in_batches(ae, &z_test))?))
            }
            None => (None, None),
        };
        modalities.push(ModalityReport {
            modality: ae.spec.name.clone(),
            held_out_nll: ae.held_out_loss(&held_out.items[m], crate::contrastive::HELD_OUT_BATCH),
            probe,
            real_accuracy,
            reconstruction_accuracy,
        });
    }
    let variant = if autoencoders.iter().any(|ae| ae.trained_jointly) { "contrastive" } else { "independent" };
    Ok(Stage1Report {
        variant: variant.to_string(),
        held_out_tuples: held_out.len(),
        probe_train_tuples: train.len(),
        modalities,
    })
}

/// Decodes latents `[N, d]` into data space in batches.
fn decode_in_batches(ae: &Autoencoder, z: &Tensor) -> Tensor {
    let n = z.size()[0];
    let parts: Vec<Tensor> = (0..n)
        .step_by(crate::ENCODE_BATCH as usize)
        .map(|start| ae.decode(&z.narrow(0, start, crate::ENCODE_BATCH.min(n - start))))
        .collect();
    Tensor::cat(&parts, 0)
}

/// Measures, prints and writes the report of a run's finished stage 1 (rank 0 only); a report
/// that cannot be measured is a warning, not a failed run.
pub fn report(autoencoders: &[Autoencoder], ctx: &TrainContext, held_out: &Split) -> Result<()> {
    if !mmlatent_train::parallel::is_leader() || held_out.is_empty() || ctx.dataset.num_classes < 2 {
        return Ok(());
    }
    let report = match measure(autoencoders, ctx, held_out) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("warning: no stage-1 report: {e:#}");
            return Ok(());
        }
    };
    eprint!("{}", report.table());
    if ctx.judge.is_none() {
        eprintln!(
            "(no evaluation classifiers of this dataset yet: `mmlatent classifier train` or a first `eval` trains them, \
             and the next run's report then reads its reconstructions too)"
        );
    }
    for warning in report.warnings() {
        eprintln!("warning: {warning}");
    }
    let path = ctx.run.root().join(FILE);
    let text = serde_json::to_string_pretty(&report)?;
    mmlatent_train::checkpoint::write_text_atomically(&text, &path).with_context(|| format!("{}", path.display()))
}
