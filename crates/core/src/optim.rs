//! Adam / AdamW with the optimiser state in our hands, so that it can be checkpointed (a resumed
//! run continues with its moment estimates instead of restarting them) and updated in one pass.
//!
//! The update of Kingma & Ba (2015, Algorithm 1) in PyTorch's form: with gradient g at step t,
//!   m ← β₁ m + (1 − β₁) g,   v ← β₂ v + (1 − β₂) g²,
//!   p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε);
//! AdamW first decays p ← p (1 − lr·λ) (Loshchilov & Hutter 2019), Adam adds λ p to g instead.
//!
//! On CPU, for `f32` parameters, the whole update is one fused loop over (p, g, m, v) in Rust,
//! split over libtorch's thread count: one read of four arrays and one write of three, where the
//! op-by-op form of libtorch (and of `torch.optim.Adam` on CPU) streams through memory about ten
//! times. Other devices and kinds take the op-by-op path. [`Adam::backward_step`] takes the
//! gradients from `torch.autograd.grad`-style back-propagation, so they are never accumulated into
//! (or zeroed in) `.grad` buffers; in a data-parallel job, from the [`GradientExchange`] the
//! training loop installs (its DDP reducer leaves the averaged gradients in `.grad`).

use crate::precision::{self, full_precision};
use anyhow::{bail, ensure, Context, Result};
use std::path::Path;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// Hyper-parameters of [`Adam`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// AdamW's decoupled weight decay when true, an L2 term added to the gradient when false.
    pub decoupled: bool,
}

impl AdamConfig {
    /// Adam with PyTorch's defaults (β = (0.9, 0.999), ε = 1e-8, no weight decay).
    pub fn adam(lr: f64) -> Self {
        Self { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, decoupled: false }
    }

    /// AdamW with decoupled weight decay `weight_decay`.
    pub fn adamw(lr: f64, weight_decay: f64) -> Self {
        Self { weight_decay, decoupled: true, ..Self::adam(lr) }
    }

    pub fn betas(self, beta1: f64, beta2: f64) -> Self {
        Self { beta1, beta2, ..self }
    }
}

/// How an optimiser's gradients are shared with the other processes of a data-parallel job: the
/// training loop installs one into each of its optimisers ([`Adam::exchange_gradients`]), and
/// every later update takes its gradients through it. The optimiser knows nothing of processes or
/// collectives; the implementation (the training runtime's) does.
pub trait GradientExchange: Send {
    /// The gradients of `loss` with respect to `values` (and no others), each the mean over the
    /// processes; undefined where no process's graph reaches the value.
    fn backward(&mut self, loss: &Tensor, values: &[&Tensor]) -> Result<Vec<Tensor>>;

    /// `grads` (the gradients of `values`, in the same order, back-propagated by hand) averaged
    /// over the processes; undefined only where no process has a gradient.
    fn average(&mut self, grads: Vec<Tensor>, values: &[&Tensor]) -> Result<Vec<Tensor>>;
}

/// One trainable variable and its moment estimates.
struct Slot {
    name: String,
    value: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
}

/// Adam over the trainable variables of a [`VarStore`].
pub struct Adam {
    config: AdamConfig,
    slots: Vec<Slot>,
    step: i64,
    /// Average the gradients over the ranks of a data-parallel job before each update (installed
    /// by the training loop into its optimisers; see [`GradientExchange`]).
    across_ranks: Option<Box<dyn GradientExchange>>,
}

/// The scalars of one update, shared by both paths.
#[derive(Clone, Copy)]
struct StepScalars {
    beta1: f32,
    beta2: f32,
    eps: f32,
    step_size: f32,
    inv_sqrt_bc2: f32,
    l2: f32,
    decay: f32,
}

impl Adam {
    /// An optimiser for every trainable variable of `vs` (in name order), moments at zero.
    pub fn new(vs: &VarStore, config: AdamConfig) -> Self {
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let slots = vars
            .into_iter()
            .map(|(name, value)| {
                let (exp_avg, exp_avg_sq) = (value.zeros_like().detach(), value.zeros_like().detach());
                Slot { name, value, exp_avg, exp_avg_sq }
            })
            .collect();
        Self { config, slots, step: 0, across_ranks: None }
    }

    /// The learning rate of the next update.
    pub fn lr(&self) -> f64 {
        self.config.lr
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    /// Makes every later update take its gradients through the exchange `make` returns (called
    /// only when none is installed yet; a process alone gets one that changes nothing).
    pub fn exchange_gradients(&mut self, make: impl FnOnce() -> Box<dyn GradientExchange>) {
        self.across_ranks.get_or_insert_with(make);
    }

    /// Updates taken so far.
    pub fn steps_taken(&self) -> i64 {
        self.step
    }

    /// Back-propagates `loss` to this optimiser's variables only and updates them. Other
    /// variables the loss depends on get no gradient.
    /// Runs in fp32 inside a bf16 region ([`crate::precision`]).
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        full_precision(|| {
            let values: Vec<&Tensor> = self.slots.iter().map(|s| &s.value).collect();
            let grads = match &mut self.across_ranks {
                Some(exchange) => exchange.backward(loss, &values)?,
                None => Tensor::f_run_backward(&[loss], &values, false, false).context("backward pass failed")?,
            };
            self.apply(grads)
        })
    }

    /// Zeroes the accumulated `.grad` of every variable (for losses back-propagated by hand).
    pub fn zero_grad(&mut self) {
        for slot in &mut self.slots {
            slot.value.zero_grad();
        }
    }

    /// Updates the variables from their accumulated `.grad` (variables without one are skipped).
    pub fn step(&mut self) -> Result<()> {
        full_precision(|| self.step_from_grad())
    }

    fn step_from_grad(&mut self) -> Result<()> {
        let grads: Vec<Tensor> = self.slots.iter().map(|s| s.value.grad()).collect();
        let grads = match &mut self.across_ranks {
            Some(exchange) => {
                let values: Vec<&Tensor> = self.slots.iter().map(|s| &s.value).collect();
                exchange.average(grads, &values)?
            }
            None => grads,
        };
        self.apply(grads)
    }

    fn scalars(&self) -> StepScalars {
        let c = &self.config;
        let t = self.step as f64;
        let (bc1, bc2) = (1.0 - c.beta1.powf(t), 1.0 - c.beta2.powf(t));
        let (l2, decay) = if c.decoupled { (0.0, 1.0 - c.lr * c.weight_decay) } else { (c.weight_decay, 1.0) };
        StepScalars {
            beta1: c.beta1 as f32,
            beta2: c.beta2 as f32,
            eps: c.eps as f32,
            step_size: (c.lr / bc1) as f32,
            inv_sqrt_bc2: (1.0 / bc2.sqrt()) as f32,
            l2: l2 as f32,
            decay: decay as f32,
        }
    }

    /// One update with `grads[i]` the gradient of slot i (undefined: no update of that slot).
    fn apply(&mut self, grads: Vec<Tensor>) -> Result<()> {
        self.step += 1;
        let s = self.scalars();
        let _guard = tch::no_grad_guard();
        let mut fused: Vec<FusedSlices> = Vec::new();
        for (slot, grad) in self.slots.iter_mut().zip(&grads) {
            if !grad.defined() {
                continue;
            }
            let fusable = slot.value.device() == Device::Cpu
                && slot.value.kind() == Kind::Float
                && grad.kind() == Kind::Float
                && grad.device() == Device::Cpu
                && slot.value.is_contiguous();
            if fusable {
                let grad = grad.contiguous();
                // The fused loop writes through raw pointers, which autograd cannot see. An
                // in-place op on an empty view bumps the version counter the variable shares
                // with its views (at no cost), so a graph that saved the variable before this
                // step refuses to back-propagate afterwards, as after libtorch's own optimisers.
                let _ = slot.value.view([-1]).narrow(0, 0, 0).zero_();
                // SAFETY: every tensor is a contiguous CPU f32 buffer of `numel` elements, alive for
                // the duration of this call (`grad` is kept in `FusedSlices`), and the four buffers
                // are distinct allocations (the moments are our own, the gradient fresh or .grad).
                fused.push(unsafe { FusedSlices::new(&slot.value, grad, &slot.exp_avg, &slot.exp_avg_sq) });
            } else {
                update_with_ops(slot, grad, &s);
            }
        }
        if !fused.is_empty() {
            run_fused(&mut fused, &s, tch::get_num_threads().max(1) as usize);
        }
        // Inside a bf16 region, later forward passes must cast the updated weights afresh.
        precision::weights_changed();
        Ok(())
    }

    /// The step count and moments as named tensors (`step`, `exp_avg.<var>`, `exp_avg_sq.<var>`),
    /// for a checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut named: Vec<(String, Tensor)> = vec![("step".into(), Tensor::from_slice(&[self.step]))];
        for slot in &self.slots {
            named.push((format!("exp_avg.{}", slot.name), slot.exp_avg.shallow_clone()));
            named.push((format!("exp_avg_sq.{}", slot.name), slot.exp_avg_sq.shallow_clone()));
        }
        named
    }

    /// Restores a state returned by [`Adam::state`] (read from `path`, named in errors); every
    /// variable must be there with its shape.
    pub fn restore_state(&mut self, tensors: &[(String, Tensor)], path: &Path) -> Result<()> {
        let take_tensor = |name: &str| {
            tensors
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.shallow_clone())
                .with_context(|| format!("{} has no tensor named `{name}`", path.display()))
        };
        let step = take_tensor("step")?;
        ensure!(step.numel() == 1, "{}: `step` is not a scalar", path.display());
        let _guard = tch::no_grad_guard();
        for slot in &mut self.slots {
            for (prefix, moment) in [("exp_avg", &mut slot.exp_avg), ("exp_avg_sq", &mut slot.exp_avg_sq)] {
                let saved = take_tensor(&format!("{prefix}.{}", slot.name))?;
                if saved.size() != moment.size() {
                    bail!(
                        "{}: {prefix}.{} has shape {:?}, the model's variable {:?} (another architecture?)",
                        path.display(),
                        slot.name,
                        saved.size(),
                        moment.size()
                    );
                }
                moment.copy_(&saved);
            }
        }
        self.step = step.int64_value(&[0]);
        Ok(())
    }
}

/// The op-by-op update, for devices and kinds the fused loop does not cover.
fn update_with_ops(slot: &mut Slot, grad: &Tensor, s: &StepScalars) {
    // Not in place: the gradient may be the variable's `.grad`.
    let grad = if s.l2 != 0.0 { grad + &slot.value * s.l2 as f64 } else { grad.shallow_clone() };
    if s.decay != 1.0 {
        let _ = slot.value.g_mul_scalar_(s.decay as f64);
    }
    let _ = slot.exp_avg.lerp_(&grad, 1.0 - s.beta1 as f64);
    let _ = slot.exp_avg_sq.g_mul_scalar_(s.beta2 as f64).g_add_(&(grad.square() * (1.0 - s.beta2 as f64)));
    let denom = slot.exp_avg_sq.sqrt() * s.inv_sqrt_bc2 as f64 + s.eps as f64;
    let _ = slot.value.g_sub_(&(&slot.exp_avg / denom * s.step_size as f64));
}

/// Raw views of one variable's buffers for the fused loop.
struct FusedSlices {
    value: *mut f32,
    grad: *const f32,
    exp_avg: *mut f32,
    exp_avg_sq: *mut f32,
    len: usize,
    _grad: Tensor,
}

// SAFETY: the pointers are only dereferenced in `run_fused`, on disjoint element ranges.
unsafe impl Send for FusedSlices {}
unsafe impl Sync for FusedSlices {}

impl FusedSlices {
    /// # Safety
    /// All four tensors must be contiguous CPU f32 buffers of the same length that outlive `Self`.
    unsafe fn new(value: &Tensor, grad: Tensor, exp_avg: &Tensor, exp_avg_sq: &Tensor) -> Self {
        Self {
            value: value.data_ptr() as *mut f32,
            grad: grad.data_ptr() as *const f32,
            exp_avg: exp_avg.data_ptr() as *mut f32,
            exp_avg_sq: exp_avg_sq.data_ptr() as *mut f32,
            len: value.numel(),
            _grad: grad,
        }
    }
}

/// Below this many elements per thread the update runs on the calling thread.
const MIN_PER_THREAD: usize = 1 << 16;

/// Runs the fused update over all `slots`, in `threads` contiguous shares of the total elements.
fn run_fused(slots: &mut [FusedSlices], s: &StepScalars, threads: usize) {
    let total: usize = slots.iter().map(|f| f.len).sum();
    let threads = threads.min(total / MIN_PER_THREAD).max(1);
    let share = total.div_ceil(threads);
    // Ranges (slot, start, end) of each thread's share.
    let mut shares: Vec<Vec<(usize, usize, usize)>> = vec![Vec::new(); threads];
    let (mut thread, mut room) = (0, share);
    for (i, f) in slots.iter().enumerate() {
        let mut start = 0;
        while start < f.len {
            let take = room.min(f.len - start);
            shares[thread].push((i, start, start + take));
            start += take;
            room -= take;
            if room == 0 && thread + 1 < threads {
                thread += 1;
                room = share;
            }
        }
    }
    let slots = &*slots;
    let work = |ranges: &[(usize, usize, usize)]| {
        for &(i, a, b) in ranges {
            let f = &slots[i];
            // SAFETY: the shares are disjoint ranges inside each buffer (see `FusedSlices::new`).
            unsafe {
                fused_adam(
                    std::slice::from_raw_parts_mut(f.value.add(a), b - a),
                    std::slice::from_raw_parts(f.grad.add(a), b - a),
                    std::slice::from_raw_parts_mut(f.exp_avg.add(a), b - a),
                    std::slice::from_raw_parts_mut(f.exp_avg_sq.add(a), b - a),
                    s,
                )
            }
        }
    };
    if threads == 1 {
        work(&shares[0]);
    } else {
        std::thread::scope(|scope| {
            for ranges in &shares[1..] {
                scope.spawn(|| work(ranges));
            }
            work(&shares[0]);
        });
    }
}

/// The Adam update of the module docs on one range, element by element (the compiler vectorises).
fn fused_adam(value: &mut [f32], grad: &[f32], exp_avg: &mut [f32], exp_avg_sq: &mut [f32], s: &StepScalars) {
    let (b1, b2) = (s.beta1, s.beta2);
    for (((p, &g), m), v) in value.iter_mut().zip(grad).zip(exp_avg.iter_mut()).zip(exp_avg_sq.iter_mut()) {
        let g = g + s.l2 * *p;
        let mi = b1 * *m + (1.0 - b1) * g;
        let vi = b2 * *v + (1.0 - b2) * g * g;
        *m = mi;
        *v = vi;
        *p = *p * s.decay - s.step_size * mi / (vi.sqrt() * s.inv_sqrt_bc2 + s.eps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn;

    /// A store with one 2-D and one 1-D variable, with the same values on every call.
    fn store(device: Device, kind: Kind) -> VarStore {
        let vs = VarStore::new(device);
        let mut w = vs.root().var("w", &[3, 70_000], nn::Init::Const(0.0));
        let mut b = vs.root().var("b", &[5], nn::Init::Const(0.0));
        tch::no_grad(|| {
            // Deterministic values without the (global, test-shared) random generator.
            let cpu = (Kind::Float, Device::Cpu);
            w.copy_(&(Tensor::arange(3 * 70_000, cpu) * 0.37).sin().reshape([3, 70_000]));
            b.copy_(&(Tensor::arange(5, cpu) - 2.0));
        });
        let mut vs = vs;
        vs.set_kind(kind);
        vs
    }

    fn loss(vs: &VarStore) -> Tensor {
        let v = vs.variables();
        (v["w"].sin().sum(Kind::Float) + v["b"].square().sum(Kind::Float)) * 0.5
    }

    /// A graph that saved a variable before an update must refuse to back-propagate after it
    /// (the update changed the saved value), on the fused path as on libtorch's own.
    #[test]
    fn an_update_invalidates_graphs_that_saved_the_variable() {
        let vs = store(Device::Cpu, Kind::Float);
        let mut adam = Adam::new(&vs, AdamConfig::adam(1e-2));
        let x = Tensor::ones([70_000], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        // w is saved for the gradient with respect to x.
        let stale = (vs.variables()["w"].get(0) * &x).sum(Kind::Float);
        adam.backward_step(&loss(&vs)).unwrap();
        let err = Tensor::f_run_backward(&[&stale], &[&x], false, false).map(|_| ()).unwrap_err();
        assert!(err.to_string().contains("modified by an inplace operation"), "{err}");
    }

    /// The fused f32 loop and the op-by-op f64 path follow the same trajectory as libtorch's
    /// own Adam / AdamW (tch's optimiser) over several steps, weight decay included.
    #[test]
    fn matches_libtorch_adam_and_adamw() {
        use tch::nn::OptimizerConfig;
        for (config, reference) in [
            (AdamConfig::adam(0.05), nn::adam(0.9, 0.999, 0.0)),
            (AdamConfig::adam(0.05).betas(0.5, 0.99), nn::adam(0.5, 0.99, 0.0)),
            (AdamConfig { weight_decay: 0.1, ..AdamConfig::adam(0.05) }, nn::adam(0.9, 0.999, 0.1)),
        ] {
            for kind in [Kind::Float, Kind::Double] {
                let (ours, theirs) = (store(Device::Cpu, kind), store(Device::Cpu, kind));
                let mut adam = Adam::new(&ours, config);
                let mut opt = reference.build(&theirs, config.lr).unwrap();
                for _ in 0..5 {
                    adam.backward_step(&loss(&ours)).unwrap();
                    opt.backward_step(&loss(&theirs));
                }
                for (name, t) in theirs.variables() {
                    let diff = (&ours.variables()[&name] - t).abs().max().double_value(&[]);
                    assert!(diff < 1e-5, "{config:?} {kind:?} {name}: max difference {diff}");
                }
            }
        }
        let (ours, theirs) = (store(Device::Cpu, Kind::Float), store(Device::Cpu, Kind::Float));
        let mut adam = Adam::new(&ours, AdamConfig::adamw(0.05, 0.2));
        let mut opt = nn::AdamW { wd: 0.2, ..Default::default() }.build(&theirs, 0.05).unwrap();
        for _ in 0..5 {
            adam.zero_grad();
            loss(&ours).backward();
            adam.step().unwrap();
            opt.backward_step(&loss(&theirs));
        }
        let diff = (&ours.variables()["w"] - &theirs.variables()["w"]).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "AdamW: max difference {diff}");
    }

    /// Splitting the fused update over threads gives the same result as one thread.
    #[test]
    fn threads_do_not_change_the_update() {
        let results: Vec<Tensor> = [1usize, 3]
            .iter()
            .map(|&threads| {
                let vs = store(Device::Cpu, Kind::Float);
                let mut adam = Adam::new(&vs, AdamConfig::adam(0.01));
                let values: Vec<&Tensor> = adam.slots.iter().map(|s| &s.value).collect();
                let grads = Tensor::run_backward(&[loss(&vs)], &values, false, false);
                adam.step += 1;
                let s = adam.scalars();
                let mut fused: Vec<FusedSlices> = adam
                    .slots
                    .iter()
                    .zip(grads)
                    .map(|(slot, g)| unsafe { FusedSlices::new(&slot.value, g, &slot.exp_avg, &slot.exp_avg_sq) })
                    .collect();
                run_fused(&mut fused, &s, threads);
                vs.variables()["w"].copy()
            })
            .collect();
        assert_eq!((&results[0] - &results[1]).abs().max().double_value(&[]), 0.0);
    }

    /// Saved moments restore exactly: a run interrupted and resumed from the optimiser's state
    /// takes the same steps as an uninterrupted one; a mismatched or incomplete state is refused.
    #[test]
    fn state_round_trips() {
        let path = Path::new("adam.safetensors");
        let (straight, resumed) = (store(Device::Cpu, Kind::Float), store(Device::Cpu, Kind::Float));
        let mut a = Adam::new(&straight, AdamConfig::adam(0.05));
        let mut b = Adam::new(&resumed, AdamConfig::adam(0.05));
        for _ in 0..3 {
            a.backward_step(&loss(&straight)).unwrap();
            b.backward_step(&loss(&resumed)).unwrap();
        }
        let saved: Vec<(String, Tensor)> = b.state().into_iter().map(|(n, t)| (n, t.copy())).collect();
        let mut b = Adam::new(&resumed, AdamConfig::adam(0.05));
        b.restore_state(&saved, path).unwrap();
        assert_eq!(b.steps_taken(), 3);
        for _ in 0..3 {
            a.backward_step(&loss(&straight)).unwrap();
            b.backward_step(&loss(&resumed)).unwrap();
        }
        let diff = (&straight.variables()["w"] - &resumed.variables()["w"]).abs().max().double_value(&[]);
        assert_eq!(diff, 0.0);

        let other = VarStore::new(Device::Cpu);
        let _ = other.root().var("w", &[2, 2], nn::Init::Const(0.0));
        let err = Adam::new(&other, AdamConfig::adam(0.05)).restore_state(&saved, path).unwrap_err();
        assert!(format!("{err:#}").contains("shape"), "{err:#}");
        let err = Adam::new(&other, AdamConfig::adam(0.05)).restore_state(&saved[..1], path).unwrap_err();
        assert!(format!("{err:#}").contains("adam.safetensors has no tensor named `exp_avg.w`"), "{err:#}");
    }
}
