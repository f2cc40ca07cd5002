//! Checkpoints on disk.
//!
//! Single files (safetensors, JSON) are written atomically: a temporary file beside the target,
//! fsync, rename. Loading refuses a tensor holding NaN or ±∞, naming the file and the tensor.
//!
//! A training stage saves *checkpoint sets*: every file that decides the stage's future
//! (weights, optimiser moments, EMA weights) in one folder
//!
//! ```text
//! checkpoints/<stage>/step-00000040/   score.safetensors, score_ema.safetensors,
//!                                      adam.adam.safetensors, manifest.json
//! checkpoints/<stage>/best-00000040/   the set with the lowest held-out loss (when validated)
//! ```
//!
//! A set is written as `.step-00000040.partial/`, each file fsynced, then `manifest.json`
//! (step, size and FNV-1a checksum of every file) is written, and the folder is renamed into
//! place: a set is visible whole or not at all. Reading a set ([`read_set`]) checks the
//! manifest's sizes and checksums and that it names its own stage and step; [`latest_set`]
//! falls back to the previous complete set with a message when the newest one fails, and is an
//! error naming every set and its fault ([`DamagedSets`]) when none verifies. The fault-injection switch [`fault_point`]
//! (`MMLATENT_FAULT`) lets tests abort the process at chosen points of a write.

use anyhow::{bail, ensure, Context, Result};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use tch::nn::VarStore;
use tch::Tensor;

/// Temporary path beside `path`, with the same extension so libtorch picks the same format.
fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.partial.safetensors"))
}

fn commit(tmp: &Path, path: &Path) -> Result<()> {
    fs::File::open(tmp).and_then(|f| f.sync_all()).with_context(|| format!("cannot flush {}", tmp.display()))?;
    fs::rename(tmp, path).with_context(|| format!("cannot move checkpoint into place at {}", path.display()))
}

/// Saves every variable of `vs` to `path` (a `.safetensors` file), atomically.
pub fn save_varstore(vs: &VarStore, path: &Path) -> Result<()> {
    ensure_safetensors(path)?;
    let tmp = temp_path(path);
    vs.save(&tmp).with_context(|| format!("cannot write checkpoint {}", tmp.display()))?;
    commit(&tmp, path)
}

/// Loads `path` into `vs`; every variable of `vs` must be in the file with the right shape and
/// finite values (errors name the file and the tensor).
pub fn load_varstore(vs: &VarStore, path: &Path) -> Result<()> {
    load_varstore_prefixed(vs, path, None)
}

/// [`load_varstore`] where a variable `v` missing from the file may also be stored as
/// `<prefix>.v` (files that hold several stores, as older run folders did).
pub fn load_varstore_prefixed(vs: &VarStore, path: &Path, prefix: Option<&str>) -> Result<()> {
    ensure_safetensors(path)?;
    let tensors = load_tensors(path)?;
    let _guard = tch::no_grad_guard();
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, mut var) in variables {
        let prefixed = prefix.map(|p| format!("{p}.{name}"));
        let found = match (take_tensor(&tensors, &name, path), prefixed) {
            (Ok(t), _) => Ok(t),
            (Err(_), Some(prefixed)) => take_tensor(&tensors, &prefixed, path),
            (Err(e), None) => Err(e),
        };
        let saved = found.context("the checkpoint does not match this model (another architecture or config?)")?;
        if saved.size() != var.size() {
            bail!(
                "{}: tensor `{name}` has shape {:?}, the model expects {:?} (another architecture or config?)",
                path.display(),
                saved.size(),
                var.size()
            );
        }
        var.copy_(&saved.to_device(var.device()).to_kind(var.kind()));
    }
    Ok(())
}

/// Saves named tensors (statistics, buffers) to a `.safetensors` file, atomically.
pub fn save_tensors(tensors: &[(&str, &Tensor)], path: &Path) -> Result<()> {
    ensure_safetensors(path)?;
    let tmp = temp_path(path);
    write_tensors_to(tensors, &tmp)?;
    commit(&tmp, path)
}

/// Writes named tensors (moved to the CPU) to `path` as safetensors, not atomically.
fn write_tensors_to(tensors: &[(&str, &Tensor)], path: &Path) -> Result<()> {
    let cpu: Vec<(&str, Tensor)> = tensors.iter().map(|(n, t)| (*n, t.to_device(tch::Device::Cpu))).collect();
    Tensor::write_safetensors(&cpu, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Reads named tensors written by [`save_tensors`] (or any safetensors file). A floating-point
/// tensor holding NaN or ±∞ is an error naming the file and the tensor.
pub fn load_tensors(path: &Path) -> Result<Vec<(String, Tensor)>> {
    if !path.exists() {
        bail!("{} does not exist", path.display());
    }
    let tensors = Tensor::read_safetensors(path)
        .with_context(|| format!("cannot read {} (truncated or not safetensors?)", path.display()))?;
    for (name, t) in &tensors {
        if t.is_floating_point() && t.numel() > 0 && !all_finite(t) {
            bail!("{}: tensor `{name}` holds NaN or infinite values; refusing to load it", path.display());
        }
    }
    Ok(tensors)
}

/// The shape of tensor `name` in the safetensors file at `path`, read from its header alone
/// (8-byte little-endian length, then a JSON table of name → dtype, shape, offsets); `None` when
/// the file holds no such tensor.
pub fn tensor_shape(path: &Path, name: &str) -> Result<Option<Vec<i64>>> {
    let bad = || format!("cannot read the header of {} (truncated or not safetensors?)", path.display());
    let mut file = fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).with_context(bad)?;
    let len = u64::from_le_bytes(len);
    ensure!(len <= file.metadata()?.len().saturating_sub(8), "{}", bad());
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header).with_context(bad)?;
    let header: serde_json::Value = serde_json::from_slice(&header).with_context(bad)?;
    let Some(entry) = header.get(name) else { return Ok(None) };
    let shape = entry.get("shape").and_then(|s| s.as_array()).with_context(bad)?;
    shape.iter().map(|d| d.as_i64().with_context(bad)).collect::<Result<Vec<i64>>>().map(Some)
}

/// True when every element of the floating-point tensor `t` is finite.
pub fn all_finite(t: &Tensor) -> bool {
    let _guard = tch::no_grad_guard();
    t.isfinite().all().int64_value(&[]) != 0
}

/// Finds a tensor by name in the result of [`load_tensors`].
pub fn take_tensor(tensors: &[(String, Tensor)], name: &str, path: &Path) -> Result<Tensor> {
    tensors
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t.shallow_clone())
        .with_context(|| format!("{} has no tensor named `{name}`", path.display()))
}

/// Writes a JSON document atomically.
pub fn save_json<T: Serialize>(value: &T, path: &Path) -> Result<()> {
    write_text_atomically(&serde_json::to_string_pretty(value)?, path)
}

/// Writes a text file atomically (temporary file, fsync, rename).
pub fn write_text_atomically(text: &str, path: &Path) -> Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.partial"));
    {
        let mut f = fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_all())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
    }
    fs::rename(&tmp, path).with_context(|| format!("cannot move {} into place", path.display()))
}

/// Reads a JSON document, naming the file in every error.
pub fn load_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
}

/// The manifest file of a checkpoint set, written last.
pub const MANIFEST: &str = "manifest.json";

/// One file of a checkpoint set as its manifest records it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SetFile {
    pub name: String,
    pub size: u64,
    /// FNV-1a 64 of the file's bytes, in hex.
    pub checksum: String,
}

/// `manifest.json` of a checkpoint set: where the stage stood and what the set holds.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SetManifest {
    pub stage: String,
    /// Steps completed when the set was written.
    pub step: usize,
    /// The stage's planned steps at that time; the set is final when `step == total`.
    pub total: usize,
    #[serde(default)]
    pub last_loss: Option<f64>,
    /// Held-out loss measured at this step, if the stage validated here.
    #[serde(default)]
    pub val_loss: Option<f64>,
    /// The lowest held-out loss of the stage so far (carried over a resume).
    #[serde(default)]
    pub best_val: Option<f64>,
    #[serde(default)]
    pub files: Vec<SetFile>,
}

impl SetManifest {
    /// True when the set holds the stage's final weights.
    pub fn is_final(&self) -> bool {
        self.step >= self.total
    }
}

/// The contents of one file of a set: its name and its named tensors.
pub type SetPart = (String, Vec<(String, Tensor)>);

/// The folder name of the set of `step` (`step-00000040`, `best-00000040`).
pub fn set_name(prefix: &str, step: usize) -> String {
    format!("{prefix}-{step:08}")
}

/// Writes the set `<stage_dir>/<prefix>-<step>` holding `parts`, described by `manifest`
/// (whose `files` are filled in here), so that it appears whole or not at all.
pub fn write_set(stage_dir: &Path, prefix: &str, manifest: &SetManifest, parts: &[SetPart]) -> Result<PathBuf> {
    let name = set_name(prefix, manifest.step);
    let target = stage_dir.join(&name);
    let partial = stage_dir.join(format!(".{name}.partial"));
    if partial.exists() {
        fs::remove_dir_all(&partial).with_context(|| format!("cannot remove {}", partial.display()))?;
    }
    fs::create_dir_all(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    let mut manifest = SetManifest { files: vec![], ..manifest.clone() };
    for (i, (file, tensors)) in parts.iter().enumerate() {
        ensure_safetensors(Path::new(file))?;
        let path = partial.join(file);
        let refs: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        write_tensors_to(&refs, &path)?;
        fs::File::open(&path).and_then(|f| f.sync_all()).with_context(|| format!("cannot flush {}", path.display()))?;
        let (size, checksum) = file_checksum(&path)?;
        manifest.files.push(SetFile { name: file.clone(), size, checksum });
        if i == 0 && prefix == crate::training::SET_PREFIX {
            fault_point("abort_mid_checkpoint", &manifest.stage, manifest.step);
        }
    }
    write_json_synced(&manifest, &partial.join(MANIFEST))?;
    if target.exists() {
        fs::remove_dir_all(&target).with_context(|| format!("cannot replace {}", target.display()))?;
    }
    fs::rename(&partial, &target)
        .with_context(|| format!("cannot move checkpoint set into place at {}", target.display()))?;
    sync_dir(stage_dir);
    // The kill-and-resume tests abort after a regular set, not after a best one.
    if prefix == crate::training::SET_PREFIX {
        fault_point("abort_after_checkpoint", &manifest.stage, manifest.step);
    }
    Ok(target)
}

/// Reads and verifies the set in `dir`: its manifest must be there, name the stage and step
/// that the folder's own names say (`checkpoints/<stage>/<prefix>-<step>`), and every file it
/// lists must have the recorded size and checksum.
pub fn read_set(dir: &Path) -> Result<SetManifest> {
    let manifest_path = dir.join(MANIFEST);
    if !manifest_path.exists() {
        bail!("{}: no {MANIFEST} (an incomplete checkpoint set)", dir.display());
    }
    let manifest: SetManifest = load_json(&manifest_path)?;
    let folder = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let folder_step = folder.rsplit_once('-').and_then(|(_, n)| n.parse::<usize>().ok());
    if let Some(step) = folder_step.filter(|&s| s != manifest.step) {
        bail!(
            "{}: records step {} but its folder is that of step {step}; the manifest does not belong to this set",
            manifest_path.display(),
            manifest.step
        );
    }
    let stage = dir.parent().and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned());
    if let Some(stage) = stage.filter(|s| *s != manifest.stage) {
        bail!(
            "{}: records stage `{}` but lies in the folder of stage `{stage}`; the manifest does not belong to this set",
            manifest_path.display(),
            manifest.stage
        );
    }
    if manifest.step > manifest.total {
        bail!(
            "{}: records step {} of {}, beyond the stage's end",
            manifest_path.display(),
            manifest.step,
            manifest.total
        );
    }
    for file in &manifest.files {
        let path = dir.join(&file.name);
        if !path.exists() {
            bail!("{}: missing (listed in {})", path.display(), manifest_path.display());
        }
        let (size, checksum) = file_checksum(&path)?;
        if size != file.size || checksum != file.checksum {
            bail!(
                "{}: {size} bytes with checksum {checksum}, the manifest records {} bytes with checksum {} (damaged)",
                path.display(),
                file.size,
                file.checksum
            );
        }
    }
    Ok(manifest)
}

/// The sets `<prefix>-<step>` in `stage_dir`, by increasing step (partial folders excluded).
pub fn list_sets(stage_dir: &Path, prefix: &str) -> Result<Vec<(usize, PathBuf)>> {
    let mut sets = vec![];
    if !stage_dir.exists() {
        return Ok(sets);
    }
    let entries = fs::read_dir(stage_dir).with_context(|| format!("cannot list {}", stage_dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", stage_dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let step = name.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')).and_then(|n| n.parse::<usize>().ok());
        if let (Some(step), true) = (step, entry.path().is_dir()) {
            sets.push((step, entry.path()));
        }
    }
    sets.sort();
    Ok(sets)
}

/// The newest set of `stage_dir` that verifies ([`read_set`], then `check`, e.g. against the
/// run's log), with its manifest; `None` when the stage has no set at all. Each newer set that
/// fails is reported through `warn` with the reason and the set used instead. When sets exist
/// but none verifies, the error is a [`DamagedSets`] naming each set and what is wrong with it
/// (nothing is removed here).
pub fn latest_set(
    stage_dir: &Path,
    prefix: &str,
    check: &dyn Fn(&SetManifest) -> Result<()>,
    warn: &mut dyn FnMut(String),
) -> Result<Option<(PathBuf, SetManifest)>> {
    let mut damaged: Vec<(PathBuf, String)> = vec![];
    for (_, dir) in list_sets(stage_dir, prefix)?.into_iter().rev() {
        match read_set(&dir).and_then(|m| check(&m).map(|()| m)) {
            Ok(manifest) => {
                for (bad, why) in &damaged {
                    warn(format!(
                        "checkpoint set {} is unusable ({why}); falling back to the newest good set, step {} ({})",
                        bad.display(),
                        manifest.step,
                        dir.display()
                    ));
                }
                return Ok(Some((dir, manifest)));
            }
            Err(e) => damaged.push((dir, format!("{e:#}"))),
        }
    }
    if damaged.is_empty() {
        return Ok(None);
    }
    Err(DamagedSets { stage_dir: stage_dir.to_path_buf(), sets: damaged }.into())
}

/// Every checkpoint set of a stage failed verification: which, and why (see [`latest_set`]).
#[derive(Debug)]
pub struct DamagedSets {
    pub stage_dir: PathBuf,
    /// Each set's folder and what is wrong with it, newest first.
    pub sets: Vec<(PathBuf, String)>,
}

impl std::fmt::Display for DamagedSets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "every checkpoint set in {} is damaged (nothing was removed):", self.stage_dir.display())?;
        for (dir, why) in &self.sets {
            let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            write!(f, "\n  {name}: {why}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DamagedSets {}

/// Moves the set folder `dir` aside as `damaged-<name>` in its stage folder (a new name when
/// that exists), so that it is neither used nor overwritten nor deleted; returns the new path.
pub fn set_aside(dir: &Path) -> Result<PathBuf> {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let parent = dir.parent().unwrap_or(Path::new("."));
    let mut target = parent.join(format!("damaged-{name}"));
    let mut n = 2;
    while target.exists() {
        target = parent.join(format!("damaged-{name}-{n}"));
        n += 1;
    }
    fs::rename(dir, &target).with_context(|| format!("cannot move {} aside to {}", dir.display(), target.display()))?;
    Ok(target)
}

/// Marks the set in `dir` as the stage's final one, ending the stage at the set's step: its
/// manifest's planned steps become its step (written atomically; the checksums of the other
/// files are unchanged). For a stage shortened on resume to where it stands.
pub fn mark_final(dir: &Path) -> Result<SetManifest> {
    let path = dir.join(MANIFEST);
    let mut manifest: SetManifest = load_json(&path)?;
    manifest.total = manifest.step;
    save_json(&manifest, &path)?;
    Ok(manifest)
}

/// Removes the sets `<prefix>-<step>` of `stage_dir` for which `remove(step)` holds, and every
/// partial set folder left by an interrupted write.
pub fn remove_sets(stage_dir: &Path, prefix: &str, remove: impl Fn(usize) -> bool) -> Result<()> {
    for (step, dir) in list_sets(stage_dir, prefix)? {
        if remove(step) {
            fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
        }
    }
    if stage_dir.exists() {
        for entry in fs::read_dir(stage_dir).with_context(|| format!("cannot list {}", stage_dir.display()))?.flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".partial") && entry.path().is_dir() {
                fs::remove_dir_all(entry.path())
                    .with_context(|| format!("cannot remove {}", entry.path().display()))?;
            }
        }
    }
    Ok(())
}

/// The FNV-1a 64 offset basis: the hash of no bytes.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a 64 of `bytes`, continuing from `hash` ([`FNV_OFFSET`] to start).
pub fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash = (hash ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Size and FNV-1a 64 checksum (hex) of a file.
fn file_checksum(path: &Path) -> Result<(u64, String)> {
    let mut f = fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hash: u64 = FNV_OFFSET;
    let (mut size, mut buf) = (0u64, vec![0u8; 1 << 20]);
    loop {
        let n = f.read(&mut buf).with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hash = fnv1a(hash, &buf[..n]);
        size += n as u64;
    }
    Ok((size, format!("{hash:016x}")))
}

/// Writes JSON to `path` and fsyncs it (inside a folder that is renamed into place later).
fn write_json_synced<T: Serialize>(value: &T, path: &Path) -> Result<()> {
    let mut f = fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(serde_json::to_string_pretty(value)?.as_bytes())
        .and_then(|_| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Flushes a folder's entries (renames) to disk; best effort.
fn sync_dir(dir: &Path) {
    if let Ok(f) = fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// The fault-injection switch for tests: when the environment variable `MMLATENT_FAULT` holds
/// `<point>:<stage>:<step>` (comma-separated for several), the process aborts (as `kill -9`
/// would leave it) on reaching `point` in stage `stage` at step `step`. Points:
/// `abort_mid_checkpoint` (after the first file of a regular set is written), `abort_after_checkpoint`
/// (after a set is in place), `abort_after_step` (after a step's metrics are logged, before its
/// checkpoint).
pub fn fault_point(point: &str, stage: &str, step: usize) {
    let Ok(spec) = std::env::var("MMLATENT_FAULT") else { return };
    let wanted = format!("{point}:{stage}:{step}");
    if spec.split(',').any(|s| s.trim() == wanted) {
        eprintln!("MMLATENT_FAULT: aborting at {wanted}");
        std::process::abort();
    }
}

fn ensure_safetensors(path: &Path) -> Result<()> {
    if path.extension().and_then(|e| e.to_str()) != Some("safetensors") {
        bail!("checkpoint path {} must end in .safetensors", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Device, Kind};

    #[test]
    fn save_load_round_trip_and_truncation_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let vs = VarStore::new(Device::Cpu);
        let _ = nn::linear(vs.root() / "layer", 4, 3, Default::default());
        save_varstore(&vs, &path).unwrap();
        assert!(!temp_path(&path).exists());

        let other = VarStore::new(Device::Cpu);
        let _ = nn::linear(other.root() / "layer", 4, 3, Default::default());
        load_varstore(&other, &path).unwrap();
        let a = &vs.variables()["layer.weight"];
        let b = &other.variables()["layer.weight"];
        assert!(a.allclose(b, 0.0, 0.0, false));

        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let err = load_varstore(&other, &path).unwrap_err();
        assert!(format!("{err:#}").contains("model.safetensors"), "{err:#}");
    }

    /// Resume carries `best_val` through the manifest's JSON: the number read back must be the
    /// number written, to the last bit, or a resumed run's manifests differ from a straight run's.
    #[test]
    fn manifest_losses_round_trip_to_the_bit() {
        let best = 0.23887179046869278_f64;
        let manifest = SetManifest {
            stage: "s".into(),
            step: 1,
            total: 2,
            last_loss: None,
            val_loss: None,
            best_val: Some(best),
            files: vec![],
        };
        let back: SetManifest = serde_json::from_str(&serde_json::to_string(&manifest).unwrap()).unwrap();
        assert_eq!(back.best_val.unwrap().to_bits(), best.to_bits());
    }

    #[test]
    fn named_tensors_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stats.safetensors");
        let mean = Tensor::arange(5, (Kind::Float, Device::Cpu));
        save_tensors(&[("mean", &mean)], &path).unwrap();
        let loaded = load_tensors(&path).unwrap();
        assert!(take_tensor(&loaded, "mean", &path).unwrap().equal(&mean));
        assert!(take_tensor(&loaded, "std", &path).is_err());
    }

    #[test]
    fn a_tensor_shape_is_read_from_the_header_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let w = Tensor::zeros([7, 3], (Kind::Float, Device::Cpu));
        save_tensors(&[("a.weight", &w), ("b", &w.sum(Kind::Float))], &path).unwrap();
        assert_eq!(tensor_shape(&path, "a.weight").unwrap(), Some(vec![7, 3]));
        assert_eq!(tensor_shape(&path, "b").unwrap(), Some(vec![]));
        assert_eq!(tensor_shape(&path, "c").unwrap(), None);
        std::fs::write(&path, [200u8, 0, 0, 0, 0, 0, 0, 0, b'{']).unwrap();
        let err = tensor_shape(&path, "a.weight").unwrap_err();
        assert!(format!("{err:#}").contains("w.safetensors"), "{err:#}");
    }
}
