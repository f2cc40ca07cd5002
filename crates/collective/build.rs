//! Compiles `csrc/c10d_shim.cpp` (libtorch's c10d, which tch does not expose); how, the shared
//! `../core/csrc/shim_build.rs` says.
include!("../core/csrc/shim_build.rs");

fn main() {
    let libtorch = libtorch_root();
    let include = libtorch.join("include");
    if !include.join("torch/csrc/distributed/c10d/Backend.hpp").exists() {
        panic!("{} lacks libtorch's c10d headers (torch/csrc/distributed/c10d)", include.display());
    }
    shim_build(&libtorch, "csrc/c10d_shim.cpp")
        .include(include.join("torch/csrc/api/include"))
        .compile("mmlatent_c10d");
    link_libtorch(&libtorch);
}
