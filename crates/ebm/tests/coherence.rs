//! End to end on the synthetic squares: train both kinds through the family (config, run
//! folder, checkpoint, load) and check that joint and cross generation are coherent above
//! chance, judged by a nearest-class-mean classifier that is itself checked on real data.

use mmlatent_core::MultimodalDataset;
use mmlatent_data::synthetic;
use mmlatent_ebm::{EbmConfig, EbmModel, FAMILY};
use mmlatent_train::config::Experiment;
use mmlatent_train::family::{ModelFamily, TrainContext};
use mmlatent_train::run::RunDir;
use tch::{Device, Kind, Tensor};

/// Per modality, the class means of the training images, flattened and unit-normalised.
struct Centroids(Vec<Tensor>);

impl Centroids {
    fn fit(ds: &MultimodalDataset) -> Self {
        let batch = ds.train.head(&ds.modalities, ds.train.len(), Device::Cpu);
        let onehot = batch.labels.one_hot(ds.num_classes).to_kind(Kind::Float); // [N, K]
        let counts = onehot.sum_dim_intlist(0, false, Kind::Float).unsqueeze(1);
        Self(
            batch
                .items
                .iter()
                .map(|x| {
                    let means = onehot.tr().matmul(&x.flatten(1, -1)) / &counts;
                    &means / means.norm_scalaropt_dim(2, [1i64].as_slice(), true)
                })
                .collect(),
        )
    }

    fn classify(&self, m: usize, x: &Tensor) -> Tensor {
        x.flatten(1, -1).matmul(&self.0[m].tr()).argmax(1, false)
    }
}

fn accuracy(pred: &Tensor, labels: &Tensor) -> f64 {
    pred.eq_tensor(labels).to_kind(Kind::Float).mean(Kind::Float).double_value(&[])
}

#[test]
fn tiny_runs_are_coherent_above_chance() {
    let ds = synthetic::squares(1000, 200, 2, 5);
    let clf = Centroids::fit(&ds);
    let test = ds.test.head(&ds.modalities, ds.test.len(), Device::Cpu);
    for m in 0..2 {
        let acc = accuracy(&clf.classify(m, &test.items[m]), &test.labels);
        assert!(acc > 0.95, "the judge itself is weak on modality {m}: {acc}");
    }
    for kind in ["ebm", "ebm-generalised"] {
        let text = format!(
            "seed = 1\n[data]\npath = \"synthetic\"\n[train]\nbatch_size = 64\nsteps = 150\nlr = 2e-3\n\
             log_every = 50\ncheckpoint_every = 100\nsample_every = 100\n[model]\nkind = \"{kind}\"\nlatent_dim = 8\nwidth = 8\n\
             energy_hidden = 64\nlangevin_steps = 30\nebm_lr = 1e-3\nlikelihoods = [{{ type = \"bernoulli\" }}]\n"
        );
        let experiment = Experiment::parse(&text, &[]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(dir.path(), &experiment, false).unwrap();
        tch::manual_seed(1);
        // Snapshots during training: at step 100 of 150, from the checkpoint just written.
        let snapshots = std::cell::RefCell::new(vec![]);
        let snapshot = |step: usize| -> anyhow::Result<()> {
            let model = FAMILY.load(&run, &ds, Device::Cpu)?;
            snapshots.borrow_mut().push((step, model.generate(&[None, None], 4)?[0].size()));
            Ok(())
        };
        let ctx = TrainContext { snapshot: Some(&snapshot), ..TrainContext::new(&experiment, &run, &ds, Device::Cpu) };
        FAMILY.train(&ctx).unwrap();
        assert_eq!(snapshots.take(), [(100, vec![4, 1, 28, 28])]);
        let metrics = run.read_metrics("ebm").unwrap();
        assert_eq!(metrics.len(), 3);
        assert!(metrics.iter().all(|r| r.get("energy_gap").is_some_and(|g| g.is_f64())));

        let model = FAMILY.load(&run, &ds, Device::Cpu).unwrap();
        let joint = model.generate(&[None, None], 500).unwrap();
        let joint_coherence = accuracy(&clf.classify(0, &joint[0]), &clf.classify(1, &joint[1]));
        let cross = model.generate(&[Some(test.items[0].shallow_clone()), None], 0).unwrap();
        let cross_coherence = accuracy(&clf.classify(1, &cross[1]), &test.labels);
        eprintln!("{kind}: joint coherence {joint_coherence:.3}, cross coherence 0→1 {cross_coherence:.3}");
        assert!(joint_coherence > 0.3, "{kind}: joint coherence {joint_coherence} (chance 0.1)");
        assert!(cross_coherence > 0.5, "{kind}: cross coherence {cross_coherence} (chance 0.1)");
    }
}

/// A finished run extended with more steps resumes from its checkpoint; a damaged checkpoint
/// is an error naming the file.
#[test]
fn runs_resume_from_their_checkpoint_and_refuse_a_damaged_one() {
    let ds = synthetic::squares(64, 16, 2, 2);
    let config = |steps: usize| {
        let text = format!(
            "[data]\npath = \"synthetic\"\n[train]\nbatch_size = 16\nsteps = {steps}\nlog_every = 1\n\
             checkpoint_every = 2\n[model]\nkind = \"ebm-generalised\"\nlatent_dim = 4\nprivate_dim = 2\nwidth = 4\n\
             energy_hidden = 8\nlangevin_steps = 3\n"
        );
        Experiment::parse(&text, &[]).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let first = config(4);
    let run = RunDir::create(dir.path(), &first, false).unwrap();
    let train = |e: &Experiment| FAMILY.train(&TrainContext::new(e, &run, &ds, Device::Cpu));
    train(&first).unwrap();
    // The encoder means of a fixed batch (deterministic, unlike sampling, which shares the
    // global generator with concurrently running tests).
    let x = ds.test.head(&ds.modalities, 4, Device::Cpu).items;
    let means = |run: &RunDir, e: &Experiment| {
        let config: EbmConfig = e.model_config().unwrap();
        let model = EbmModel::new(e.model_kind().unwrap(), &ds.modalities, &config, Device::Cpu).unwrap();
        mmlatent_ebm::train::load_trained(&model, run).unwrap();
        model.encode(0, &x[0]).shared.loc
    };
    let a = means(&run, &first);
    train(&config(6)).unwrap();
    let steps: Vec<u64> = run.read_metrics("ebm").unwrap().iter().filter_map(|r| r["step"].as_u64()).collect();
    assert_eq!(steps, vec![1, 2, 3, 4, 5, 6]);
    assert!(FAMILY.load(&run, &ds, Device::Cpu).is_ok());
    let b = means(&run, &first);
    // Two more steps move the weights a little; a restart from scratch would move them a lot.
    let fresh = RunDir::create(&dir.path().join("fresh"), &first, false).unwrap();
    let two_steps = config(2);
    FAMILY.train(&TrainContext::new(&two_steps, &fresh, &ds, Device::Cpu)).unwrap();
    let c = means(&fresh, &first);
    let distance = |p: &Tensor, q: &Tensor| (p - q).abs().mean(Kind::Float).double_value(&[]);
    let (resumed, restarted) = (distance(&a, &b), distance(&a, &c));
    assert!(resumed > 0.0 && resumed < 0.3 * restarted, "resumed {resumed}, restarted {restarted}");

    // Every set damaged: loading fails naming the files.
    for (_, set) in mmlatent_train::checkpoint::list_sets(&run.stage_dir("ebm"), "step").unwrap() {
        let path = set.join("generator.safetensors");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    }
    let err = format!("{:#}", FAMILY.load(&run, &ds, Device::Cpu).err().unwrap());
    assert!(err.contains("cannot load stage ebm") && err.contains("every checkpoint set"), "{err}");
    assert!(err.contains("generator.safetensors"), "the damaged file is not named: {err}");
}
