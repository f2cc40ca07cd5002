//! Compiles `csrc/c10d_shim.cpp` against the headers of the libtorch that `tch` links
//! (`$LIBTORCH`, set by .cargo/config.toml to the virtualenv's PyTorch), with its C++ ABI.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=csrc/c10d_shim.cpp");
    println!("cargo:rerun-if-changed=../core/csrc/shim_errors.h");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let libtorch = PathBuf::from(std::env::var("LIBTORCH").unwrap_or_else(|_| {
        panic!("LIBTORCH is not set: run scripts/setup.sh, which installs PyTorch and links it to .libtorch")
    }));
    let include = libtorch.join("include");
    if !include.join("torch/csrc/distributed/c10d/Backend.hpp").exists() {
        panic!("{} lacks libtorch's c10d headers (torch/csrc/distributed/c10d)", include.display());
    }
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .file("csrc/c10d_shim.cpp")
        // shim_errors.h, shared with the autocast shim of mmlatent-core.
        .include("../core/csrc")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-w")
        .compile("mmlatent_c10d");
    // The symbols live in libtorch_cpu; tch links it already, this keeps the order right.
    println!("cargo:rustc-link-search=native={}", libtorch.join("lib").display());
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=c10");
}
