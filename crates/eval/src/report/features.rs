//! The feature sets an evaluation compares: classifier features of every modality, Inception
//! features of image modalities, and the Fréchet distances between a generated set and the
//! real reference.

use crate::classifier::Classifiers;
use crate::fid::{frechet_distance, Stats};
use crate::inception::InceptionV3;
use anyhow::{Context, Result};
use tch::{Device, Tensor};

/// Accumulates the features of one set of items per modality: classifier features always,
/// Inception features (images, up to a limit) when a network is given.
pub(super) struct Features<'a> {
    classifiers: &'a Classifiers,
    inception: Option<&'a InceptionV3>,
    fid_limit: i64,
    fid_batch: i64,
    classifier: Vec<Vec<Tensor>>,
    inception_parts: Vec<Vec<Tensor>>,
    inception_count: Vec<i64>,
}

impl<'a> Features<'a> {
    pub(super) fn new(
        classifiers: &'a Classifiers,
        inception: Option<&'a InceptionV3>,
        fid_samples: usize,
        fid_batch: i64,
    ) -> Self {
        let m = classifiers.modalities().len();
        Self {
            classifiers,
            inception,
            fid_limit: fid_samples as i64,
            fid_batch,
            classifier: (0..m).map(|_| vec![]).collect(),
            inception_parts: (0..m).map(|_| vec![]).collect(),
            inception_count: vec![0; m],
        }
    }

    pub(super) fn add(&mut self, m: usize, x: &Tensor) -> Result<()> {
        self.classifier[m].push(self.classifiers.features(m, x)?.to_device(Device::Cpu));
        if let Some(inception) = self.inception {
            let spec = &self.classifiers.modalities()[m];
            let room = (self.fid_limit - self.inception_count[m]).min(x.size()[0]);
            if spec.is_image() && room > 0 {
                self.inception_parts[m].push(inception.features(&x.narrow(0, 0, room), self.fid_batch)?);
                self.inception_count[m] += room;
            }
        }
        Ok(())
    }

    fn stats(parts: &[Tensor], what: &str) -> Result<Option<Stats>> {
        if parts.is_empty() {
            return Ok(None);
        }
        Stats::from_features(&Tensor::cat(parts, 0)).with_context(|| what.to_string()).map(Some)
    }

    /// (classifier-feature stats, Inception stats) of modality `m`.
    pub(super) fn stats_of(&self, m: usize) -> Result<(Option<Stats>, Option<Stats>)> {
        let name = &self.classifiers.modalities()[m].name;
        Ok((
            Self::stats(&self.classifier[m], &format!("classifier features of {name}"))?,
            Self::stats(&self.inception_parts[m], &format!("Inception features of {name}"))?,
        ))
    }
}

/// Distances of a generated set's features to the reference of the same modality.
pub(super) fn distances(
    generated: &(Option<Stats>, Option<Stats>),
    reference: &(Option<Stats>, Option<Stats>),
) -> Result<(Option<f64>, Option<f64>)> {
    let d = |a: &Option<Stats>, b: &Option<Stats>| match (a, b) {
        (Some(a), Some(b)) => frechet_distance(a, b).map(Some),
        _ => Ok(None),
    };
    Ok((d(&generated.0, &reference.0)?, d(&generated.1, &reference.1)?))
}
