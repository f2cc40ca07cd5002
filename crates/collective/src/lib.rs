//! Collectives for data-parallel training, from libtorch's own c10d layer (the one under
//! PyTorch's DistributedDataParallel): a `TCPStore` for the rendezvous and a Gloo process
//! group for all-reduce, broadcast and barrier on CPU tensors, or an NCCL group on CUDA tensors
//! (one GPU per process), and DDP's gradient reducer ([`GradientReducer`]), which all-reduces
//! buckets of gradients while the backward pass runs. `tch` does not expose c10d, so
//! `csrc/c10d_shim.cpp` wraps the few calls needed in a C interface (its header comment says how
//! it reaches Gloo without Gloo's headers, and NCCL without linking libtorch_cuda).
//!
//! This crate knows nothing of training: `mmlatent_train::parallel` decides what is reduced
//! and when.
//!
//! One process holds one group (one rank), as every job mmlatent starts does. Several groups in
//! one process (the tests' two ranks as two threads) need libtorch's flight recorder off
//! (`TORCH_FR_BUFFER_SIZE=0` before the first group): it is not thread-safe across groups (see
//! `tests/gloo.rs`).

use anyhow::{bail, Result};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::time::Duration;
use tch::{Device, Tensor};

/// Which c10d backend carries the collectives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Gloo, on CPU tensors.
    Gloo,
    /// NCCL, on tensors of CUDA device `device` (libtorch_cuda.so must be loaded).
    Nccl { device: usize },
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Gloo => "gloo",
            Backend::Nccl { .. } => "nccl",
        }
    }

    /// Where this backend's tensors live.
    pub fn device(self) -> Device {
        match self {
            Backend::Gloo => Device::Cpu,
            Backend::Nccl { device } => Device::Cuda(device),
        }
    }
}

extern "C" {
    fn mml_c10d_group_new(
        host: *const c_char,
        port: u16,
        rank: c_int,
        world: c_int,
        timeout_ms: i64,
        err: *mut *mut c_char,
    ) -> *mut c_void;
    fn mml_c10d_group_new_nccl(
        host: *const c_char,
        port: u16,
        rank: c_int,
        world: c_int,
        timeout_ms: i64,
        device: c_int,
        err: *mut *mut c_char,
    ) -> *mut c_void;
    fn mml_c10d_nccl_available(err: *mut *mut c_char) -> c_int;
    fn mml_c10d_group_free(group: *mut c_void);
    fn mml_c10d_free_error(err: *mut c_char);
    fn mml_c10d_all_reduce_sum(
        group: *mut c_void,
        tensors: *const *mut c_void,
        n: usize,
        err: *mut *mut c_char,
    ) -> c_int;
    fn mml_c10d_broadcast(
        group: *mut c_void,
        tensors: *const *mut c_void,
        n: usize,
        root: c_int,
        err: *mut *mut c_char,
    ) -> c_int;
    fn mml_c10d_barrier(group: *mut c_void, err: *mut *mut c_char) -> c_int;
    fn mml_c10d_backend_name(group: *mut c_void, out: *mut c_char, capacity: usize, err: *mut *mut c_char) -> c_int;
    fn mml_autograd_ready_order(
        loss: *mut c_void,
        params: *const *mut c_void,
        n: usize,
        order: *mut i64,
        err: *mut *mut c_char,
    ) -> c_int;
    fn mml_c10d_reducer_new(
        group: *mut c_void,
        params: *const *mut c_void,
        n: usize,
        order: *const i64,
        bucket_bytes: i64,
        first_bucket_bytes: i64,
        err: *mut *mut c_char,
    ) -> *mut c_void;
    fn mml_c10d_reducer_backward(reducer: *mut c_void, loss: *mut c_void, err: *mut *mut c_char) -> c_int;
    fn mml_c10d_reducer_free(reducer: *mut c_void);
}

/// One process's membership of a job of `world` processes (a c10d Gloo process group).
pub struct ProcessGroup {
    raw: *mut c_void,
    rank: usize,
    world: usize,
    backend: Backend,
}

// SAFETY: c10d backends are built to be called from any thread (PyTorch's DDP reducer calls
// them from autograd threads); this type adds no state of its own.
unsafe impl Send for ProcessGroup {}
unsafe impl Sync for ProcessGroup {}

/// The message of a failed shim call, freeing its buffer.
fn take_error(err: *mut c_char, what: &str) -> anyhow::Error {
    if err.is_null() {
        return anyhow::anyhow!("{what} failed (no message from c10d)");
    }
    // SAFETY: the shim wrote a NUL-terminated malloc'd string, freed here once.
    let message = unsafe { CStr::from_ptr(err) }.to_string_lossy().trim().to_string();
    unsafe { mml_c10d_free_error(err) };
    anyhow::anyhow!("{what} failed: {message}")
}

impl ProcessGroup {
    /// Joins the job: rank 0 serves the rendezvous on `host:port`, every rank connects to it,
    /// then all ranks connect to each other. Fails (never hangs) when that takes longer than
    /// `timeout`, which also bounds every later collective.
    pub fn join(host: &str, port: u16, rank: usize, world: usize, timeout: Duration, backend: Backend) -> Result<Self> {
        if world == 0 || rank >= world {
            bail!("rank {rank} is not within a job of {world} processes");
        }
        let c_host = CString::new(host)?;
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: plain values and a NUL-terminated string; the shim returns null and sets `err`
        // on failure.
        let (c_rank, c_world, ms) = (rank as c_int, world as c_int, timeout.as_millis() as i64);
        let raw = unsafe {
            match backend {
                Backend::Gloo => mml_c10d_group_new(c_host.as_ptr(), port, c_rank, c_world, ms, &mut err),
                Backend::Nccl { device } => {
                    mml_c10d_group_new_nccl(c_host.as_ptr(), port, c_rank, c_world, ms, device as c_int, &mut err)
                }
            }
        };
        if raw.is_null() {
            let what = format!("joining the job at {host}:{port} as rank {rank} of {world} ({})", backend.name());
            return Err(take_error(err, &what));
        }
        let group = Self { raw, rank, world, backend };
        let name = group.backend_name()?;
        if name != backend.name() {
            bail!("c10d returned a `{name}` process group where a {} one was created", backend.name());
        }
        Ok(group)
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn world(&self) -> usize {
        self.world
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Sums each tensor (dense, contiguous, on the backend's device) over all ranks, in place.
    pub fn all_reduce_sum(&self, tensors: &[Tensor]) -> Result<()> {
        self.with_tensors(tensors, "all-reduce", |ptrs, err| unsafe {
            (mml_c10d_all_reduce_sum(self.raw, ptrs.as_ptr(), ptrs.len(), err) == 0).then_some(())
        })
    }

    /// Overwrites each tensor (dense, contiguous, on the backend's device) with rank `root`'s, in
    /// place.
    pub fn broadcast(&self, tensors: &[Tensor], root: usize) -> Result<()> {
        self.with_tensors(tensors, "broadcast", |ptrs, err| unsafe {
            (mml_c10d_broadcast(self.raw, ptrs.as_ptr(), ptrs.len(), root as c_int, err) == 0).then_some(())
        })
    }

    /// Returns once every rank has called it.
    pub fn barrier(&self) -> Result<()> {
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: `raw` is a live group.
        if unsafe { mml_c10d_barrier(self.raw, &mut err) } != 0 {
            return Err(take_error(err, "barrier"));
        }
        Ok(())
    }

    fn backend_name(&self) -> Result<String> {
        let mut out = [0 as c_char; 64];
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: `out` has the capacity given; the shim NUL-terminates within it.
        if unsafe { mml_c10d_backend_name(self.raw, out.as_mut_ptr(), out.len(), &mut err) } != 0 {
            return Err(take_error(err, "reading the backend's name"));
        }
        Ok(unsafe { CStr::from_ptr(out.as_ptr()) }.to_string_lossy().into_owned())
    }

    /// Checks the tensors and hands their `at::Tensor*` pointers to `call`, which returns `None`
    /// when the shim failed (and set the error).
    fn with_tensors<T>(
        &self,
        tensors: &[Tensor],
        what: &str,
        call: impl FnOnce(&[*mut c_void], *mut *mut c_char) -> Option<T>,
    ) -> Result<T> {
        let device = self.backend.device();
        for t in tensors {
            if t.device() != device || !t.is_contiguous() {
                bail!(
                    "{what}: the {} group takes contiguous tensors on {device:?} (got one on {:?})",
                    self.backend.name(),
                    t.device()
                );
            }
        }
        // tch's C_tensor is libtorch's at::Tensor*, what the shim reads.
        let ptrs: Vec<*mut c_void> = tensors.iter().map(|t| t.as_ptr() as *mut c_void).collect();
        let mut err: *mut c_char = std::ptr::null_mut();
        call(&ptrs, &mut err).ok_or_else(|| take_error(err, what))
    }
}

/// The order in which a backward pass from `loss` makes the gradients of `params` ready (a
/// permutation of their indices): the engine runs the node made last in the forward pass first,
/// so a parameter is ready once the latest node that reads it has run. Parameters `loss` does
/// not reach come last. (Read off the graph; nothing is computed.)
pub fn backward_ready_order(loss: &Tensor, params: &[Tensor]) -> Result<Vec<usize>> {
    let ptrs: Vec<*mut c_void> = params.iter().map(|t| t.as_ptr() as *mut c_void).collect();
    let mut order = vec![0i64; params.len()];
    let mut err: *mut c_char = std::ptr::null_mut();
    // SAFETY: live tensors; `order` has room for one index per parameter.
    if unsafe {
        mml_autograd_ready_order(loss.as_ptr() as *mut c_void, ptrs.as_ptr(), ptrs.len(), order.as_mut_ptr(), &mut err)
    } != 0
    {
        return Err(take_error(err, "reading the backward order off the autograd graph"));
    }
    Ok(order.into_iter().map(|i| i as usize).collect())
}

/// libtorch's DistributedDataParallel reducer over one set of parameters: a backward pass
/// through it leaves in each parameter's `.grad` the mean of that gradient over the ranks, and
/// each bucket of gradients is all-reduced as soon as the pass has filled it, overlapping the
/// rest of the pass. Parameters a rank's graph does not reach count as zeros there; one no rank
/// reaches keeps no gradient.
pub struct GradientReducer {
    raw: *mut c_void,
}

// SAFETY: the Reducer guards its state with its own mutex and is used by one thread at a time
// (the owner's); this type adds no state of its own.
unsafe impl Send for GradientReducer {}

impl ProcessGroup {
    /// A reducer over `params`, whose gradients are packed in the order `order` (a permutation;
    /// every rank must pass the same one) into buckets of about `bucket_bytes`, the first of
    /// `first_bucket_bytes` so that communication starts early in the backward pass.
    pub fn gradient_reducer(
        &self,
        params: &[Tensor],
        order: &[usize],
        bucket_bytes: usize,
        first_bucket_bytes: usize,
    ) -> Result<GradientReducer> {
        let mut sorted = order.to_vec();
        sorted.sort_unstable();
        if params.is_empty() || sorted != (0..params.len()).collect::<Vec<_>>() {
            bail!(
                "a gradient reducer needs parameters and a permutation of them ({} for {})",
                order.len(),
                params.len()
            );
        }
        let order: Vec<i64> = order.iter().map(|&i| i as i64).collect();
        let raw = self.with_tensors(params, "making the gradient reducer", |ptrs, err| {
            // SAFETY: a live group, live tensors and a permutation of their indices.
            let raw = unsafe {
                mml_c10d_reducer_new(
                    self.raw,
                    ptrs.as_ptr(),
                    ptrs.len(),
                    order.as_ptr(),
                    bucket_bytes as i64,
                    first_bucket_bytes as i64,
                    err,
                )
            };
            (!raw.is_null()).then_some(raw)
        })?;
        Ok(GradientReducer { raw })
    }
}

impl GradientReducer {
    /// Back-propagates `loss` to the reducer's parameters only (others get no gradient) and
    /// leaves in each `.grad` the mean over the ranks (every rank must call this in the same
    /// step). Gradients from earlier passes are dropped first.
    pub fn backward(&mut self, loss: &Tensor) -> Result<()> {
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: a live reducer and a live tensor.
        if unsafe { mml_c10d_reducer_backward(self.raw, loss.as_ptr() as *mut c_void, &mut err) } != 0 {
            return Err(take_error(err, "the backward pass with the gradients averaged over the ranks"));
        }
        Ok(())
    }
}

impl Drop for GradientReducer {
    fn drop(&mut self) {
        // SAFETY: `raw` came from mml_c10d_reducer_new and is freed once.
        unsafe { mml_c10d_reducer_free(self.raw) }
    }
}

/// Whether libtorch's NCCL process group can be created in this process (libtorch_cuda.so is
/// loaded and has the entry points the shim calls); the reason when not.
pub fn nccl_available() -> Result<()> {
    let mut err: *mut c_char = std::ptr::null_mut();
    // SAFETY: the shim only looks symbols up.
    if unsafe { mml_c10d_nccl_available(&mut err) } != 0 {
        return Err(take_error(err, "finding libtorch's NCCL process group"));
    }
    Ok(())
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: `raw` came from mml_c10d_group_new and is freed once.
        unsafe { mml_c10d_group_free(self.raw) }
    }
}
