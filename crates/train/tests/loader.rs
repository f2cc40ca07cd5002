//! The batch loaders over a synthetic split: repeatable order, skipping, and a clear error for an
//! empty split.

use mmlatent_data::synthetic;
use mmlatent_train::loader::{BatchLoader, StepLoader};
use tch::{Device, Kind};

#[test]
fn loader_yields_converted_batches_in_a_repeatable_order() {
    let ds = synthetic::squares(64, 16, 2, 1);
    let mut a = BatchLoader::new(&ds.train, &ds.modalities, 16, 3, Device::Cpu).unwrap();
    let mut b = BatchLoader::new(&ds.train, &ds.modalities, 16, 3, Device::Cpu).unwrap();
    for _ in 0..6 {
        let (x, y) = (a.next_batch().unwrap(), b.next_batch().unwrap());
        assert_eq!(x.items[0].size(), vec![16, 1, 28, 28]);
        assert_eq!(x.items[0].kind(), Kind::Float);
        assert!(x.labels.equal(&y.labels));
    }
    // Skipping 5 batches lands on the 6th batch of a fresh stream.
    let mut c = BatchLoader::with_skip(&ds.train, &ds.modalities, 16, 3, Device::Cpu, 5).unwrap();
    let mut d = BatchLoader::new(&ds.train, &ds.modalities, 16, 3, Device::Cpu).unwrap();
    for _ in 0..5 {
        d.next_batch().unwrap();
    }
    let sixth = d.next_batch().unwrap().labels;
    assert!(c.next_batch().unwrap().labels.equal(&sixth));
    // A step loader started at step 5 gives the same batch.
    let mut e = StepLoader::new(&ds.train, &ds.modalities, 16, 3, Device::Cpu).unwrap();
    assert!(e.batch(5).unwrap().labels.equal(&sixth));
}

/// An empty split is an error, not a panic on the loader's thread.
#[test]
fn an_empty_split_is_an_error() {
    let mut ds = synthetic::squares(8, 4, 2, 1);
    ds.train.items = ds.train.items.iter().map(|t| t.narrow(0, 0, 0)).collect();
    ds.train.labels = ds.train.labels.narrow(0, 0, 0);
    let err = BatchLoader::new(&ds.train, &ds.modalities, 4, 0, Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("no training tuples"), "{err}");
    assert!(StepLoader::new(&ds.train, &ds.modalities, 4, 0, Device::Cpu).is_err());
}
