//! Per-modality classifiers trained on a dataset's class labels: the judges of coherence and the
//! feature space of the classifier Fréchet distance.
//!
//! Each modality gets a feature extractor (the modality's encoder from [`mmlatent_core::nets`]:
//! a conv net for 28/32 images, a ResNet for 64×64, a 1-D conv net for text, an MLP for vectors)
//! with `feature_dim` outputs, a SiLU, and a linear head to `num_classes` logits. The penultimate
//! activations (after the SiLU) are the features used by [`crate::fid`]'s classifier distance.
//!
//! Training runs through the training loop (`mmlatent-train`; stage `classifiers`, checkpoints and metrics in
//! the classifiers' folder, so an interrupted training resumes). On disk a set of classifiers
//! is a folder with `classifiers.safetensors` (weights, one
//! variable path per modality `m{index}`) and `classifiers.json` ([`ClassifierInfo`]: dataset,
//! modalities, sizes and per-modality test accuracy).

use anyhow::{bail, ensure, Context, Result};
use mmlatent_core::nets::{self, Net, NetSize};
use mmlatent_core::optim::{Adam, AdamConfig};
use mmlatent_core::{ModalityKind, ModalitySpec, MultimodalDataset};
use mmlatent_train::checkpoint;
use mmlatent_train::config::{DataConfig, TrainConfig};
use mmlatent_train::loader::StepLoader;
use mmlatent_train::run::RunDir;
use mmlatent_train::training::Stage;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

/// Items classified per forward pass when predicting (bounds memory on large inputs).
const CHUNK: i64 = 1024;

/// How classifiers are trained.
#[derive(Clone, Debug)]
pub struct ClassifierOptions {
    /// Adam steps (all modalities train together on the same batches, with separate weights).
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f64,
    /// Width of the encoders (see [`NetSize`]).
    pub width: i64,
    /// Size of the penultimate feature layer.
    pub feature_dim: i64,
    /// Dropout on the penultimate features while training.
    pub dropout: f64,
    /// Decoupled weight decay (AdamW).
    pub weight_decay: f64,
    /// Shift each training batch of images by up to this many pixels (a random translation
    /// per batch, with wrap-around), to fight over-fitting on small datasets.
    pub max_shift: i64,
    pub seed: u64,
    pub device: Device,
    /// Show a progress bar.
    pub progress: bool,
}

impl Default for ClassifierOptions {
    fn default() -> Self {
        Self {
            steps: 1500,
            batch_size: 128,
            lr: 1e-3,
            width: 32,
            feature_dim: 128,
            dropout: 0.3,
            weight_decay: 1e-2,
            max_shift: 2,
            seed: 0,
            device: Device::Cpu,
            progress: true,
        }
    }
}

impl ClassifierOptions {
    /// Small and quick: for tests and tiny datasets (`squares` trains in a few seconds).
    pub fn fast() -> Self {
        Self { steps: 150, width: 8, feature_dim: 64, progress: false, ..Self::default() }
    }
}

/// What `classifiers.json` records.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClassifierInfo {
    pub dataset: String,
    pub num_classes: i64,
    pub modalities: Vec<ModalitySpec>,
    pub width: i64,
    pub feature_dim: i64,
    pub steps: usize,
    /// Accuracy of each modality's classifier on the dataset's test split, in modality order.
    pub test_accuracy: Vec<f64>,
}

impl ClassifierInfo {
    /// How the recipe these classifiers were trained with (steps, width, feature size) differs
    /// from `options`, or `None` when it does not.
    pub fn recipe_difference(&self, options: &ClassifierOptions) -> Option<String> {
        let ours = (self.steps, self.width, self.feature_dim);
        let asked = (options.steps, options.width, options.feature_dim);
        (ours != asked).then(|| {
            format!(
                "trained with {} steps, width {}, features {}; asked for {} steps, width {}, features {}",
                ours.0, ours.1, ours.2, asked.0, asked.1, asked.2
            )
        })
    }
}

struct ModalityClassifier {
    features: Net,
    head: nn::Linear,
}

/// One trained classifier per modality of a dataset.
pub struct Classifiers {
    info: ClassifierInfo,
    vs: nn::VarStore,
    nets: Vec<ModalityClassifier>,
}

const WEIGHTS: &str = "classifiers.safetensors";
/// The training stage (checkpoints, metrics) of classifiers trained in a folder.
const STAGE: &str = "classifiers";
const INFO: &str = "classifiers.json";

/// The default folder of the classifiers of the dataset that `data` points to (loaded under
/// the name `dataset_name`): `<cache>/classifiers/<dataset_name>-<key>/`, where `<cache>` is
/// `$MMLATENT_CACHE`, else `$XDG_CACHE_HOME/mmlatent`, else `~/.cache/mmlatent`, and `<key>`
/// hashes the dataset's format, resolved absolute path (or built-in name) and train/test
/// limits. So `eval` finds the same classifiers from any working directory, and two datasets
/// never share them.
pub fn default_dir(dataset_name: &str, data: &DataConfig) -> PathBuf {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let cache = env("MMLATENT_CACHE")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("mmlatent")))
        .or_else(|| env("HOME").map(|d| d.join(".cache").join("mmlatent")))
        .unwrap_or_else(|| std::env::temp_dir().join("mmlatent"));
    let builtin = matches!(
        mmlatent_data::config_format(data),
        Ok(mmlatent_data::Format::Default | mmlatent_data::Format::DefaultFull | mmlatent_data::Format::Synthetic)
    );
    let resolved = if builtin {
        data.path.clone()
    } else {
        std::fs::canonicalize(&data.path).unwrap_or_else(|_| data.path.clone())
    };
    let identity = format!("{}\n{}\n{:?}\n{:?}", data.format, resolved.display(), data.max_train, data.max_test);
    let key = checkpoint::fnv1a(checkpoint::FNV_OFFSET, identity.as_bytes());
    cache.join("classifiers").join(format!("{dataset_name}-{:08x}", key >> 32))
}

impl Classifiers {
    /// Builds untrained networks for `info` on `device`.
    fn build(info: ClassifierInfo, device: Device) -> Result<Self> {
        let vs = nn::VarStore::new(device);
        let size = NetSize { width: info.width };
        let nets = info
            .modalities
            .iter()
            .enumerate()
            .map(|(m, spec)| {
                let p = vs.root() / format!("m{m}");
                Ok(ModalityClassifier {
                    features: nets::encoder(&p / "features", spec, info.feature_dim, size)?,
                    head: nn::linear(&p / "head", info.feature_dim, info.num_classes, Default::default()),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { info, vs, nets })
    }

    /// Trains one classifier per modality of `dataset` on its training split and measures each
    /// one's accuracy on the test split. Checkpoints go to a temporary folder, removed after;
    /// see [`Classifiers::train_in`] for resumable training.
    pub fn train(dataset: &MultimodalDataset, options: &ClassifierOptions) -> Result<Self> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let scratch = std::env::temp_dir().join(format!("mmlatent-classifiers-{}-{nanos}", std::process::id()));
        let result = Self::train_checkpointed(&scratch, dataset, options);
        let _ = std::fs::remove_dir_all(&scratch);
        result
    }

    /// [`Classifiers::train`] with its checkpoints, metrics and loss plot in `dir` (a training
    /// killed half-way resumes there), then saved into `dir` ([`Classifiers::save`]).
    pub fn train_in(dir: &Path, dataset: &MultimodalDataset, options: &ClassifierOptions) -> Result<Self> {
        let classifiers = Self::train_checkpointed(dir, dataset, options)?;
        classifiers.save(dir)?;
        Ok(classifiers)
    }

    /// Training through the training loop (stage `classifiers` of the folder `dir`).
    fn train_checkpointed(dir: &Path, dataset: &MultimodalDataset, options: &ClassifierOptions) -> Result<Self> {
        ensure!(!dataset.train.is_empty(), "dataset {}: no training tuples to train classifiers on", dataset.name);
        ensure!(dataset.num_classes >= 2, "dataset {}: classifiers need at least 2 classes", dataset.name);
        ensure!(options.steps > 0, "classifiers: at least 1 training step is needed");
        tch::manual_seed(options.seed as i64);
        let info = ClassifierInfo {
            dataset: dataset.name.clone(),
            num_classes: dataset.num_classes,
            modalities: dataset.modalities.clone(),
            width: options.width,
            feature_dim: options.feature_dim,
            steps: options.steps,
            test_accuracy: vec![],
        };
        let mut classifiers = Self::build(info, options.device)?;
        let run = RunDir::scratch(dir)?;
        let _lock = run.lock()?;
        // Checkpoints of another recipe (or of another dataset) in this folder are not resumed.
        let recipe = format!(
            "{} {:?} steps {} batch {} lr {} width {} features {} dropout {} decay {} shift {} seed {}",
            dataset.name,
            dataset.modalities.iter().map(|m| m.describe()).collect::<Vec<_>>(),
            options.steps,
            options.batch_size,
            options.lr,
            options.width,
            options.feature_dim,
            options.dropout,
            options.weight_decay,
            options.max_shift,
            options.seed
        );
        let recipe_file = run.stage_dir(STAGE).join("recipe.txt");
        if std::fs::read_to_string(&recipe_file).ok().as_deref() != Some(recipe.as_str()) {
            let stage_dir = run.stage_dir(STAGE);
            if stage_dir.exists() {
                std::fs::remove_dir_all(&stage_dir)
                    .with_context(|| format!("cannot remove {}", stage_dir.display()))?;
            }
            std::fs::create_dir_all(&stage_dir).with_context(|| format!("cannot create {}", stage_dir.display()))?;
            std::fs::write(&recipe_file, &recipe).with_context(|| format!("cannot write {}", recipe_file.display()))?;
        }
        let train_cfg = TrainConfig {
            batch_size: options.batch_size,
            steps: options.steps,
            lr: options.lr,
            log_every: 20,
            checkpoint_every: options.steps.div_ceil(5).max(1),
            keep_checkpoints: 1,
            ..TrainConfig::default()
        };
        let mut loader =
            StepLoader::new(&dataset.train, &dataset.modalities, options.batch_size, options.seed, options.device)?;
        let c = &classifiers;
        let mut stage = Stage::new(&run, STAGE, options.steps, &train_cfg, options.seed)
            .constant_lr()
            .weights("classifiers", &c.vs)
            .optimiser("adamw", Adam::new(&c.vs, AdamConfig::adamw(options.lr, options.weight_decay)));
        if !options.progress {
            stage = stage.quiet();
        }
        stage.run(|step, opts| {
            let batch = loader.batch(step)?;
            // The modalities' weights are disjoint, so the summed loss trains each independently.
            let losses: Vec<Tensor> = (0..c.nets.len())
                .map(|m| {
                    let x = match (&c.info.modalities[m].kind, options.max_shift) {
                        (ModalityKind::Image { .. }, s) if s > 0 => {
                            let shift = Tensor::randint_low(-s, s + 1, [2], (Kind::Int64, Device::Cpu));
                            let shift: Vec<i64> = Vec::try_from(&shift)?;
                            batch.items[m].roll(&shift[..], [2, 3])
                        }
                        _ => batch.items[m].shallow_clone(),
                    };
                    let net = &c.nets[m];
                    let features = net.features.forward(&x).silu().dropout(options.dropout, true);
                    Ok(net.head.forward(&features).cross_entropy_for_logits(&batch.labels))
                })
                .collect::<Result<_>>()?;
            let loss = Tensor::stack(&losses, 0).sum(Kind::Float);
            opts[0].backward_step(&loss)?;
            Ok(vec![("loss", loss.double_value(&[]) / losses.len() as f64)])
        })?;
        let test = dataset.test.head(&dataset.modalities, dataset.test.len(), Device::Cpu);
        classifiers.info.test_accuracy = (0..classifiers.nets.len())
            .map(|m| classifiers.accuracy(m, &test.items[m], &test.labels))
            .collect::<Result<Vec<_>>>()?;
        Ok(classifiers)
    }

    /// Writes `classifiers.safetensors` and `classifiers.json` into `dir` (created if needed).
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        checkpoint::save_varstore(&self.vs, &dir.join(WEIGHTS))?;
        checkpoint::save_json(&self.info, &dir.join(INFO))
    }

    /// True when `dir` holds a saved set of classifiers.
    pub fn exists(dir: &Path) -> bool {
        dir.join(WEIGHTS).exists() && dir.join(INFO).exists()
    }

    /// Loads the classifiers saved in `dir` onto `device`.
    pub fn load(dir: &Path, device: Device) -> Result<Self> {
        let info: ClassifierInfo = checkpoint::load_json(&dir.join(INFO))
            .with_context(|| format!("{} does not hold classifiers", dir.display()))?;
        ensure!(
            info.test_accuracy.len() == info.modalities.len(),
            "{}: {} accuracies for {} modalities",
            dir.join(INFO).display(),
            info.test_accuracy.len(),
            info.modalities.len()
        );
        let classifiers = Self::build(info, device)?;
        checkpoint::load_varstore(&classifiers.vs, &dir.join(WEIGHTS))?;
        Ok(classifiers)
    }

    /// The classifiers saved in `dir`, if there are any, checked to fit `dataset`.
    pub fn load_if_present(dir: &Path, dataset: &MultimodalDataset, device: Device) -> Result<Option<Self>> {
        if !Self::exists(dir) {
            return Ok(None);
        }
        let c = Self::load(dir, device)?;
        c.check_fits(dataset).with_context(|| format!("classifiers in {}", dir.display()))?;
        Ok(Some(c))
    }

    /// Loads the classifiers in `dir` if there are any (checking they fit `dataset`), otherwise
    /// trains them and saves them there. Returns whether they were trained now.
    pub fn load_or_train(dir: &Path, dataset: &MultimodalDataset, options: &ClassifierOptions) -> Result<(Self, bool)> {
        if let Some(c) = Self::load_if_present(dir, dataset, options.device)? {
            return Ok((c, false));
        }
        Ok((Self::train_in(dir, dataset, options)?, true))
    }

    /// Errors unless these classifiers were trained for `dataset`'s modalities and classes.
    pub fn check_fits(&self, dataset: &MultimodalDataset) -> Result<()> {
        ensure!(
            self.info.modalities == dataset.modalities,
            "trained for modalities [{}] of dataset {}, not [{}] of dataset {}",
            describe(&self.info.modalities),
            self.info.dataset,
            describe(&dataset.modalities),
            dataset.name
        );
        ensure!(
            self.info.num_classes == dataset.num_classes,
            "trained for {} classes, dataset {} has {}",
            self.info.num_classes,
            dataset.name,
            dataset.num_classes
        );
        Ok(())
    }

    pub fn info(&self) -> &ClassifierInfo {
        &self.info
    }

    pub fn modalities(&self) -> &[ModalitySpec] {
        &self.info.modalities
    }

    pub fn num_classes(&self) -> i64 {
        self.info.num_classes
    }

    /// Test accuracy of each modality's classifier, measured when it was trained.
    pub fn test_accuracy(&self) -> &[f64] {
        &self.info.test_accuracy
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Checks that `x` is a batch of modality `m` and converts it to the classifier's device and
    /// the kind its network reads (i64 ids for text, f32 otherwise).
    fn prepare(&self, m: usize, x: &Tensor) -> Result<Tensor> {
        let spec = self
            .info
            .modalities
            .get(m)
            .with_context(|| format!("no modality {m}: the classifiers know {}", self.info.modalities.len()))?;
        let size = x.size();
        ensure!(
            size.len() == spec.item_shape().len() + 1 && size[1..] == spec.item_shape()[..],
            "classifier of modality {} expects items of shape {:?}, got a batch of shape {size:?}",
            spec.name,
            spec.item_shape()
        );
        let kind = if matches!(spec.kind, ModalityKind::Text { .. }) { Kind::Int64 } else { Kind::Float };
        Ok(x.to_device(self.device()).to_kind(kind))
    }

    /// Applies `f` to chunks of the batch `x` of modality `m`, without gradients, and
    /// concatenates the results.
    fn chunked(&self, m: usize, x: &Tensor, f: impl Fn(&ModalityClassifier, &Tensor) -> Tensor) -> Result<Tensor> {
        let x = self.prepare(m, x)?;
        let _guard = tch::no_grad_guard();
        let n = x.size()[0];
        if n == 0 {
            bail!("classifier of modality {}: empty batch", self.info.modalities[m].name);
        }
        let parts: Vec<Tensor> =
            (0..n).step_by(CHUNK as usize).map(|s| f(&self.nets[m], &x.narrow(0, s, CHUNK.min(n - s)))).collect();
        Ok(Tensor::cat(&parts, 0))
    }

    /// Class logits `[N, num_classes]` of a batch of modality `m` (data space, any device).
    pub fn logits(&self, m: usize, x: &Tensor) -> Result<Tensor> {
        self.chunked(m, x, |net, x| net.head.forward(&net.features.forward(x).silu()))
    }

    /// Penultimate-layer features `[N, feature_dim]` of a batch of modality `m`.
    pub fn features(&self, m: usize, x: &Tensor) -> Result<Tensor> {
        self.chunked(m, x, |net, x| net.features.forward(x).silu())
    }

    /// Predicted class ids `i64 [N]` of a batch of modality `m` (data space, any device), on
    /// the classifiers' device.
    ///
    /// # Panics
    /// When `x` is not a batch of modality `m` (use [`Classifiers::logits`] for a `Result`).
    pub fn predict(&self, m: usize, x: &Tensor) -> Tensor {
        match self.logits(m, x) {
            Ok(logits) => logits.argmax(-1, false),
            Err(e) => panic!("Classifiers::predict: {e:#}"),
        }
    }

    /// Fraction of the batch `x` of modality `m` classified as `labels`.
    pub fn accuracy(&self, m: usize, x: &Tensor, labels: &Tensor) -> Result<f64> {
        let predicted = self.logits(m, x)?.argmax(-1, false);
        ensure!(
            labels.size() == [predicted.size()[0]],
            "accuracy: {} labels for {} items",
            labels.numel(),
            predicted.size()[0]
        );
        Ok(predicted
            .eq_tensor(&labels.to_device(predicted.device()))
            .to_kind(Kind::Float)
            .mean(Kind::Float)
            .double_value(&[]))
    }
}

fn describe(modalities: &[ModalitySpec]) -> String {
    modalities.iter().map(|m| format!("{}: {}", m.name, m.describe())).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmlatent_data::synthetic::squares;

    /// The default folder follows the dataset, not how its path is spelled or where `eval` runs.
    #[test]
    fn default_folder_is_keyed_by_the_resolved_dataset() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("d/train/m0")).unwrap();
        let config = |path: PathBuf, max_train| DataConfig { path, format: "auto".into(), max_train, max_test: None };
        let a = default_dir("polymnist", &config(dir.path().join("d"), None));
        let b = default_dir("polymnist", &config(dir.path().join("d/train/../../d"), None));
        assert_eq!(a, b);
        assert!(a.is_absolute() || std::env::var_os("MMLATENT_CACHE").is_some(), "{}", a.display());
        assert_ne!(a, default_dir("polymnist", &config(dir.path().join("d"), Some(10))));
        let builtin = default_dir("default", &config(PathBuf::from("default"), None));
        assert!(builtin.file_name().unwrap().to_string_lossy().starts_with("default-"), "{}", builtin.display());
    }

    #[test]
    fn classifiers_learn_squares_and_round_trip() {
        let ds = squares(600, 200, 2, 0);
        let c = Classifiers::train(&ds, &ClassifierOptions::fast()).unwrap();
        for (m, acc) in c.test_accuracy().iter().enumerate() {
            assert!(*acc > 0.9, "modality {m}: test accuracy {acc}");
        }

        let dir = tempfile::tempdir().unwrap();
        c.save(dir.path()).unwrap();
        let loaded = Classifiers::load(dir.path(), Device::Cpu).unwrap();
        let test = ds.test.head(&ds.modalities, 50, Device::Cpu);
        assert!(loaded.predict(1, &test.items[1]).equal(&c.predict(1, &test.items[1])));
        assert_eq!(loaded.info(), c.info());
        assert_eq!(c.features(0, &test.items[0]).unwrap().size(), vec![50, 64]);
        // FD in the classifier's features: small between real sets, large against noise.
        let train = ds.train.head(&ds.modalities, 200, Device::Cpu);
        let test = ds.test.head(&ds.modalities, 200, Device::Cpu);
        let real = crate::fid::classifier_frechet_distance(&c, 0, &train.items[0], &test.items[0]).unwrap();
        let noise = Tensor::rand([200, 1, 28, 28], (Kind::Float, Device::Cpu));
        let fake = crate::fid::classifier_frechet_distance(&c, 0, &noise, &test.items[0]).unwrap();
        assert!(fake > 10.0 * real, "FD real {real}, noise {fake}");
        // A batch of the wrong shape is an error naming the modality.
        let err = c.logits(0, &Tensor::zeros([3, 28], (Kind::Float, Device::Cpu))).unwrap_err().to_string();
        assert!(err.contains("m0"), "{err}");
    }

    /// Text whose tokens encode the label (plus noise tokens) and a noisy one-hot vector.
    fn text_and_vector(n: i64, seed: i64) -> mmlatent_core::Split {
        tch::manual_seed(seed);
        let labels = Tensor::randint(10, [n], (Kind::Int64, Device::Cpu));
        let noise = Tensor::randint(40, [n, 16], (Kind::Int64, Device::Cpu)) + 10;
        let keep = Tensor::rand([n, 16], (Kind::Float, Device::Cpu)).lt(0.7);
        let text = noise.where_self(&keep, &labels.unsqueeze(1).expand([n, 16], false));
        let vector = labels.one_hot(10).to_kind(Kind::Float) + Tensor::randn([n, 10], (Kind::Float, Device::Cpu)) * 0.3;
        mmlatent_core::Split { items: vec![text, vector], labels }
    }

    #[test]
    fn text_and_vector_classifiers_learn() {
        let ds = MultimodalDataset {
            name: "tv".into(),
            modalities: vec![ModalitySpec::text("t", 16, 50), ModalitySpec::vector("v", 10)],
            num_classes: 10,
            class_names: vec![],
            vocabularies: vec![None, None],
            train: text_and_vector(600, 1),
            test: text_and_vector(200, 2),
        };
        ds.check().unwrap();
        let c = Classifiers::train(&ds, &ClassifierOptions { steps: 300, ..ClassifierOptions::fast() }).unwrap();
        // Chance is 0.1.
        assert!(c.test_accuracy().iter().all(|&a| a > 0.8), "{:?}", c.test_accuracy());
    }

    #[test]
    fn loading_a_missing_or_mismatched_folder_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = format!("{:#}", Classifiers::load(dir.path(), Device::Cpu).err().unwrap());
        assert!(err.contains("classifiers.json"), "{err}");
        let small = squares(40, 20, 2, 0);
        let opts = ClassifierOptions { steps: 2, ..ClassifierOptions::fast() };
        let (c, trained) = Classifiers::load_or_train(dir.path(), &small, &opts).unwrap();
        assert!(trained);
        assert!(Classifiers::exists(dir.path()));
        let three = squares(40, 20, 3, 0);
        assert!(c.check_fits(&three).is_err());
        let err = format!("{:#}", Classifiers::load_or_train(dir.path(), &three, &opts).err().unwrap());
        assert!(err.contains("modalities"), "{err}");
        // The saved recipe is compared with the asked one.
        assert_eq!(c.info().recipe_difference(&opts), None);
        let longer = ClassifierOptions { steps: 1500, ..opts };
        let difference = c.info().recipe_difference(&longer).unwrap();
        assert!(difference.contains("2 steps") && difference.contains("1500 steps"), "{difference}");
    }
}
