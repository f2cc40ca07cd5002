//! Mixed precision: bf16 compute where libtorch's kernels gain, fp32 everywhere else.
//!
//! `Precision::Bf16` runs a region under libtorch's own autocast (`ATen/autocast_mode.h`, reached
//! through `csrc/autocast.cpp`): inside it, the ops of autocast's lower-precision list
//! (convolutions, transposed convolutions, `linear`, `matmul`, …) cast their inputs to bf16, ops
//! of its fp32 list (most losses) run in fp32, and the rest follow their inputs. What stays fp32
//! by construction:
//! - the weights and the optimiser's state (autocast casts a copy of a weight once per region;
//!   the copies are dropped when the region ends and whenever the optimiser updates the
//!   weights, [`weights_changed`], so a region may span several steps);
//! - every network's output: the shared builders of [`crate::nets`] end in
//!   [`crate::nets::fp32_output`], so likelihoods, KL terms, energies and losses and their
//!   reductions read fp32;
//! - the backward pass and the update ([`crate::optim::Adam`] runs them under
//!   [`full_precision`]); the gradients of bf16 ops flow back through their casts to fp32.
//!
//! Checkpoints do not change: the weights are fp32 in either precision, so a run may switch on
//! resume. Autocast state is per thread; a region affects the calling thread only.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::ffi::{c_char, c_int, CStr};
use tch::Device;

/// The numeric precision of a model's computations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in fp32.
    #[default]
    Fp32,
    /// bf16 mixed precision (autocast): bf16 matmuls and convolutions, fp32 weights, losses
    /// and optimiser state.
    Bf16,
}

impl Precision {
    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
        }
    }

    /// Refuses bf16 on a CPU without bf16 instructions (x86 `avx512_bf16` or `amx_bf16`, Arm
    /// `bf16`): libtorch would emulate them, slower than fp32.
    pub fn check_supported(self, device: Device) -> Result<()> {
        if self == Precision::Bf16 && device == Device::Cpu && !cpu_has_bf16() {
            bail!(
                "precision bf16 needs a CPU with bf16 instructions (x86: avx512_bf16 or amx_bf16; Arm: bf16); \
                 this one has none (/proc/cpuinfo), so libtorch would emulate bf16 more slowly than fp32 — \
                 use precision = \"fp32\""
            );
        }
        Ok(())
    }

    /// Runs `f` in this precision on the calling thread.
    pub fn run<T>(self, f: impl FnOnce() -> T) -> T {
        let _region = self.region();
        f()
    }

    /// Enters this precision on the calling thread until the guard is dropped (nothing for fp32).
    pub fn region(self) -> Option<AutocastRegion> {
        (self == Precision::Bf16).then(AutocastRegion::enter)
    }
}

impl std::str::FromStr for Precision {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fp32" => Ok(Precision::Fp32),
            "bf16" => Ok(Precision::Bf16),
            _ => bail!("unknown precision {s:?} (fp32 or bf16)"),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether /proc/cpuinfo lists bf16 instructions (false where it cannot be read).
pub fn cpu_has_bf16() -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else { return false };
    info.lines()
        .filter(|l| l.starts_with("flags") || l.starts_with("Features"))
        .flat_map(|l| l.split_whitespace())
        .any(|f| matches!(f, "avx512_bf16" | "amx_bf16" | "bf16"))
}

extern "C" {
    fn mml_autocast_enter(was: *mut c_int, err: *mut *mut c_char) -> c_int;
    fn mml_autocast_exit(was: c_int, err: *mut *mut c_char) -> c_int;
    fn mml_autocast_set(on: c_int, was: *mut c_int, err: *mut *mut c_char) -> c_int;
    fn mml_autocast_clear_cache(err: *mut *mut c_char) -> c_int;
    fn mml_autocast_free_error(err: *mut c_char);
}

/// Calls a shim function; its C++ exceptions (none are expected from these setters) abort with
/// the message, since a half-changed autocast state cannot be reasoned about.
fn call(f: impl FnOnce(*mut *mut c_char) -> c_int) {
    let mut err: *mut c_char = std::ptr::null_mut();
    if f(&mut err) != 0 {
        let message = unsafe { CStr::from_ptr(err) }.to_string_lossy().into_owned();
        unsafe { mml_autocast_free_error(err) };
        panic!("libtorch autocast: {message}");
    }
}

/// A bf16 autocast region on the calling thread (CPU and CUDA), left when dropped.
pub struct AutocastRegion {
    was: c_int,
    // Autocast state is per thread: the guard must be dropped where it was made.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl AutocastRegion {
    fn enter() -> Self {
        let mut was = 0;
        call(|err| unsafe { mml_autocast_enter(&mut was, err) });
        Self { was, _not_send: std::marker::PhantomData }
    }
}

impl Drop for AutocastRegion {
    fn drop(&mut self) {
        call(|err| unsafe { mml_autocast_exit(self.was, err) });
    }
}

/// Drops the calling thread's bf16 copies of weights. Autocast casts a weight once per region
/// and reuses the copy; an update in place (the optimiser's) must call this, or the rest of the
/// region would compute with the weights as they were. [`crate::optim::Adam`] does.
pub fn weights_changed() {
    call(|err| unsafe { mml_autocast_clear_cache(err) });
}

/// Runs `f` in fp32 even inside an autocast region (the backward pass and the optimiser's update).
pub fn full_precision<T>(f: impl FnOnce() -> T) -> T {
    let mut was = 0;
    call(|err| unsafe { mml_autocast_set(0, &mut was, err) });
    struct Restore(c_int);
    impl Drop for Restore {
        fn drop(&mut self) {
            let mut ignored = 0;
            call(|err| unsafe { mml_autocast_set(self.0, &mut ignored, err) });
        }
    }
    let _restore = Restore(was);
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    fn matmul_kind() -> Kind {
        let a = Tensor::ones([2, 2], (Kind::Float, Device::Cpu));
        a.matmul(&a).kind()
    }

    #[test]
    fn regions_switch_matmuls_to_bf16_and_back() {
        assert_eq!(matmul_kind(), Kind::Float);
        Precision::Bf16.run(|| {
            assert_eq!(matmul_kind(), Kind::BFloat16);
            assert_eq!(full_precision(matmul_kind), Kind::Float);
            assert_eq!(matmul_kind(), Kind::BFloat16, "full_precision restores the region");
            Precision::Bf16.run(|| assert_eq!(matmul_kind(), Kind::BFloat16));
            assert_eq!(matmul_kind(), Kind::BFloat16, "a nested region leaves the outer one on");
        });
        assert_eq!(matmul_kind(), Kind::Float);
        Precision::Fp32.run(|| assert_eq!(matmul_kind(), Kind::Float));
    }

    /// The cast copy of a weight is dropped with the region, so an update in place between
    /// two regions is seen by the second.
    #[test]
    fn weights_updated_between_regions_are_seen() {
        let w = Tensor::ones([2, 2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let x = Tensor::ones([1, 2], (Kind::Float, Device::Cpu));
        let first = Precision::Bf16.run(|| x.matmul(&w).double_value(&[0, 0]));
        tch::no_grad(|| {
            let _ = w.shallow_clone().fill_(3.0);
        });
        let second = Precision::Bf16.run(|| x.matmul(&w).double_value(&[0, 0]));
        assert_eq!((first, second), (2.0, 6.0));
        // Within one region, after weights_changed (which every optimiser update calls).
        Precision::Bf16.run(|| {
            let before = x.matmul(&w).double_value(&[0, 0]);
            tch::no_grad(|| {
                let _ = w.shallow_clone().fill_(1.0);
            });
            weights_changed();
            assert_eq!((before, x.matmul(&w).double_value(&[0, 0])), (6.0, 2.0));
        });
    }

    #[test]
    fn names_parse_and_bad_ones_are_named() {
        assert_eq!("bf16".parse::<Precision>().unwrap(), Precision::Bf16);
        assert_eq!("fp32".parse::<Precision>().unwrap(), Precision::Fp32);
        assert!("fp16".parse::<Precision>().unwrap_err().to_string().contains("fp16"));
    }
}
