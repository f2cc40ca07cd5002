//! Reference "models" that draw real data instead of generating it: the upper and lower anchors
//! of every coherence and FD number.
//!
//! - [`Behaviour::Oracle`]: for conditional generation, real items (from a pool split) of the
//!   given tuple's label; for joint generation, tuples whose modalities share one random label.
//!   Its coherence equals the classifiers' accuracy on real data.
//! - [`Behaviour::RandomLabels`]: every generated item is a real item of an independent
//!   uniformly random label; its coherence is chance (`1 / num_classes` conditionally).
//!
//! The label of a given tuple is recovered by nearest neighbour among the labelled `lookup`
//! split (the split evaluation conditions on).

use anyhow::{ensure, Result};
use mmlatent_core::{ModalitySpec, MultimodalDataset, MultimodalModel};
use tch::{Device, Kind, Tensor};

/// What the reference model returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    Oracle,
    RandomLabels,
}

/// A model that returns real items of a dataset (see the module documentation).
pub struct ReferenceModel {
    name: String,
    behaviour: Behaviour,
    modalities: Vec<ModalitySpec>,
    num_classes: i64,
    /// Pool of real items per modality (data space, CPU) and their labels.
    pool: Vec<Tensor>,
    pool_labels: Tensor,
    /// Labelled items to recognise given inputs by (data space, flattened, CPU).
    lookup: Vec<Tensor>,
    lookup_labels: Tensor,
}

impl ReferenceModel {
    /// Draws its outputs from `dataset`'s training split and recognises inputs from its test split.
    pub fn new(dataset: &MultimodalDataset, behaviour: Behaviour) -> Result<Self> {
        ensure!(!dataset.train.is_empty() && !dataset.test.is_empty(), "reference model needs train and test tuples");
        let pool = dataset.train.head(&dataset.modalities, dataset.train.len(), Device::Cpu);
        for k in 0..dataset.num_classes {
            ensure!(
                pool.labels.eq(k).any().int64_value(&[]) != 0,
                "reference model: dataset {} has no training item of class {k}",
                dataset.name
            );
        }
        let lookup = dataset.test.head(&dataset.modalities, dataset.test.len(), Device::Cpu);
        Ok(Self {
            name: match behaviour {
                Behaviour::Oracle => "oracle".into(),
                Behaviour::RandomLabels => "random-labels".into(),
            },
            behaviour,
            modalities: dataset.modalities.clone(),
            num_classes: dataset.num_classes,
            pool: pool.items,
            pool_labels: pool.labels,
            lookup: lookup.items.iter().map(|t| t.to_kind(Kind::Float).flatten(1, -1)).collect(),
            lookup_labels: lookup.labels,
        })
    }

    /// The labels of given inputs: nearest lookup item of the first given modality.
    fn recognise(&self, m: usize, x: &Tensor) -> Tensor {
        let x = x.to_device(Device::Cpu).to_kind(Kind::Float).flatten(1, -1);
        let nearest = Tensor::cdist(&x, &self.lookup[m], 2.0, None).argmin(1, false);
        self.lookup_labels.index_select(0, &nearest)
    }

    /// For each label, a random pool item of that label (its index in the pool).
    fn items_of(&self, labels: &Tensor) -> Tensor {
        let labels: Vec<i64> = Vec::try_from(labels).expect("labels are i64");
        let picks: Vec<i64> = labels
            .iter()
            .map(|&k| {
                let candidates = self.pool_labels.eq(k).nonzero().view([-1]);
                let n = candidates.size()[0];
                assert!(n > 0, "no pool item of label {k}");
                candidates.int64_value(&[Tensor::randint(n, [1], (Kind::Int64, Device::Cpu)).int64_value(&[0])])
            })
            .collect();
        Tensor::from_slice(&picks)
    }
}

impl MultimodalModel for ReferenceModel {
    fn name(&self) -> &str {
        &self.name
    }

    fn modalities(&self) -> &[ModalitySpec] {
        &self.modalities
    }

    fn device(&self) -> Device {
        Device::Cpu
    }

    fn generate_checked(&self, given: &[Option<Tensor>], n: i64) -> Result<Vec<Tensor>> {
        let random = || Tensor::randint(self.num_classes, [n], (Kind::Int64, Device::Cpu));
        let first_given = given.iter().position(Option::is_some);
        let shared = match first_given {
            Some(m) => self.recognise(m, given[m].as_ref().expect("given")),
            None => random(),
        };
        Ok((0..self.modalities.len())
            .map(|m| match &given[m] {
                Some(x) => x.to_device(Device::Cpu),
                None => {
                    let labels = match self.behaviour {
                        Behaviour::Oracle => shared.shallow_clone(),
                        Behaviour::RandomLabels => random(),
                    };
                    self.pool[m].index_select(0, &self.items_of(&labels))
                }
            })
            .collect())
    }
}
