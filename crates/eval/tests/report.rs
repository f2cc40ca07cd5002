//! The evaluation report on reference models: the oracle scores the classifiers' accuracy and
//! a small distance; a model of noise images scores chance and a large distance; the report's
//! files (JSON, CSV, text, PNG grids) are written.

use mmlatent_core::testing::global_generator;
use mmlatent_core::{ModalitySpec, MultimodalModel};
use mmlatent_data::synthetic::squares;
use mmlatent_eval::oracle::{Behaviour, ReferenceModel};
use mmlatent_eval::{evaluate, ClassifierOptions, Classifiers, EvalOptions, Report};
use tch::{Device, Kind, Tensor};

/// Uniform noise for every generated modality.
struct Noise(Vec<ModalitySpec>);

impl MultimodalModel for Noise {
    fn name(&self) -> &str {
        "noise"
    }
    fn modalities(&self) -> &[ModalitySpec] {
        &self.0
    }
    fn device(&self) -> Device {
        Device::Cpu
    }
    fn generate_checked(&self, given: &[Option<Tensor>], n: i64) -> anyhow::Result<Vec<Tensor>> {
        Ok(self
            .0
            .iter()
            .zip(given)
            .map(|(s, g)| {
                g.as_ref()
                    .map(|t| t.shallow_clone())
                    .unwrap_or_else(|| Tensor::rand(s.batch_shape(n), (Kind::Float, Device::Cpu)))
            })
            .collect())
    }
}

#[test]
fn report_of_oracle_and_noise() {
    // (A concurrent test's draws once made two evaluations with the same seed differ.)
    let _generator = global_generator();
    tch::manual_seed(0);
    let ds = squares(600, 200, 2, 1);
    let classifiers = Classifiers::train(&ds, &ClassifierOptions::fast()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = EvalOptions {
        joint_samples: 200,
        conditional_samples: 200,
        batch_size: 100,
        grid_dir: Some(dir.path().join("grids")),
        progress: false,
        ..EvalOptions::default()
    };
    let oracle = ReferenceModel::new(&ds, Behaviour::Oracle).unwrap();
    let report = evaluate(&oracle, &ds, &classifiers, &options).unwrap();
    let acc = &report.classifier_accuracy;
    for e in &report.conditional_coherence.entries {
        assert!((e.value - acc[&e.target]).abs() < 0.06, "{e:?} vs {acc:?}");
    }
    assert!(report.joint_coherence > 0.85, "{}", report.joint_coherence);
    assert_eq!(report.conditional_coherence.entries.len(), 2);
    assert!(report.fid.is_none());

    let noise = evaluate(&Noise(ds.modalities.clone()), &ds, &classifiers, &options).unwrap();
    for m in &report.modalities {
        let (good, bad) = (report.fd.joint[m], noise.fd.joint[m]);
        assert!(bad > 10.0 * good, "{m}: oracle FD {good}, noise FD {bad}");
    }
    for (good, bad) in report.fd.conditional.entries.iter().zip(&noise.fd.conditional.entries) {
        assert!(bad.value > 10.0 * good.value, "{good:?} vs {bad:?}");
    }

    // Text, JSON and CSV carry the numbers; the JSON reads back.
    let table = report.to_table();
    assert!(table.contains("Coherence") && table.contains("m0→m1") && table.contains("Joint(m1)"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
    for key in ["joint_coherence", "conditional_coherence", "classifier_accuracy", "fd", "fid"] {
        assert!(json.get(key).is_some(), "no {key} in {json}");
    }
    report.save(dir.path()).unwrap();
    let back: Report = serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    // (JSON keeps 17 significant digits; compare through the rounded table.)
    assert_eq!(back.to_table(), report.to_table());
    let csv = std::fs::read_to_string(dir.path().join("report.csv")).unwrap();
    assert!(csv.lines().any(|l| l.starts_with("conditional_coherence,m0,m1,")), "{csv}");
    for grid in ["joint.png", "given_m0.png", "given_m1.png"] {
        let img = image::open(dir.path().join("grids").join(grid)).unwrap();
        assert_eq!(img.height(), 2 * 86 + 2, "{grid}: two rows of 28-pixel items drawn 84 pixels high");
    }

    // The same seed gives the same report.
    let again = evaluate(&oracle, &ds, &classifiers, &options).unwrap();
    assert_eq!(again.joint_coherence, report.joint_coherence);
    assert_eq!(again.fd, report.fd);
}

#[test]
fn report_with_inception_fid() {
    // (A concurrent test's draws once made two evaluations with the same seed differ.)
    let _generator = global_generator();
    tch::manual_seed(0);
    let ds = squares(100, 20, 2, 2);
    let classifiers = Classifiers::train(&ds, &ClassifierOptions { steps: 5, ..ClassifierOptions::fast() }).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Untrained Inception weights suffice to exercise the path: saved, loaded, applied.
    let weights = dir.path().join("inception.safetensors");
    mmlatent_eval::inception::InceptionV3::new(Device::Cpu).save(&weights).unwrap();
    let options = EvalOptions {
        joint_samples: 6,
        conditional_samples: 6,
        batch_size: 6,
        fid_weights: Some(weights),
        fid_samples: 3,
        progress: false,
        ..EvalOptions::default()
    };
    let oracle = ReferenceModel::new(&ds, Behaviour::Oracle).unwrap();
    let report = evaluate(&oracle, &ds, &classifiers, &options).unwrap();
    let fid = report.fid.as_ref().expect("FID computed");
    assert_eq!(fid.joint.len(), 2);
    assert_eq!(fid.conditional.entries.len(), 2);
    assert!(fid
        .joint
        .values()
        .chain(fid.conditional.entries.iter().map(|e| &e.value))
        .all(|v| v.is_finite() && *v >= 0.0));
    assert_eq!(report.fid_samples, Some(3));
    assert!(report.to_table().contains("FID (Inception, 3 items)"), "{}", report.to_table());
    assert!(report.to_csv().contains("fid_joint,,m0,"));
}
