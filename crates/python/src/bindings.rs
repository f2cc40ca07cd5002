//! The PyO3 module `mmlatent._native`, wrapped by `python/mmlatent/__init__.py` (which imports
//! torch first, so that this module finds the libtorch it was built against already loaded).
//!
//! Tensors cross through DLPack ([`crate::dlpack`]): arguments are views of the caller's torch
//! tensors, results are handed to `torch.from_dlpack`; neither side copies.
//!
//! Every entry point runs its work under `catch_unwind`: an error becomes `MmlatentError` with
//! the message the CLI prints (`{error:#}`, the anyhow chain on one line), a panic becomes
//! `MmlatentError` naming it a bug, and an exception raised by the progress callback (or a
//! Ctrl-C seen while training reports progress) unwinds out of training and is re-raised as
//! itself. Long work runs without the GIL.

use crate::convert::{config_text_from_json, override_from_json, panic_message};
use crate::dlpack::{self, DlManagedTensor, Imported};
use crate::evaluation;
use mmlatent_core::device::seed_everything;
use mmlatent_core::{ModalityKind, MultimodalModel};
use mmlatent_eval::inception::InceptionV3;
use mmlatent_eval::{ClassifierOptions, Classifiers};
use mmlatent_present::progress::{self, Event, Observer};
use mmlatent_runner::device::parse_device;
use mmlatent_runner::sampler::SamplerArgs;
use mmlatent_runner::{ConfigSource, OpenedRun, TrainRequest};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyKeyboardInterrupt, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::ffi::{c_void, CStr};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use tch::Tensor;

create_exception!(mmlatent, MmlatentError, PyException, "An mmlatent error, with the message the CLI prints.");

const CAPSULE: &CStr = c"dltensor";
const USED_CAPSULE: &CStr = c"used_dltensor";

/// A `torch.Tensor` argument, viewed without a copy (valid while this lives).
struct TorchIn(Imported);

impl<'py> FromPyObject<'py> for TorchIn {
    fn extract_bound(ob: &Bound<'py, PyAny>) -> PyResult<Self> {
        let py = ob.py();
        if !ob.is_instance(&py.import("torch")?.getattr("Tensor")?)? {
            return Err(PyTypeError::new_err(format!("expected a torch.Tensor, got {}", ob.get_type().name()?)));
        }
        let capsule = ob.call_method0("detach")?.call_method0("__dlpack__")?;
        // SAFETY: a capsule named "dltensor" holds a DLManagedTensor; renaming it to
        // "used_dltensor" makes this side the one that calls its deleter (DLPack's protocol).
        unsafe {
            let managed = ffi::PyCapsule_GetPointer(capsule.as_ptr(), CAPSULE.as_ptr()) as *mut DlManagedTensor;
            if managed.is_null() {
                return Err(PyErr::fetch(py));
            }
            if ffi::PyCapsule_SetName(capsule.as_ptr(), USED_CAPSULE.as_ptr()) != 0 {
                return Err(PyErr::fetch(py));
            }
            Imported::new(managed).map(TorchIn).map_err(|e| MmlatentError::new_err(format!("{e:#}")))
        }
    }
}

unsafe extern "C" fn drop_unused_capsule(capsule: *mut ffi::PyObject) {
    // SAFETY: called by Python on our capsules; a capsule torch consumed was renamed, and its
    // deleter is torch's to call.
    unsafe {
        if ffi::PyCapsule_IsValid(capsule, CAPSULE.as_ptr()) == 1 {
            let managed = ffi::PyCapsule_GetPointer(capsule, CAPSULE.as_ptr()) as *mut DlManagedTensor;
            if let Some(deleter) = (*managed).deleter {
                deleter(managed);
            }
        }
    }
}

/// `tensor` as a `torch.Tensor` sharing its memory.
fn to_torch(py: Python<'_>, tensor: Tensor) -> PyResult<Bound<'_, PyAny>> {
    let managed = dlpack::export(tensor).map_err(|e| MmlatentError::new_err(format!("{e:#}")))?;
    // SAFETY: the capsule owns `managed` until torch takes it (or its destructor frees it).
    let capsule = unsafe {
        let raw = ffi::PyCapsule_New(managed as *mut c_void, CAPSULE.as_ptr(), Some(drop_unused_capsule));
        if raw.is_null() {
            if let Some(deleter) = (*managed).deleter {
                deleter(managed);
            }
            return Err(PyErr::fetch(py));
        }
        Bound::from_owned_ptr(py, raw)
    };
    py.import("torch")?.getattr("from_dlpack")?.call1((capsule,))
}

/// The tensors of a dict `{modality name: torch.Tensor}`, in its order.
fn tensors_of(dict: &Bound<'_, PyDict>) -> PyResult<Vec<(String, TorchIn)>> {
    dict.iter().map(|(k, v)| Ok((k.extract::<String>()?, v.extract::<TorchIn>()?))).collect()
}

/// A Python exception raised by a progress callback, carried out of training by unwinding.
struct RaisedInCallback(PyErr);

/// A value used on the thread that owns it while the GIL is released (`allow_threads` runs its
/// closure on the calling thread); the models are `unsendable` Python objects.
struct SameThread<T>(T);
// SAFETY: the wrapped value never leaves the calling thread: `allow_threads` runs the closure
// on that thread and returns before the value is touched again.
unsafe impl<T> Send for SameThread<T> {}

impl<T> SameThread<T> {
    fn get(&self) -> &T {
        &self.0
    }

    fn into_inner(self) -> T {
        self.0
    }
}

/// The Python form of what `work` ended with (see the module doc).
fn outcome<T>(result: std::thread::Result<anyhow::Result<T>>) -> PyResult<T> {
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) if mmlatent_train::interrupt::is_interrupted(&e) => {
            Err(PyKeyboardInterrupt::new_err(format!("{e:#}")))
        }
        Ok(Err(e)) => Err(MmlatentError::new_err(format!("{e:#}"))),
        Err(payload) => match payload.downcast::<RaisedInCallback>() {
            Ok(raised) => Err(raised.0),
            Err(payload) => Err(MmlatentError::new_err(format!(
                "internal error (a bug of mmlatent, please report it): {}",
                panic_message(payload.as_ref())
            ))),
        },
    }
}

/// Runs `work` without the GIL, errors and panics turned into Python exceptions.
fn released<T: Send>(py: Python<'_>, work: impl FnOnce() -> anyhow::Result<T> + Send) -> PyResult<T> {
    outcome(py.allow_threads(|| catch_unwind(AssertUnwindSafe(work))))
}

/// Installs a progress observer calling `report(kind, label, done, total, text)` for the life
/// of the guard (kind: `"step"`, `"line"` or `"finish"`; text: the status, the line, or the
/// seconds taken). An exception in `report` unwinds out of the work; so does a pending Ctrl-C,
/// except in training, where the stage first checkpoints its step (`mmlatent_train::interrupt`)
/// and the call raises `KeyboardInterrupt` naming the set to resume from.
struct ObserverGuard(Option<Observer>);

impl ObserverGuard {
    fn install(report: Py<PyAny>) -> Self {
        let observer = progress::observer(move |event| {
            let called = Python::with_gil(|py| -> PyResult<()> {
                py.check_signals()?;
                let args = match *event {
                    Event::Step { label, done, total, message } => ("step", label, done, total, message.to_string()),
                    Event::Line { label, line } => ("line", label, 0, 0, line.to_string()),
                    Event::Finish { label, done, total, seconds } => {
                        ("finish", label, done, total, format!("{seconds:.1}"))
                    }
                };
                report.call1(py, args)?;
                Ok(())
            });
            if let Err(err) = called {
                // Ctrl-C (pending, or raised while the callback ran) asks a training stage to
                // checkpoint and stop; outside training it unwinds like any exception.
                let ctrl_c = Python::with_gil(|py| err.is_instance_of::<PyKeyboardInterrupt>(py));
                if !(ctrl_c && mmlatent_train::interrupt::request()) {
                    resume_unwind(Box::new(RaisedInCallback(err)));
                }
            }
        });
        Self(progress::set_observer(Some(observer)))
    }
}

impl Drop for ObserverGuard {
    fn drop(&mut self) {
        progress::set_observer(self.0.take());
    }
}

/// A trained run opened for sampling: see `mmlatent.open_run`.
#[pyclass(unsendable, module = "mmlatent._native")]
struct Model {
    opened: OpenedRun,
}

impl Model {
    fn model(&self) -> &dyn MultimodalModel {
        self.opened.model.as_ref()
    }

    /// The model's index of modality `name`.
    fn index(&self, name: &str) -> PyResult<usize> {
        self.opened.dataset.modality_index(name).map_err(|e| MmlatentError::new_err(format!("{e:#}")))
    }

    /// One entry per modality, in the model's order, from a dict of tensors by name (views,
    /// valid while `inputs` lives).
    fn by_index(&self, inputs: &[(String, TorchIn)]) -> PyResult<Vec<Option<Tensor>>> {
        let mut slots: Vec<Option<Tensor>> = self.model().modalities().iter().map(|_| None).collect();
        for (name, tensor) in inputs {
            slots[self.index(name)?] = Some(tensor.0.tensor().shallow_clone());
        }
        Ok(slots)
    }

    /// Every modality's tensor, in the model's order (for encoders, which read whole tuples).
    fn complete(&self, inputs: &[(String, TorchIn)], what: &str) -> PyResult<Vec<Tensor>> {
        let specs = self.model().modalities();
        let slots = self.by_index(inputs)?;
        slots
            .into_iter()
            .zip(specs)
            .map(|(t, spec)| {
                t.ok_or_else(|| {
                    MmlatentError::new_err(format!("{what}: no tensor for modality {} (give every one)", spec.name))
                })
            })
            .collect()
    }

    /// A dict of new tensors (none of them a view of an argument) by modality name.
    fn named<'py>(&self, py: Python<'py>, tensors: Vec<Tensor>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for (spec, t) in self.model().modalities().iter().zip(tensors) {
            dict.set_item(&spec.name, to_torch(py, t)?)?;
        }
        Ok(dict)
    }

    fn latent_view(&self) -> PyResult<&dyn mmlatent_core::model::LatentView> {
        self.model().latent_view().ok_or_else(|| {
            MmlatentError::new_err(format!(
                "model kind `{}` has no latent space of its own to encode into (encode/reconstruct/sample_latents \
                 are MLD's)",
                self.model().name()
            ))
        })
    }
}

#[pymethods]
impl Model {
    /// The run folder.
    #[getter]
    fn path(&self) -> PathBuf {
        self.opened.run.root().to_path_buf()
    }

    /// The model kind, e.g. `mld`.
    #[getter]
    fn kind(&self) -> String {
        self.model().name().to_string()
    }

    /// The device the weights live on, e.g. `cpu` or `cuda:0`.
    #[getter]
    fn device(&self) -> String {
        match self.opened.device {
            tch::Device::Cuda(i) => format!("cuda:{i}"),
            other => format!("{other:?}").to_lowercase(),
        }
    }

    /// The dataset's name.
    #[getter]
    fn dataset(&self) -> String {
        self.opened.dataset.name.clone()
    }

    /// The run's resolved experiment, as a dict.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let text = serde_json::to_string(&self.opened.experiment).map_err(|e| MmlatentError::new_err(e.to_string()))?;
        py.import("json")?.call_method1("loads", (text,))
    }

    /// The sampler `generate` draws with: `{"name", "settings", "evaluations_per_sample"}`.
    #[getter]
    fn sampler<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let text = serde_json::to_string(&self.opened.sampler).map_err(|e| MmlatentError::new_err(e.to_string()))?;
        py.import("json")?.call_method1("loads", (text,))
    }

    /// The modalities in the model's order: name, kind, shape of one item (and text's vocabulary).
    #[getter]
    fn modalities<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.model()
            .modalities()
            .iter()
            .map(|spec| {
                let d = PyDict::new(py);
                d.set_item("name", &spec.name)?;
                let kind = match spec.kind {
                    ModalityKind::Image { .. } => "image",
                    ModalityKind::Text { vocab_size, .. } => {
                        d.set_item("vocab_size", vocab_size)?;
                        "text"
                    }
                    ModalityKind::Vector { .. } => "vector",
                };
                d.set_item("kind", kind)?;
                d.set_item("shape", pyo3::types::PyTuple::new(py, spec.item_shape())?)?;
                Ok(d)
            })
            .collect()
    }

    /// Samples: see `mmlatent.Model.generate`.
    #[pyo3(signature = (given=None, n=16, seed=None))]
    fn generate<'py>(
        &self,
        py: Python<'py>,
        given: Option<Bound<'py, PyDict>>,
        n: i64,
        seed: Option<u64>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let given_tensors = match &given {
            Some(dict) => tensors_of(dict)?,
            None => vec![],
        };
        let inputs = self.by_index(&given_tensors)?;
        if inputs.iter().all(Option::is_some) {
            return Err(MmlatentError::new_err("given holds every modality: leave at least one out to generate it"));
        }
        let model = SameThread(self.model());
        let inputs = SameThread(inputs);
        let outputs = released(py, move || {
            if let Some(seed) = seed {
                seed_everything(seed);
            }
            let _guard = tch::no_grad_guard();
            model.get().generate(inputs.get(), n)
        })?;
        // Given modalities come back as given: the caller's own tensors (the model's outputs
        // for them may be views of the arguments, released when this call returns).
        let dict = PyDict::new(py);
        for (spec, t) in self.model().modalities().iter().zip(outputs) {
            match given.as_ref().map(|g| g.get_item(&spec.name)).transpose()?.flatten() {
                Some(original) => dict.set_item(&spec.name, original)?,
                None => dict.set_item(&spec.name, to_torch(py, t)?)?,
            }
        }
        Ok(dict)
    }

    /// MLD: the standardised concatenated latents `[n, D]` of complete tuples.
    fn encode<'py>(&self, py: Python<'py>, inputs: Bound<'py, PyDict>) -> PyResult<Bound<'py, PyAny>> {
        let tensors = tensors_of(&inputs)?;
        let inputs = SameThread(self.complete(&tensors, "encode")?);
        let view = SameThread(self.latent_view()?);
        let z = released(py, move || view.get().encode(inputs.get()))?;
        to_torch(py, z)
    }

    /// MLD: each modality encoded and decoded by its autoencoder.
    fn reconstruct<'py>(&self, py: Python<'py>, inputs: Bound<'py, PyDict>) -> PyResult<Bound<'py, PyDict>> {
        let tensors = tensors_of(&inputs)?;
        let inputs = SameThread(self.complete(&tensors, "reconstruct")?);
        let view = SameThread(self.latent_view()?);
        let outputs = released(py, move || view.get().reconstruct(inputs.get()))?;
        self.named(py, outputs)
    }

    /// MLD: `n` joint samples of the score model in the space of `encode`.
    #[pyo3(signature = (n, seed=None))]
    fn sample_latents<'py>(&self, py: Python<'py>, n: i64, seed: Option<u64>) -> PyResult<Bound<'py, PyAny>> {
        let view = SameThread(self.latent_view()?);
        let z = released(py, move || {
            if let Some(seed) = seed {
                seed_everything(seed);
            }
            view.get().sample_joint_latents(n)
        })?;
        to_torch(py, z)
    }

    /// MLD: `(offset, size)` of each modality's block of the latent vector, by name.
    #[getter]
    fn latent_spans(&self) -> Option<Vec<(String, (i64, i64))>> {
        let view = self.model().latent_view()?;
        Some(self.model().modalities().iter().map(|s| s.name.clone()).zip(view.latent_spans()).collect())
    }

    /// Evaluates the run as `mmlatent eval` does (the same function): classifiers found in their
    /// cache (or `classifiers`) or trained there, the report written with its provenance to
    /// `<run>/eval/<name>/`; returns the report as a dict, with its folder as `"folder"`.
    #[pyo3(signature = (samples=1000, seed=None, max_given=None, name=None, classifiers=None, fid_weights=None,
                        fid_samples=500, batch=250, classifier_steps=1500, classifier_batch=128,
                        classifier_width=32, classifier_seed=0))]
    #[allow(clippy::too_many_arguments)]
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        samples: usize,
        seed: Option<u64>,
        max_given: Option<usize>,
        name: Option<String>,
        classifiers: Option<PathBuf>,
        fid_weights: Option<PathBuf>,
        fid_samples: usize,
        batch: i64,
        classifier_steps: usize,
        classifier_batch: usize,
        classifier_width: i64,
        classifier_seed: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        use mmlatent_runner::evaluate::{evaluate_run, EvalRequest};
        if samples == 0 || fid_samples == 0 || batch < 1 || classifier_steps == 0 || classifier_batch == 0 {
            return Err(MmlatentError::new_err(
                "evaluate: samples, fid_samples, batch, classifier_steps and classifier_batch must be at least 1",
            ));
        }
        let options = mmlatent_eval::EvalOptions {
            joint_samples: samples as i64,
            conditional_samples: samples,
            batch_size: batch,
            fid_weights,
            fid_samples,
            seed: seed.unwrap_or(self.opened.experiment.seed),
            max_given,
            ..mmlatent_eval::EvalOptions::default()
        };
        let classifier_options = mmlatent_eval::classifier::ClassifierOptions {
            steps: classifier_steps,
            batch_size: classifier_batch,
            width: classifier_width,
            seed: classifier_seed,
            device: self.opened.device,
            progress: true,
            ..Default::default()
        };
        let command = vec![
            "python".to_string(),
            format!("mmlatent.open_run({:?}).evaluate(samples={samples}, seed={seed:?})", self.opened.run.root()),
        ];
        let request = EvalRequest {
            classifiers: classifiers.as_deref(),
            classifier_options,
            options,
            name: name.as_deref(),
            command,
        };
        let opened = SameThread(&self.opened);
        let request = SameThread(request);
        let text = released(py, move || {
            let (report, folder) = evaluate_run(opened.get(), request.into_inner())?;
            let mut value: serde_json::Value = serde_json::from_str(&report.to_json()?)?;
            value["folder"] = serde_json::Value::from(folder.display().to_string());
            Ok(value.to_string())
        })?;
        py.import("json")?.call_method1("loads", (text,))
    }

    fn __repr__(&self) -> String {
        format!("<mmlatent model {} of run {}>", self.kind(), self.opened.run.root().display())
    }
}

/// Opens a trained run folder on `device` (default: the run's own), sampling with the run's
/// sampler or the one chosen as with `--sampler`, `--steps` and `--sampler-option NAME=VALUE`.
#[pyfunction]
#[pyo3(signature = (path, device=None, sampler=None, steps=None, sampler_options=vec![]))]
fn open_run(
    py: Python<'_>,
    path: PathBuf,
    device: Option<String>,
    sampler: Option<String>,
    steps: Option<usize>,
    sampler_options: Vec<String>,
) -> PyResult<Model> {
    let choice = SamplerArgs { sampler, steps, options: sampler_options };
    let opened = released(py, move || mmlatent_runner::open_run(&path, device.as_deref(), &choice).map(SameThread))?;
    Ok(Model { opened: opened.into_inner() })
}

/// Trains an experiment (a TOML file, or a config given as JSON) into a run folder; returns it.
#[pyfunction]
#[pyo3(signature = (config_path=None, config_json=None, run=None, overrides=vec![], resume=false, device=None, report=None, autoencoders_from=None))]
#[allow(clippy::too_many_arguments)]
fn train(
    py: Python<'_>,
    config_path: Option<PathBuf>,
    config_json: Option<String>,
    run: Option<PathBuf>,
    overrides: Vec<String>,
    resume: bool,
    device: Option<String>,
    report: Option<Py<PyAny>>,
    autoencoders_from: Option<PathBuf>,
) -> PyResult<PathBuf> {
    let _observer = report.map(ObserverGuard::install);
    released(py, move || {
        let text = config_json.as_deref().map(config_text_from_json).transpose()?;
        let config = match (&config_path, &text) {
            (Some(path), None) => ConfigSource::File(path),
            (None, Some(text)) => ConfigSource::Text(text),
            _ => anyhow::bail!("train: give a config file or a config dict"),
        };
        mmlatent_runner::train(&TrainRequest {
            config,
            run,
            resume,
            overrides: &overrides,
            device: device.as_deref(),
            take_over_from: autoencoders_from.as_deref(),
        })
    })
}

/// The `--set` text `key=value` of a value given as JSON.
#[pyfunction]
fn override_text(key: &str, value_json: &str) -> PyResult<String> {
    outcome(catch_unwind(|| override_from_json(key, value_json)))
}

/// Trains one classifier per modality of a dataset and saves them in `out` (what
/// `mmlatent classifier train` does); returns their test accuracies by modality.
#[pyfunction]
#[pyo3(signature = (out, data, format, steps, batch_size, width, seed, max_train, max_test, device, report=None))]
#[allow(clippy::too_many_arguments)]
fn train_classifiers(
    py: Python<'_>,
    out: PathBuf,
    data: PathBuf,
    format: String,
    steps: usize,
    batch_size: usize,
    width: i64,
    seed: u64,
    max_train: Option<usize>,
    max_test: Option<usize>,
    device: &str,
    report: Option<Py<PyAny>>,
) -> PyResult<Vec<(String, f64)>> {
    let device = device.to_string();
    let _observer = report.map(ObserverGuard::install);
    released(py, move || {
        let config = mmlatent_train::config::DataConfig { path: data, format, max_train, max_test };
        let dataset = mmlatent_data::open(&config)?;
        let options = ClassifierOptions {
            steps,
            batch_size,
            width,
            seed,
            device: parse_device(&device)?,
            ..ClassifierOptions::default()
        };
        seed_everything(seed);
        let classifiers = Classifiers::train_in(&out, &dataset, &options)?;
        Ok(dataset.modalities.iter().map(|s| s.name.clone()).zip(classifiers.test_accuracy().iter().copied()).collect())
    })
}

/// Scores tensors with saved classifiers (and Inception weights for FID); see `mmlatent.evaluate`.
#[pyfunction]
#[pyo3(signature = (samples, classifiers, reference=None, labels=None, fid_weights=None, device="cpu", batch=50))]
#[allow(clippy::too_many_arguments)]
fn evaluate<'py>(
    py: Python<'py>,
    samples: Bound<'py, PyDict>,
    classifiers: PathBuf,
    reference: Option<Bound<'py, PyDict>>,
    labels: Option<TorchIn>,
    fid_weights: Option<PathBuf>,
    device: &str,
    batch: i64,
) -> PyResult<Bound<'py, PyDict>> {
    // The views live until the end of this call; the work gets shallow clones of them.
    let held_samples = tensors_of(&samples)?;
    let held_reference = reference.as_ref().map(tensors_of).transpose()?;
    let shallow = |held: &[(String, TorchIn)]| -> Vec<(String, Tensor)> {
        held.iter().map(|(k, t)| (k.clone(), t.0.tensor().shallow_clone())).collect()
    };
    let samples = shallow(&held_samples);
    let reference = held_reference.as_deref().map(shallow);
    let labels = SameThread(labels.as_ref().map(|t| t.0.tensor().shallow_clone()));
    let (samples, reference) = (SameThread(samples), SameThread(reference));
    let device = device.to_string();
    let scores = released(py, move || {
        let (samples, reference, labels) = (samples.get(), reference.get(), labels.get());
        let device = parse_device(&device)?;
        let classifiers = Classifiers::load(&classifiers, device)?;
        let inception = fid_weights.as_deref().map(|w| InceptionV3::load(w, device)).transpose()?;
        evaluation::evaluate(
            &classifiers,
            &evaluation::Inputs {
                samples,
                reference: reference.as_deref(),
                labels: labels.as_ref(),
                inception: inception.as_ref(),
                batch,
            },
        )
    })?;
    let dict = PyDict::new(py);
    dict.set_item("coherence", scores.coherence)?;
    for (key, values) in [("accuracy", scores.accuracy), ("fd", scores.fd), ("fid", scores.fid)] {
        let inner = PyDict::new(py);
        for (name, v) in values {
            inner.set_item(name, v)?;
        }
        dict.set_item(key, inner)?;
    }
    Ok(dict)
}

#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    mmlatent_runner::install_presentation();
    m.add("MmlatentError", m.py().get_type::<MmlatentError>())?;
    m.add_class::<Model>()?;
    m.add_function(wrap_pyfunction!(open_run, m)?)?;
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_function(wrap_pyfunction!(override_text, m)?)?;
    m.add_function(wrap_pyfunction!(train_classifiers, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate, m)?)?;
    Ok(())
}
