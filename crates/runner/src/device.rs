//! Choosing where tensors live: parsing a device name, and loading libtorch's CUDA backend when a
//! CUDA device may be asked for.

use anyhow::{bail, Result};
use tch::Device;

/// Loads `libtorch_cuda.so` (found through the binary's rpath) so that libtorch registers its
/// CUDA backend. The linker drops that library from the binary's needed list because no symbol
/// of it is referenced directly; without this, CUDA would be invisible. Returns whether it loaded.
pub fn load_cuda_backend() -> bool {
    static LOADED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LOADED.get_or_init(|| {
        let name = std::ffi::CString::new("libtorch_cuda.so").expect("no NUL");
        // SAFETY: dlopen with a valid C string; the handle is kept for the life of the process.
        let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
        !handle.is_null()
    })
}

/// Parses `cpu`, `cuda`, `cuda:N` or `auto` (CUDA when available, else CPU).
pub fn parse_device(name: &str) -> Result<Device> {
    if name.trim() != "cpu" {
        load_cuda_backend();
    }
    let device = match name.trim() {
        "cpu" => Device::Cpu,
        "auto" => Device::cuda_if_available(),
        "cuda" | "gpu" => Device::Cuda(0),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(index)) => Device::Cuda(index),
            _ => bail!("unknown device `{other}`: use cpu, cuda, cuda:N or auto"),
        },
    };
    if let Device::Cuda(index) = device {
        let count = tch::Cuda::device_count();
        if count == 0 {
            bail!(
                "device `{name}` asked for, but libtorch sees no CUDA device (is an NVIDIA driver \
                 installed, and is libtorch_cuda.so next to libtorch.so?)"
            );
        }
        if index as i64 >= count {
            bail!("device `{name}` asked for, but only {count} CUDA device(s) are visible");
        }
    }
    Ok(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_and_rejects_nonsense() {
        assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
        let err = parse_device("tpu").unwrap_err().to_string();
        assert!(err.contains("unknown device `tpu`"), "{err}");
    }

    #[test]
    fn auto_is_always_usable() {
        let d = parse_device("auto").unwrap();
        assert!(d == Device::Cpu || d.is_cuda());
    }
}
