//! Checkpoints: safetensors files written atomically (temporary file, fsync, rename), so a run
//! killed mid-write always leaves the previous checkpoint intact.

use anyhow::{bail, Context, Result};
use serde::{de::DeserializeOwned, Serialize};
use std::fs;
use std::io::Write;
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

/// Loads `path` into `vs`; every variable of `vs` must be in the file with the right shape.
pub fn load_varstore(vs: &mut VarStore, path: &Path) -> Result<()> {
    ensure_safetensors(path)?;
    if !path.exists() {
        bail!("checkpoint {} does not exist", path.display());
    }
    vs.load(path).with_context(|| {
        format!("cannot load checkpoint {} (truncated, or from another architecture?)", path.display())
    })
}

/// Saves named tensors (statistics, buffers) to a `.safetensors` file, atomically.
pub fn save_tensors(tensors: &[(&str, &Tensor)], path: &Path) -> Result<()> {
    ensure_safetensors(path)?;
    let tmp = temp_path(path);
    let cpu: Vec<(&str, Tensor)> = tensors.iter().map(|(n, t)| (*n, t.to_device(tch::Device::Cpu))).collect();
    Tensor::write_safetensors(&cpu, &tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    commit(&tmp, path)
}

/// Reads named tensors written by [`save_tensors`] (or any safetensors file).
pub fn load_tensors(path: &Path) -> Result<Vec<(String, Tensor)>> {
    if !path.exists() {
        bail!("{} does not exist", path.display());
    }
    Tensor::read_safetensors(path)
        .with_context(|| format!("cannot read {} (truncated or not safetensors?)", path.display()))
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
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.partial"));
    {
        let mut f = fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(serde_json::to_string_pretty(value)?.as_bytes())?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path).with_context(|| format!("cannot move {} into place", path.display()))
}

/// Reads a JSON document, naming the file in every error.
pub fn load_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
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

        let mut other = VarStore::new(Device::Cpu);
        let _ = nn::linear(other.root() / "layer", 4, 3, Default::default());
        load_varstore(&mut other, &path).unwrap();
        let a = &vs.variables()["layer.weight"];
        let b = &other.variables()["layer.weight"];
        assert!(a.allclose(b, 0.0, 0.0, false));

        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let err = load_varstore(&mut other, &path).unwrap_err();
        assert!(format!("{err:#}").contains("model.safetensors"), "{err:#}");
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
}
