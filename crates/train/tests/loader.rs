//! The step loader over a synthetic split: repeatable order, starting at any step, and a clear
//! error for an empty split.

use mmlatent_data::synthetic;
use mmlatent_train::loader::StepLoader;
use tch::{Device, Kind};

#[test]
fn loader_yields_converted_batches_in_a_repeatable_order() {
    let ds = synthetic::squares(64, 16, 2, 1);
    let mut a = StepLoader::new(&ds.train, &ds.modalities, 16, 3, Device::Cpu).unwrap();
    let mut b = StepLoader::new(&ds.train, &ds.modalities, 16, 3, Device::Cpu).unwrap();
    let mut labels = vec![];
    for step in 0..6 {
        let (x, y) = (a.batch(step).unwrap(), b.batch(step).unwrap());
        assert_eq!(x.items[0].size(), vec![16, 1, 28, 28]);
        assert_eq!(x.items[0].kind(), Kind::Float);
        assert!(x.labels.equal(&y.labels));
        labels.push(x.labels);
    }
    // Over 64 tuples in batches of 16, the second epoch is another permutation.
    assert!(!labels[4].equal(&labels[0]) || !labels[5].equal(&labels[1]));
    // A loader started at step 5 gives the 6th batch of a fresh stream, and goes on from there.
    let mut c = StepLoader::new(&ds.train, &ds.modalities, 16, 3, Device::Cpu).unwrap();
    assert!(c.batch(5).unwrap().labels.equal(&labels[5]));
    assert!(c.batch(2).unwrap().labels.equal(&labels[2]), "a step asked again restarts the stream there");
}

/// An empty split is an error, not a panic on the loader's thread.
#[test]
fn an_empty_split_is_an_error() {
    let mut ds = synthetic::squares(8, 4, 2, 1);
    ds.train.items = ds.train.items.iter().map(|t| t.narrow(0, 0, 0)).collect();
    ds.train.labels = ds.train.labels.narrow(0, 0, 0);
    let err = StepLoader::new(&ds.train, &ds.modalities, 4, 0, Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("no training tuples"), "{err}");
}
