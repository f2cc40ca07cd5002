//! Data-parallel training: N processes (ranks) train one model, each on its own share of every
//! batch, over libtorch's c10d collectives (`mmlatent-collective`: a TCPStore rendezvous, then
//! Gloo on the CPU or NCCL with one CUDA device per process).
//!
//! What each rank does, so that N ranks with batch B/N each follow one process with batch B:
//! - **data**: every rank draws the same global batch of B tuples (the seeded epoch order of
//!   [`crate::loader`]) and keeps its own B/N rows of it ([`local_rows`]);
//! - **gradients**: the optimisers of a training stage average their gradients over the ranks
//!   before each update (the stage installs a [`GradientAverager`] into each as its
//!   [`GradientExchange`]), so every rank takes the same update from the same weights, which start
//!   equal (rank 0's are broadcast when a stage starts). A backward pass goes through libtorch's
//!   DDP reducer ([`GradientAverager`]): buckets of gradients are all-reduced while the pass
//!   goes on; gradients back-propagated by hand, or all of them with [`BUCKET_VAR`] = 0, take one
//!   flat all-reduce after the pass ([`average_gradients`]);
//! - **randomness**: each rank draws its own noise, diffusion times, subsets and Langevin chains
//!   ([`seed_salt`] enters [`crate::training::step_seed`]); rank 0 draws what a single process
//!   draws;
//! - **files**: rank 0 alone writes checkpoints, logs, plots and sample grids ([`is_leader`]);
//!   the others wait at the stage's boundaries (barriers) and read the same checkpoints when
//!   resuming;
//! - **stopping**: a stop request (Ctrl-C, SIGTERM) on any rank stops all of them after the same
//!   step ([`agree`]); a rank that dies makes the others' next collective fail, naming the lost
//!   connection, instead of hanging (every collective is bounded by the job's timeout).
//!
//! A process belongs to a job when `WORLD_SIZE` > 1 is set with `RANK`, `MASTER_ADDR` and
//! `MASTER_PORT` (the variables `torchrun` and Slurm wrappers set; `mmlatent train --nproc N`
//! sets them for its N local workers; see [`membership`] for a job of one): [`plan_from_env`]
//! reads them, [`join`] connects once the device is known. Without them nothing here does
//! anything and a single process trains as before.

use anyhow::{bail, Context, Result};
use mmlatent_collective::{backward_ready_order, Backend, GradientReducer, ProcessGroup};
use mmlatent_core::optim::GradientExchange;
use std::sync::OnceLock;
use std::time::Duration;
use tch::{Device, Kind, Tensor};

/// The environment variable bounding the rendezvous and every collective, in seconds.
pub const TIMEOUT_VAR: &str = "MMLATENT_DIST_TIMEOUT";
/// The default of [`TIMEOUT_VAR`]: long enough for rank 0 to write sample grids while the others
/// wait, short enough that a job missing a rank stops the same day.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(900);

static PLAN: OnceLock<Membership> = OnceLock::new();
static GROUP: OnceLock<ProcessGroup> = OnceLock::new();

/// Where this process stands in its job, as read from the launcher's variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub rank: usize,
    pub world: usize,
    pub local_rank: usize,
    pub master_addr: String,
    pub master_port: u16,
    pub timeout: Duration,
    /// The size of the gradient buckets all-reduced during the backward pass ([`BUCKET_VAR`]; 0:
    /// one all-reduce after it).
    pub bucket_bytes: usize,
}

/// Reads `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT` and
/// [`TIMEOUT_VAR`] through `var`; `None` for a single process: no `WORLD_SIZE`, or 1 without a
/// rendezvous address (with `MASTER_ADDR` and `MASTER_PORT`, as `torchrun --nproc-per-node 1`
/// sets them, a job of one forms: every collective runs, on one rank).
pub fn membership(var: impl Fn(&str) -> Option<String>) -> Result<Option<Membership>> {
    fn number<T: std::str::FromStr>(var: &impl Fn(&str) -> Option<String>, name: &str) -> Result<Option<T>> {
        var(name)
            .map(|v| v.trim().parse::<T>().map_err(|_| anyhow::anyhow!("{name}={v} is not a valid number")))
            .transpose()
    }
    let world: usize = match number(&var, "WORLD_SIZE")? {
        None => return Ok(None),
        Some(1) if var("MASTER_ADDR").is_none() || var("MASTER_PORT").is_none() => return Ok(None),
        Some(0) => bail!("WORLD_SIZE=0: a job needs at least one process"),
        Some(w) => w,
    };
    let need = |name: &str| {
        format!(
            "WORLD_SIZE={world} is set, but {name} is not (a launcher sets RANK, MASTER_ADDR and MASTER_PORT with it)"
        )
    };
    let rank: usize = number(&var, "RANK")?.with_context(|| need("RANK"))?;
    if rank >= world {
        bail!("RANK={rank} is not below WORLD_SIZE={world}");
    }
    let master_addr = var("MASTER_ADDR").filter(|a| !a.trim().is_empty()).with_context(|| need("MASTER_ADDR"))?;
    let master_port: u16 = number(&var, "MASTER_PORT")?.with_context(|| need("MASTER_PORT"))?;
    let local_rank = number(&var, "LOCAL_RANK")?.unwrap_or(rank);
    let timeout = match number::<f64>(&var, TIMEOUT_VAR)? {
        Some(s) if s > 0.0 && s.is_finite() => Duration::from_secs_f64(s),
        Some(s) => bail!("{TIMEOUT_VAR}={s}: give a positive number of seconds"),
        None => DEFAULT_TIMEOUT,
    };
    let bucket_mib = match number::<f64>(&var, BUCKET_VAR)? {
        Some(mib) if mib >= 0.0 && mib.is_finite() => mib,
        Some(mib) => bail!("{BUCKET_VAR}={mib}: give a number of MiB, or 0 for one all-reduce after the backward pass"),
        None => DEFAULT_BUCKET_MIB,
    };
    let bucket_bytes = (bucket_mib * (1u64 << 20) as f64).round() as usize;
    Ok(Some(Membership {
        rank,
        world,
        local_rank,
        master_addr: master_addr.trim().to_string(),
        master_port,
        timeout,
        bucket_bytes,
    }))
}

/// Reads the job this process belongs to from the environment (see [`membership`]) and keeps
/// it: from now on [`rank`], [`world`] and [`is_leader`] answer for it, though nothing is
/// connected until [`join`]. `None` for a process alone.
pub fn plan_from_env() -> Result<Option<Membership>> {
    let Some(m) = membership(|name| std::env::var(name).ok())? else { return Ok(None) };
    if PLAN.get_or_init(|| m.clone()) != &m {
        bail!("this process already belongs to another data-parallel job");
    }
    Ok(Some(m))
}

/// The job planned by [`plan_from_env`] (`None` alone).
pub fn planned() -> Option<&'static Membership> {
    PLAN.get()
}

/// Connects to the planned job (see [`plan_from_env`]) with the backend for `device`: Gloo on
/// the CPU, NCCL on a CUDA device (one per process). Nothing to do alone or once joined. Fails,
/// never hangs, when the job does not form within its timeout.
pub fn join(device: Device) -> Result<()> {
    let Some(m) = PLAN.get() else { return Ok(()) };
    if GROUP.get().is_some() {
        return Ok(());
    }
    let backend = match device {
        Device::Cpu => Backend::Gloo,
        Device::Cuda(index) => Backend::Nccl { device: index },
        other => bail!("data-parallel training runs on the CPU or on CUDA devices, not on {other:?}"),
    };
    let group =
        ProcessGroup::join(&m.master_addr, m.master_port, m.rank, m.world, m.timeout, backend).with_context(|| {
            format!(
                "rank {}: cannot form the job of {} processes within {} s (is every rank started, with the same \
                 MASTER_ADDR and MASTER_PORT, and is rank 0 reachable there? {TIMEOUT_VAR} sets the wait)",
                m.rank,
                m.world,
                m.timeout.as_secs_f64()
            )
        })?;
    GROUP.set(group).map_err(|_| anyhow::anyhow!("this process has already joined a data-parallel job"))?;
    Ok(())
}

/// The job's group: `None` alone; an error when a job was planned but not joined.
fn joined() -> Result<Option<&'static ProcessGroup>> {
    match (PLAN.get(), GROUP.get()) {
        (None, _) => Ok(None),
        (Some(_), Some(g)) => Ok(Some(g)),
        (Some(m), None) => bail!("rank {}: the data-parallel job was planned but not joined before training", m.rank),
    }
}

/// This process's rank (0 alone).
pub fn rank() -> usize {
    PLAN.get().map_or(0, |m| m.rank)
}

/// The number of processes training together (1 alone).
pub fn world() -> usize {
    PLAN.get().map_or(1, |m| m.world)
}

/// Whether this process writes the run's files: rank 0, or a process alone.
pub fn is_leader() -> bool {
    rank() == 0
}

/// Mixed into every step's seed so that each rank draws its own noise; 0 on rank 0 (and alone),
/// so a single process draws exactly what it always drew.
pub fn seed_salt() -> u64 {
    (rank() as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)
}

/// "rank R: " in a job, "" alone (a prefix for messages).
pub fn rank_prefix() -> String {
    match PLAN.get() {
        Some(m) => format!("rank {}: ", m.rank),
        None => String::new(),
    }
}

/// Each rank's share of a global batch of `batch` tuples: `batch / world`; an error when it does
/// not divide (every rank must hold the same number of rows for the mean to be the batch's).
pub fn local_batch(batch: usize) -> Result<usize> {
    let w = world();
    if !batch.is_multiple_of(w) {
        bail!("train.batch_size = {batch} cannot be split evenly over {w} processes: choose a multiple of {w}");
    }
    Ok(batch / w)
}

/// This rank's rows of the global batch `idx` (the r-th of `world` equal parts; all of it alone).
pub fn local_rows(idx: &Tensor) -> Tensor {
    let (r, w) = (rank() as i64, world() as i64);
    if w == 1 {
        return idx.shallow_clone();
    }
    let part = idx.size()[0] / w;
    idx.narrow(0, r * part, part)
}

/// Averages `grads` (the gradients of the variables `vars`, in the same order) over the ranks:
/// returns tensors that every rank holds equal. One flat buffer is reduced per call (every
/// variable's slot, zeros where this rank has no gradient, then a 0/1 "defined" flag per
/// variable), so all ranks reduce the same layout; a gradient stays undefined only where no rank
/// has one. Alone, returns `grads` unchanged.
pub fn average_gradients(grads: Vec<Tensor>, vars: &[&Tensor]) -> Result<Vec<Tensor>> {
    let Some(g) = joined()? else { return Ok(grads) };
    assert_eq!(grads.len(), vars.len(), "one gradient per variable");
    let _guard = tch::no_grad_guard();
    let mut flat: Vec<Tensor> = Vec::with_capacity(grads.len() + 1);
    let mut defined = Vec::with_capacity(grads.len());
    for (grad, var) in grads.iter().zip(vars) {
        defined.push(if grad.defined() { 1f32 } else { 0f32 });
        flat.push(if grad.defined() {
            grad.detach().to_kind(Kind::Float).reshape([-1])
        } else {
            Tensor::zeros([var.numel() as i64], (Kind::Float, var.device()))
        });
    }
    flat.push(Tensor::from_slice(&defined).to_device(vars.first().map_or(tch::Device::Cpu, |v| v.device())));
    let bucket = Tensor::cat(&flat, 0).contiguous();
    g.all_reduce_sum(std::slice::from_ref(&bucket))
        .context("averaging gradients with the other ranks (did one stop? its own messages say why)")?;
    let n = vars.len() as i64;
    let counts = mmlatent_core::host::to_vec::<f32>(&bucket.narrow(0, bucket.size()[0] - n, n))?;
    let scale = 1.0 / g.world() as f64;
    let mut offset = 0;
    let mut out = Vec::with_capacity(grads.len());
    for (var, count) in vars.iter().zip(counts) {
        let numel = var.numel() as i64;
        out.push(if count == 0.0 {
            Tensor::new()
        } else {
            bucket.narrow(0, offset, numel).view_as(var).to_kind(var.kind()) * scale
        });
        offset += numel;
    }
    Ok(out)
}

/// The size of the gradient buckets [`GradientAverager`] all-reduces while the backward pass
/// goes on, in MiB (read with the launcher's variables; default [`DEFAULT_BUCKET_MIB`]). 0 turns
/// the overlap off: one flat all-reduce after the pass ([`average_gradients`]), which is faster
/// where no core is left idle for the communication (docs/src/results/parallel.md).
pub const BUCKET_VAR: &str = "MMLATENT_BUCKET_MIB";
/// The default of [`BUCKET_VAR`]. The first bucket is always 1 MiB, as in PyTorch's DDP, so that
/// communication starts early; DDP's later buckets are 25 MiB, sized for models far larger than
/// this project's (2–9 MB of gradients), where that would leave one bucket ready at the pass's end.
pub const DEFAULT_BUCKET_MIB: f64 = 4.0;
const FIRST_BUCKET_BYTES: usize = 1 << 20;

/// Back-propagation for one optimiser with its gradients averaged over the ranks as they are
/// produced: libtorch's DDP reducer, made at the first pass. Its buckets follow the order in which
/// that pass (rank 0's) produces the gradients, so the first buckets fill, and go out, while the
/// pass is still running. Alone, a plain backward pass.
#[derive(Default)]
pub struct GradientAverager {
    reducer: Option<GradientReducer>,
}

impl GradientAverager {
    /// The gradients of `loss` with respect to `vars` (and no others), each the mean over the
    /// ranks; undefined where no rank's graph reaches the variable.
    pub fn backward(&mut self, loss: &Tensor, vars: &[&Tensor]) -> Result<Vec<Tensor>> {
        let bucket_bytes = PLAN.get().map_or(0, |m| m.bucket_bytes);
        let (Some(g), true) = (joined()?, bucket_bytes > 0) else {
            let grads = Tensor::f_run_backward(&[loss], vars, false, false).context("backward pass failed")?;
            return average_gradients(grads, vars);
        };
        let context = "averaging gradients with the other ranks (did one stop? its own messages say why)";
        if self.reducer.is_none() {
            let params: Vec<Tensor> = vars.iter().map(|v| v.shallow_clone()).collect();
            // Every rank buckets in rank 0's order (their graphs may differ by the subsets drawn).
            let order: Vec<i64> = backward_ready_order(loss, &params)?.into_iter().map(|i| i as i64).collect();
            let order_t = Tensor::from_slice(&order).to_device(g.backend().device());
            broadcast_from_leader(std::slice::from_ref(&order_t))?;
            let order: Vec<usize> =
                mmlatent_core::host::to_vec::<i64>(&order_t)?.into_iter().map(|i| i as usize).collect();
            self.reducer =
                Some(g.gradient_reducer(&params, &order, bucket_bytes, FIRST_BUCKET_BYTES).context(context)?);
        }
        let reducer = self.reducer.as_mut().expect("made above");
        reducer.backward(loss).context(context)?;
        Ok(vars.iter().map(|v| v.grad()).collect())
    }
}

/// What the training loop installs into its optimisers: backward passes through the DDP reducer
/// ([`GradientAverager::backward`]), gradients back-propagated by hand through one flat
/// all-reduce ([`average_gradients`]).
impl GradientExchange for GradientAverager {
    fn backward(&mut self, loss: &Tensor, values: &[&Tensor]) -> Result<Vec<Tensor>> {
        GradientAverager::backward(self, loss, values)
    }

    fn average(&mut self, grads: Vec<Tensor>, values: &[&Tensor]) -> Result<Vec<Tensor>> {
        average_gradients(grads, values)
    }
}

/// Whether `flag` is true on any rank, and the means over the ranks of `values`, in one
/// collective (the training loop's per-step agreement: stop requests and logged metrics).
pub fn agree(flag: bool, values: &[f64]) -> Result<(bool, Vec<f64>)> {
    let Some(g) = joined()? else { return Ok((flag, values.to_vec())) };
    let mut data = values.to_vec();
    data.push(if flag { 1.0 } else { 0.0 });
    let t = Tensor::from_slice(&data).to_device(g.backend().device());
    g.all_reduce_sum(std::slice::from_ref(&t))
        .context("agreeing on the step with the other ranks (did one stop? its own messages say why)")?;
    let summed = mmlatent_core::host::to_vec::<f64>(&t)?;
    let w = g.world() as f64;
    let (flags, sums) = summed.split_last().expect("the flag was pushed");
    Ok((*flags > 0.0, sums.iter().map(|s| s / w).collect()))
}

/// Checks that every rank holds the same `text` (e.g. the experiment it trains); an error on
/// every rank when one differs, instead of collectives that do not match later. Compares a
/// 64-bit hash, summed over the ranks in four exact 16-bit parts.
pub fn ensure_same(what: &str, text: &str) -> Result<()> {
    if joined()?.is_none() {
        return Ok(());
    }
    // FNV-1a: stable across processes and builds (unlike std's randomly keyed hasher).
    let hash = crate::checkpoint::fnv1a(crate::checkpoint::FNV_OFFSET, text.as_bytes());
    let parts: Vec<f64> = (0..4).map(|i| ((hash >> (16 * i)) & 0xFFFF) as f64).collect();
    let (_, means) = agree(false, &parts)?;
    if means != parts {
        bail!(
            "{}the ranks of this job do not all have the same {what}: start every rank with the same command",
            rank_prefix()
        );
    }
    Ok(())
}

/// Makes every rank's `tensors` rank 0's.
pub fn broadcast_from_leader(tensors: &[Tensor]) -> Result<()> {
    let Some(g) = joined()? else { return Ok(()) };
    let _guard = tch::no_grad_guard();
    let dense: Vec<Tensor> = tensors.iter().filter(|t| t.numel() > 0).map(|t| t.detach().contiguous()).collect();
    g.broadcast(&dense, 0).context("copying rank 0's weights to the other ranks")?;
    for (t, d) in tensors.iter().filter(|t| t.numel() > 0).zip(&dense) {
        if d.data_ptr() != t.data_ptr() {
            t.detach().copy_(d);
        }
    }
    Ok(())
}

/// Waits until every rank has come here (`what` names the place, for the error).
pub fn barrier(what: &str) -> Result<()> {
    match joined()? {
        Some(g) => g.barrier().with_context(|| format!("rank {}: waiting for the other ranks {what}", g.rank())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn the_launcher_variables_are_read_and_checked() {
        assert_eq!(membership(env(&[])).unwrap(), None);
        assert_eq!(membership(env(&[("WORLD_SIZE", "1")])).unwrap(), None);
        let one = membership(env(&[("WORLD_SIZE", "1"), ("RANK", "0"), ("MASTER_ADDR", "h"), ("MASTER_PORT", "2")]));
        assert_eq!(one.unwrap().map(|m| (m.rank, m.world)), Some((0, 1)));
        let m = membership(env(&[
            ("WORLD_SIZE", "4"),
            ("RANK", "2"),
            ("MASTER_ADDR", "node1"),
            ("MASTER_PORT", "29500"),
            (TIMEOUT_VAR, "30"),
            (BUCKET_VAR, "0.5"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((m.rank, m.world, m.local_rank, m.master_port), (2, 4, 2, 29500));
        assert_eq!((m.master_addr.as_str(), m.timeout, m.bucket_bytes), ("node1", Duration::from_secs(30), 1 << 19));
        let job = [("WORLD_SIZE", "2"), ("RANK", "0"), ("MASTER_ADDR", "h"), ("MASTER_PORT", "2")];
        let default = membership(env(&job)).unwrap().unwrap();
        assert_eq!(default.bucket_bytes, (DEFAULT_BUCKET_MIB * (1 << 20) as f64) as usize);
        let bad = membership(env(&[&job[..], &[(BUCKET_VAR, "-1")]].concat())).unwrap_err();
        assert!(bad.to_string().contains("MMLATENT_BUCKET_MIB=-1"), "{bad}");
        let missing = membership(env(&[("WORLD_SIZE", "2"), ("RANK", "0"), ("MASTER_PORT", "1")])).unwrap_err();
        assert!(missing.to_string().contains("MASTER_ADDR is not"), "{missing}");
        let high = membership(env(&[("WORLD_SIZE", "2"), ("RANK", "2")])).unwrap_err();
        assert!(high.to_string().contains("RANK=2 is not below WORLD_SIZE=2"), "{high}");
        let junk = membership(env(&[("WORLD_SIZE", "two")])).unwrap_err();
        assert!(junk.to_string().contains("WORLD_SIZE=two"), "{junk}");
    }

    #[test]
    fn alone_everything_is_the_identity() {
        assert_eq!((rank(), world(), is_leader(), seed_salt()), (0, 1, true, 0));
        let idx = Tensor::arange(8, (Kind::Int64, tch::Device::Cpu));
        assert!(local_rows(&idx).equal(&idx));
        assert_eq!(local_batch(7).unwrap(), 7);
        let (stop, means) = agree(true, &[1.5, 2.0]).unwrap();
        assert!(stop && means == vec![1.5, 2.0]);
    }
}
