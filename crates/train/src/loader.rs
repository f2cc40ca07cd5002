//! Batches produced beside training: a thread shuffles (seeded, a new permutation per epoch),
//! gathers and converts the next batches while the model trains on the current one.
//!
//! The order is a pure function of (seed, epoch) and the position in it a function of the step,
//! so a resumed run gets exactly the batches of an uninterrupted one ([`StepLoader`]).

use anyhow::{bail, Context, Result};
use mmlatent_core::dataset::{Batch, Split};
use mmlatent_core::rng::SplitMix64;
use mmlatent_core::ModalitySpec;
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;
use tch::{Device, Kind, Tensor};

/// An endless stream of training batches (epoch after epoch), prefetched by a thread; started by
/// [`StepLoader`].
pub struct BatchLoader {
    receiver: Option<Receiver<Batch>>,
    worker: Option<JoinHandle<()>>,
}

impl BatchLoader {
    /// Starts the stream of `loader`'s batches at batch number `skip`: batches of its batch size
    /// (at most the split's size; the last, smaller batch of an epoch is dropped; in a
    /// data-parallel job each rank gets its share of them, see [`crate::parallel::local_rows`]),
    /// in a seeded permutation per epoch, two prepared ahead.
    fn start(loader: &StepLoader, skip: usize) -> Self {
        let n = loader.split.len();
        let batch_size = loader.batch_size.min(n).max(1);
        let (seed, device) = (loader.seed, loader.device);
        // The thread owns shallow clones: the storage is shared with the split, never copied,
        // and only read (index_select) on the thread.
        let source = shallow(&loader.split);
        let modalities = loader.modalities.clone();
        let (sender, receiver) = sync_channel::<Batch>(2);
        let worker = std::thread::spawn(move || {
            let per_epoch = (n / batch_size).max(1);
            let mut epoch = skip / per_epoch;
            let mut position = skip % per_epoch;
            loop {
                let perm = epoch_permutation(n, seed, epoch);
                while position < per_epoch {
                    let global = perm.narrow(0, (position * batch_size) as i64, batch_size as i64);
                    let idx = crate::parallel::local_rows(&global);
                    let batch = source.batch(&modalities, &idx, device);
                    if sender.send(batch).is_err() {
                        return;
                    }
                    position += 1;
                }
                position = 0;
                epoch += 1;
            }
        });
        Self { receiver: Some(receiver), worker: Some(worker) }
    }

    /// The next batch.
    pub fn next_batch(&mut self) -> Result<Batch> {
        self.receiver
            .as_ref()
            .and_then(|r| r.recv().ok())
            .context("the batch loader's thread stopped (out of memory while gathering a batch?)")
    }
}

/// The batches of a training loop by step: started on the first step asked for (a resumed
/// stage starts past 0), restarted if a step is skipped.
pub struct StepLoader {
    split: Split,
    modalities: Vec<ModalitySpec>,
    batch_size: usize,
    seed: u64,
    device: Device,
    /// The loader and the step of its next batch.
    running: Option<(BatchLoader, usize)>,
}

impl StepLoader {
    /// Batches of `batch_size` tuples of `split` (at most the split's size; an empty split is an
    /// error), in the seeded order of [`BatchLoader`].
    pub fn new(
        split: &Split,
        modalities: &[ModalitySpec],
        batch_size: usize,
        seed: u64,
        device: Device,
    ) -> Result<Self> {
        if split.is_empty() {
            bail!("no training tuples to draw batches from (an empty split; check data.max_train and the dataset)");
        }
        crate::parallel::local_batch(batch_size.min(split.len()).max(1))?;
        let split = shallow(split);
        Ok(Self { split, modalities: modalities.to_vec(), batch_size, seed, device, running: None })
    }

    /// The batch of step `step`.
    pub fn batch(&mut self, step: usize) -> Result<Batch> {
        if !matches!(&self.running, Some((_, next)) if *next == step) {
            self.running = Some((BatchLoader::start(self, step), step));
        }
        let (loader, next) = self.running.as_mut().expect("set above");
        *next += 1;
        loader.next_batch()
    }
}

/// A split sharing `split`'s storage.
fn shallow(split: &Split) -> Split {
    Split { items: split.items.iter().map(Tensor::shallow_clone).collect(), labels: split.labels.shallow_clone() }
}

impl Drop for BatchLoader {
    fn drop(&mut self) {
        self.receiver.take();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// The permutation of epoch `epoch`: a function of (seed, epoch) alone, so runs repeat.
pub fn epoch_permutation(n: usize, seed: u64, epoch: usize) -> Tensor {
    // A splitmix64-driven Fisher–Yates shuffle, independent of libtorch's global generator.
    let perm: Vec<i64> = SplitMix64::stream(seed, epoch as u64).permutation(n).into_iter().map(|i| i as i64).collect();
    Tensor::from_slice(&perm).to_kind(Kind::Int64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_are_seeded_and_complete() {
        let a = epoch_permutation(100, 7, 0);
        assert!(a.equal(&epoch_permutation(100, 7, 0)));
        assert!(!a.equal(&epoch_permutation(100, 7, 1)));
        assert!(a.sort(0, false).0.equal(&Tensor::arange(100, (Kind::Int64, Device::Cpu))));
    }
}
