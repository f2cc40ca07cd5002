//! Batches produced beside training: a thread shuffles (seeded, a new permutation per epoch),
//! gathers and converts the next batches while the model trains on the current one.

use crate::rng::SplitMix64;
use mmlatent_core::dataset::{Batch, Split};
use mmlatent_core::ModalitySpec;
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;
use tch::{Device, Kind, Tensor};

/// An endless stream of training batches (epoch after epoch), prefetched by a thread.
pub struct BatchLoader {
    receiver: Option<Receiver<Batch>>,
    worker: Option<JoinHandle<()>>,
}

impl BatchLoader {
    /// Starts a loader over `split`. Batches have `batch_size` tuples (the last, smaller batch of
    /// an epoch is dropped); the order is a seeded permutation per epoch; `prefetch` batches are
    /// prepared ahead. Starts from batch number `skip` (for resumed runs to keep the stream).
    pub fn new(split: &Split, modalities: &[ModalitySpec], batch_size: usize, seed: u64, device: Device) -> Self {
        Self::with_skip(split, modalities, batch_size, seed, device, 0)
    }

    pub fn with_skip(
        split: &Split,
        modalities: &[ModalitySpec],
        batch_size: usize,
        seed: u64,
        device: Device,
        skip: usize,
    ) -> Self {
        let n = split.len();
        let batch_size = batch_size.min(n).max(1);
        // The thread owns shallow clones: the storage is shared with `split`, never copied, and
        // only read (index_select) on the thread.
        let source = Split {
            items: split.items.iter().map(|t| t.shallow_clone()).collect(),
            labels: split.labels.shallow_clone(),
        };
        let modalities = modalities.to_vec();
        let (sender, receiver) = sync_channel::<Batch>(2);
        let worker = std::thread::spawn(move || {
            let per_epoch = (n / batch_size).max(1);
            let mut epoch = skip / per_epoch;
            let mut position = skip % per_epoch;
            loop {
                let perm = epoch_permutation(n, seed, epoch);
                while position < per_epoch {
                    let idx = perm.narrow(0, (position * batch_size) as i64, batch_size as i64);
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
    pub fn next_batch(&mut self) -> Batch {
        self.receiver.as_ref().expect("loader alive").recv().expect("loader thread stopped")
    }
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
    use crate::synthetic;

    #[test]
    fn permutations_are_seeded_and_complete() {
        let a = epoch_permutation(100, 7, 0);
        assert!(a.equal(&epoch_permutation(100, 7, 0)));
        assert!(!a.equal(&epoch_permutation(100, 7, 1)));
        assert!(a.sort(0, false).0.equal(&Tensor::arange(100, (Kind::Int64, Device::Cpu))));
    }

    #[test]
    fn loader_yields_converted_batches_in_a_repeatable_order() {
        let ds = synthetic::squares(64, 16, 2, 1);
        let mut a = BatchLoader::new(&ds.train, &ds.modalities, 16, 3, Device::Cpu);
        let mut b = BatchLoader::new(&ds.train, &ds.modalities, 16, 3, Device::Cpu);
        for _ in 0..6 {
            let (x, y) = (a.next_batch(), b.next_batch());
            assert_eq!(x.items[0].size(), vec![16, 1, 28, 28]);
            assert_eq!(x.items[0].kind(), Kind::Float);
            assert!(x.labels.equal(&y.labels));
        }
        // Skipping 5 batches lands on the 6th batch of a fresh stream.
        let mut c = BatchLoader::with_skip(&ds.train, &ds.modalities, 16, 3, Device::Cpu, 5);
        let mut d = BatchLoader::new(&ds.train, &ds.modalities, 16, 3, Device::Cpu);
        for _ in 0..5 {
            d.next_batch();
        }
        assert!(c.next_batch().labels.equal(&d.next_batch().labels));
    }
}
