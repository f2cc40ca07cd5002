//! File helpers shared by the format readers: reading whole files (gunzipping when asked),
//! listing folders, with errors that name the path.

use anyhow::{bail, Context, Result};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The two magic bytes that open every gzip member (RFC 1952 §2.3.1).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Why `path`, which does not resolve to anything, cannot be used: "not found", or — when a
/// name is there but cannot be followed (a symbolic link that loops or points nowhere, a folder
/// on the way that cannot be entered) — what the system says about it.
pub fn unreachable(path: &Path, what: &str) -> String {
    match (std::fs::symlink_metadata(path), std::fs::metadata(path)) {
        (Ok(link), Err(e)) if link.file_type().is_symlink() => {
            format!("{}: a symbolic link that cannot be followed ({e})", path.display())
        }
        (_, Err(e)) if e.kind() != std::io::ErrorKind::NotFound => {
            format!("{}: cannot be reached ({e})", path.display())
        }
        _ => format!("{}: {what} not found", path.display()),
    }
}

/// Reads a whole file.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    if !path.exists() {
        bail!("{}", unreachable(path, "file"));
    }
    std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))
}

/// Reads a file, gunzipping it when its name ends in `.gz` (which must then be gzip) or when
/// it starts with the gzip magic bytes.
pub fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let raw = read(path)?;
    let named_gz = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    if named_gz && !raw.starts_with(&GZIP_MAGIC) {
        bail!("{}: named .gz but is not gzip data (the file does not start with 1f 8b)", path.display());
    }
    gunzip_if_gzip(raw, path)
}

/// Gunzips `raw` when it starts with the gzip magic bytes, else returns it as is; `origin`
/// names the data in errors.
pub fn gunzip_if_gzip(raw: Vec<u8>, origin: &Path) -> Result<Vec<u8>> {
    if !raw.starts_with(&GZIP_MAGIC) {
        return Ok(raw);
    }
    let mut out = Vec::with_capacity(raw.len() * 4);
    GzDecoder::new(raw.as_slice())
        .read_to_end(&mut out)
        .with_context(|| format!("{}: corrupt or truncated gzip data", origin.display()))?;
    Ok(out)
}

/// The entries of a folder, sorted by name.
pub fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.exists() {
        bail!("{}", unreachable(dir, "folder"));
    }
    if !dir.is_dir() {
        bail!("{}: a file, where a folder is expected", dir.display());
    }
    let mut entries = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list folder", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| format!("{}: cannot list folder", dir.display()))?;
    entries.sort();
    Ok(entries)
}

/// The file name of `path` as text (empty when it has none or it is not UTF-8).
pub fn file_name(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).unwrap_or("")
}
