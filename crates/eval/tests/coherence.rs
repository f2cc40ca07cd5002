//! Coherence judged on reference models: an oracle that returns real items of the right label
//! must score the classifiers' own accuracy; a model of random labels must score chance.

use mmlatent_data::synthetic::squares;
use mmlatent_eval::coherence::{conditional_coherence, joint_coherence, proper_subsets};
use mmlatent_eval::oracle::{Behaviour, ReferenceModel};
use mmlatent_eval::{ClassifierOptions, Classifiers};

#[test]
fn oracle_scores_the_classifier_accuracy_and_random_labels_score_chance() {
    tch::manual_seed(0);
    let ds = squares(600, 300, 3, 0);
    let classifiers = Classifiers::train(&ds, &ClassifierOptions::fast()).unwrap();
    let accuracy = classifiers.test_accuracy().to_vec();
    assert!(accuracy.iter().all(|&a| a > 0.9), "classifiers too weak to judge: {accuracy:?}");

    let oracle = ReferenceModel::new(&ds, Behaviour::Oracle).unwrap();
    let scores = conditional_coherence(&oracle, &classifiers, &ds.test, 300, 100).unwrap();
    // 3 singletons × 2 targets + 3 pairs × 1 target.
    assert_eq!(proper_subsets(3).len(), 6);
    assert_eq!(scores.entries.len(), 9);
    for e in &scores.entries {
        let m = ds.modality_index(&e.target).unwrap();
        // Generations are pool items of the true label: the classifier's accuracy (±sampling).
        assert!(
            (e.value - accuracy[m]).abs() < 0.06,
            "{:?}→{}: {} vs accuracy {}",
            e.given,
            e.target,
            e.value,
            accuracy[m]
        );
    }
    assert_eq!(scores.by_size.len(), 2);
    let joint = joint_coherence(&oracle, &classifiers, 300, 128).unwrap();
    let floor: f64 = accuracy.iter().map(|a| 1.0 - a).sum::<f64>();
    assert!(joint > 1.0 - floor - 0.05, "oracle joint coherence {joint}, accuracies {accuracy:?}");

    let random = ReferenceModel::new(&ds, Behaviour::RandomLabels).unwrap();
    let scores = conditional_coherence(&random, &classifiers, &ds.test, 300, 100).unwrap();
    for a in &scores.by_size {
        assert!((a.value - 0.1).abs() < 0.05, "random labels, |S| = {}: {}", a.size, a.value);
    }
    // Three independent labels agree with probability 1/100.
    let joint = joint_coherence(&random, &classifiers, 500, 250).unwrap();
    assert!(joint < 0.04, "random joint coherence {joint}");
}
