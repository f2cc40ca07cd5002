// How mmlatent's C++ shims are built: `include!`d by the build scripts of mmlatent-core
// (`csrc/autocast.cpp`) and mmlatent-collective (`csrc/c10d_shim.cpp`). A shim is compiled against
// the headers of the libtorch that `tch` links (`$LIBTORCH`, set by .cargo/config.toml to the
// virtualenv's PyTorch), with its C++ ABI, and libtorch is linked after it.

/// `$LIBTORCH`; a change to it or to its ABI setting rebuilds the shim.
fn libtorch_root() -> std::path::PathBuf {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    std::path::PathBuf::from(std::env::var("LIBTORCH").unwrap_or_else(|_| {
        panic!("LIBTORCH is not set: run scripts/setup.sh, which installs PyTorch and links it to .libtorch")
    }))
}

/// A C++17 build of `source` (relative to the crate's folder) against `libtorch`'s headers and
/// `crates/core/csrc` (`shim_errors.h`), with libtorch's C++ ABI.
fn shim_build(libtorch: &std::path::Path, source: &str) -> cc::Build {
    // `../core/csrc` from either crate's folder is crates/core/csrc.
    const SHARED: &str = "../core/csrc";
    println!("cargo:rerun-if-changed={source}");
    println!("cargo:rerun-if-changed={SHARED}/shim_errors.h");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .file(source)
        .include(SHARED)
        .include(libtorch.join("include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-w");
    build
}

/// Links libtorch's CPU library after the shim (tch links it already; this keeps the order right).
fn link_libtorch(libtorch: &std::path::Path) {
    println!("cargo:rustc-link-search=native={}", libtorch.join("lib").display());
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=c10");
}
