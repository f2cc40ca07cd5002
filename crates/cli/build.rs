//! Adds an absolute rpath to libtorch so an installed `mmlatent` finds it from anywhere
//! (the relative rpaths of .cargo/config.toml serve binaries left inside target/).
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(libtorch) = std::env::var("LIBTORCH") {
        if let Ok(real) = std::fs::canonicalize(std::path::Path::new(&libtorch).join("lib")) {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", real.display());
        }
    }
}
