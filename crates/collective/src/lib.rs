//! Collectives for data-parallel training, from libtorch's own c10d layer (the one under
//! PyTorch's DistributedDataParallel): a `TCPStore` for the rendezvous and a Gloo process
//! group for all-reduce, broadcast and barrier on CPU tensors, or an NCCL group on CUDA tensors
//! (one GPU per process). `tch` does not expose c10d, so `csrc/c10d_shim.cpp` wraps the few
//! calls needed in a C interface (its header comment says how it reaches Gloo without Gloo's
//! headers, and NCCL without linking libtorch_cuda).
//!
//! This crate knows nothing of training: `mmlatent_core::parallel` decides what is reduced
//! and when.

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
            mml_c10d_all_reduce_sum(self.raw, ptrs.as_ptr(), ptrs.len(), err)
        })
    }

    /// Overwrites each tensor (dense, contiguous, on the backend's device) with rank `root`'s, in
    /// place.
    pub fn broadcast(&self, tensors: &[Tensor], root: usize) -> Result<()> {
        self.with_tensors(tensors, "broadcast", |ptrs, err| unsafe {
            mml_c10d_broadcast(self.raw, ptrs.as_ptr(), ptrs.len(), root as c_int, err)
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

    /// Checks the tensors and hands their `at::Tensor*` pointers to `call`.
    fn with_tensors(
        &self,
        tensors: &[Tensor],
        what: &str,
        call: impl FnOnce(&[*mut c_void], *mut *mut c_char) -> c_int,
    ) -> Result<()> {
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
        if call(&ptrs, &mut err) != 0 {
            return Err(take_error(err, what));
        }
        Ok(())
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
