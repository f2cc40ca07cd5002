//! A stage asked to stop (as the CLI's Ctrl-C / SIGTERM handler asks) checkpoints at the step it
//! was on and ends with `Interrupted`; resumed, it ends with the weights of an uninterrupted run.
//! Its own test binary: the request flag is process-wide, and the library's unit tests train
//! stages in parallel threads.

use anyhow::Result;
use mmlatent_core::optim::{Adam, AdamConfig};
use mmlatent_train::checkpoint;
use mmlatent_train::config::TrainConfig;
use mmlatent_train::interrupt::{self, Interrupted};
use mmlatent_train::run::RunDir;
use mmlatent_train::testing::{toy_run as run_dir, toy_store as store};
use mmlatent_train::training::{Metrics, Outcome, Stage, SET_PREFIX};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// 10 steps fitting `w` to a target that moves with the step (libtorch's generator adds noise,
/// so an exact resume also needs the loop's per-step reseeding); asks for a stop during step
/// `stop_in` (0-based).
fn train(run: &RunDir, vs: &VarStore, stop_in: Option<usize>) -> Result<Outcome> {
    let cfg = TrainConfig { checkpoint_every: 4, log_every: 3, ..Default::default() };
    Stage::new(run, "toy", 10, &cfg, 3)
        .quiet()
        .weights("w", vs)
        .optimiser("adam", Adam::new(vs, AdamConfig::adam(0.1)))
        .run(|step, opts| -> Result<Metrics> {
            if Some(step) == stop_in {
                assert!(interrupt::request(), "a training stage takes the request");
                assert!(!interrupt::request(), "a second request is the caller's to act on");
            }
            let w = &vs.variables()["w"];
            let target = Tensor::from_slice(&[1.0f32, -2.0, 3.0, (step % 3) as f32])
                + Tensor::randn([4], (Kind::Float, Device::Cpu));
            let loss = (w - target).square().sum(Kind::Float);
            opts[0].backward_step(&loss)?;
            Ok(vec![("loss", loss.double_value(&[]))])
        })
}

#[test]
fn a_stage_asked_to_stop_checkpoints_where_it_is_and_resumes_exactly() {
    assert!(!interrupt::request(), "no stage is training: nothing takes the request");
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (straight, stopped) = (run_dir(a.path()), run_dir(b.path()));
    let (vs1, vs2) = (store(), store());
    train(&straight, &vs1, None).unwrap();

    // Asked during step 6 (0-based 5): step 6 completes, is logged and saved, off the
    // checkpoint_every = 4 grid.
    let err = train(&stopped, &vs2, Some(5)).unwrap_err();
    assert!(interrupt::is_interrupted(&err), "{err:#}");
    let stop = err.downcast_ref::<Interrupted>().unwrap();
    assert_eq!((stop.stage.as_str(), stop.step, stop.total), ("toy", 6, 10));
    assert!(stop.set.ends_with("step-00000006") && stop.set.is_dir(), "{}", stop.set.display());
    assert!(format!("{err:#}").contains("--resume"), "{err:#}");
    let sets: Vec<usize> =
        checkpoint::list_sets(&stopped.stage_dir("toy"), SET_PREFIX).unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(sets, vec![4, 6]);
    let log = std::fs::read_to_string(stopped.root().join("metrics.jsonl")).unwrap();
    assert!(log.lines().last().unwrap().contains("\"step\":6"), "{log}");

    // The request was consumed: the resumed stage runs to its end.
    let vs3 = store();
    assert_eq!(train(&stopped, &vs3, None).unwrap(), Outcome { start: 6, trained: true });
    assert!(vs1.variables()["w"].equal(&vs3.variables()["w"]), "resumed weights differ from the uninterrupted run's");
}
