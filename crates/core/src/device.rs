//! libtorch's process-wide settings: its CPU thread count and its generators' seeds. (Choosing a
//! device, and loading the CUDA backend for it, is the front end's: `mmlatent_runner::device`.)

/// Sets libtorch's intra-op thread count; `None` keeps libtorch's default (the number of cores).
pub fn set_threads(threads: Option<usize>) {
    if let Some(n) = threads {
        tch::set_num_threads(n.max(1) as i32);
    }
}

/// Seeds libtorch's generators (CPU and every CUDA device).
pub fn seed_everything(seed: u64) {
    tch::manual_seed(seed as i64);
    if tch::Cuda::is_available() {
        tch::Cuda::manual_seed_all(seed);
    }
}
