//! Stages trained side by side stop together: a stop request taken by one of them makes every
//! stage checkpoint at its current step, and the group resumed ends with the weights of an
//! uninterrupted run. Its own test binary: the request flag is process-wide.

use anyhow::Result;
use mmlatent_core::optim::{Adam, AdamConfig};
use mmlatent_train::checkpoint;
use mmlatent_train::config::TrainConfig;
use mmlatent_train::interrupt::{self, Interrupted};
use mmlatent_train::run::RunDir;
use mmlatent_train::side_by_side::{self, Job};
use mmlatent_train::testing::{toy_run, toy_store};
use mmlatent_train::training::{Metrics, Stage, SET_PREFIX};
use std::sync::Barrier;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

const STEPS: usize = 40;

/// Stage `name`: `STEPS` deterministic steps (side-by-side stages must not draw from libtorch's
/// global generator) fitting `w` to a target that moves with the step. Step 0 waits at `start`
/// for the other stages; `stop_in`: ask for a stop during that step.
fn job<'a>(run: &'a RunDir, name: &'a str, vs: &'a VarStore, start: &'a Barrier, stop_in: Option<usize>) -> Job<'a> {
    Box::new(move || {
        let cfg = TrainConfig { checkpoint_every: 1000, log_every: 5, ..Default::default() };
        Stage::new(run, name, STEPS, &cfg, 3)
            .quiet()
            .weights("w", vs)
            .optimiser("adam", Adam::new(vs, AdamConfig::adam(0.1)))
            .run(|step, opts| -> Result<Metrics> {
                if step == 0 {
                    start.wait();
                }
                if Some(step) == stop_in {
                    assert!(interrupt::request(), "stages training side by side take requests");
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
                let w = &vs.variables()["w"];
                let target = Tensor::from_slice(&[1.0f32, -2.0, 3.0, (step % 3) as f32]);
                let loss = (w - target).square().sum(Kind::Float);
                opts[0].backward_step(&loss)?;
                Ok(vec![("loss", loss.double_value(&[]))])
            })?;
        Ok(())
    })
}

fn sets(run: &RunDir, stage: &str) -> Vec<usize> {
    checkpoint::list_sets(&run.stage_dir(stage), SET_PREFIX).unwrap().into_iter().map(|(s, _)| s).collect()
}

#[test]
fn side_by_side_stages_stop_together_and_resume_exactly() {
    tch::set_num_threads(2);
    assert_eq!(side_by_side::plan(3, 2, Device::Cpu), Some(vec![1, 1, 1]));
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (straight, stopped) = (toy_run(a.path()), toy_run(b.path()));
    let reference = [toy_store(), toy_store(), toy_store()];

    // Uninterrupted: each stage alone (one thread: one at a time).
    tch::set_num_threads(1);
    for (name, vs) in ["a", "b", "c"].iter().zip(&reference) {
        let alone = Barrier::new(1);
        side_by_side::run(vec![job(&straight, name, vs, &alone, None)], Device::Cpu).unwrap();
    }
    tch::set_num_threads(2);

    // All three run at once (their first steps wait for each other). Asked during a's step 6
    // (0-based 5): every stage stops mid-way and checkpoints.
    let stores = [toy_store(), toy_store(), toy_store()];
    let start = Barrier::new(3);
    let jobs = vec![
        job(&stopped, "a", &stores[0], &start, Some(5)),
        job(&stopped, "b", &stores[1], &start, None),
        job(&stopped, "c", &stores[2], &start, None),
    ];
    let err = side_by_side::run(jobs, Device::Cpu).unwrap_err();
    assert!(interrupt::is_interrupted(&err), "{err:#}");
    let stop = err.downcast_ref::<Interrupted>().unwrap();
    assert_eq!((stop.stage.as_str(), stop.step, stop.total), ("a", 6, STEPS), "the first job's stop is reported");
    assert_eq!(sets(&stopped, "a"), vec![6]);
    for stage in ["b", "c"] {
        let at = sets(&stopped, stage);
        assert!(at.len() == 1 && at[0] > 0 && at[0] < STEPS, "{stage} stopped mid-way with a set: {at:?}");
    }
    assert_eq!(tch::get_num_threads(), 2, "the caller's thread count is restored");

    // Resumed (fresh stores, as a new process would have): every stage ends where the
    // uninterrupted ones did, bit for bit.
    let resumed = [toy_store(), toy_store(), toy_store()];
    let start = Barrier::new(3); // (not waited at: no stage runs its step 0 again)
    let jobs = vec![
        job(&stopped, "a", &resumed[0], &start, None),
        job(&stopped, "b", &resumed[1], &start, None),
        job(&stopped, "c", &resumed[2], &start, None),
    ];
    side_by_side::run(jobs, Device::Cpu).unwrap();
    for (stage, (x, y)) in ["a", "b", "c"].iter().zip(reference.iter().zip(&resumed)) {
        assert!(x.variables()["w"].equal(&y.variables()["w"]), "stage {stage}: resumed weights differ");
        assert_eq!(sets(&stopped, stage).last(), Some(&STEPS));
    }
}
