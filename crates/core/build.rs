//! Compiles `csrc/autocast.cpp` (libtorch's autocast for the CPU, which tch does not expose);
//! how, `csrc/shim_build.rs` says.
include!("csrc/shim_build.rs");

fn main() {
    let libtorch = libtorch_root();
    shim_build(&libtorch, "csrc/autocast.cpp").compile("mmlatent_autocast");
    link_libtorch(&libtorch);
}
