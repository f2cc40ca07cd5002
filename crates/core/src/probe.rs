//! Class probes: how much of the class a set of features carries, as the test accuracy of a
//! small classifier fit on training features — multinomial logistic regression (a linear probe)
//! or one hidden layer in front of it. Evaluation reads latent spaces with them; MLD reports them
//! for its autoencoders at the end of stage 1.

use anyhow::Result;
use tch::{nn, nn::OptimizerConfig, Kind, Tensor};

/// Test accuracy of a linear probe: multinomial logistic regression of the labels `[N]` on the
/// features `[N, D]` (standardised with the training features' statistics), fit by full-batch
/// Adam from zero weights (so deterministic) with a small L2 penalty.
pub fn linear_probe(train: (&Tensor, &Tensor), test: (&Tensor, &Tensor), classes: i64) -> Result<f64> {
    class_probe(train, test, classes, 0)
}

/// [`linear_probe`] with a hidden ReLU layer of `hidden` units in front (0: none, the linear
/// probe). The hidden layer's initial weights are random (libtorch's generator).
pub fn class_probe(train: (&Tensor, &Tensor), test: (&Tensor, &Tensor), classes: i64, hidden: i64) -> Result<f64> {
    let (x, y) = (train.0.to_kind(Kind::Float), train.1);
    let mean = x.mean_dim(0, true, Kind::Float);
    let std = x.std_dim(0, true, true) + 1e-6;
    let standardise = |f: &Tensor| (f.to_kind(Kind::Float) - &mean) / &std;
    let vs = nn::VarStore::new(x.device());
    let zero = nn::LinearConfig { ws_init: nn::Init::Const(0.0), bs_init: Some(nn::Init::Const(0.0)), bias: true };
    let mut probe = nn::seq();
    let mut width = x.size()[1];
    if hidden > 0 {
        probe = probe.add(nn::linear(vs.root() / "hidden", width, hidden, Default::default())).add_fn(|h| h.relu());
        width = hidden;
    }
    let probe = probe.add(nn::linear(vs.root() / "out", width, classes, zero));
    let mut adam = nn::Adam::default().build(&vs, 0.01)?;
    let x = standardise(&x);
    // The caller may be under a no-grad guard (evaluation); the fit needs gradients.
    tch::with_grad(|| {
        for _ in 0..300 {
            let penalty = vs.trainable_variables().iter().map(|w| w.square().sum(Kind::Float)).sum::<Tensor>() * 1e-4;
            adam.backward_step(&(x.apply(&probe).cross_entropy_for_logits(y) + penalty));
        }
    });
    let _guard = tch::no_grad_guard();
    let predicted = standardise(test.0).apply(&probe).argmax(-1, false);
    Ok(predicted.eq_tensor(test.1).to_kind(Kind::Double).mean(Kind::Double).double_value(&[]))
}
