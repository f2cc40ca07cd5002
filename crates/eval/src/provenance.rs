//! Where an evaluation's numbers come from, recorded in its `report.json`: the checkpoints the
//! model was loaded from, the sampler and its settings, the seed, the classifiers and their
//! accuracy, the mmlatent version, the date and the command line.

pub use mmlatent_train::family::SamplerInfo;
use mmlatent_train::run::StageStatus;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The provenance of one evaluation.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Provenance {
    /// The run folder as given on the command line, and resolved.
    pub run: PathBuf,
    /// The newest checkpoint set of every stage (the model is loaded from these).
    pub checkpoints: Vec<StageStatus>,
    pub sampler: SamplerInfo,
    /// Seed of the generation.
    pub seed: u64,
    /// Folder of the classifiers, and their test accuracy by modality.
    pub classifiers: PathBuf,
    pub classifier_accuracy: BTreeMap<String, f64>,
    /// `mmlatent` version that produced the report.
    pub version: String,
    /// When the evaluation ended, UTC, ISO 8601.
    pub date: String,
    /// The command line, one entry per argument.
    pub command: Vec<String>,
}

/// Now, UTC, as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    utc_date(secs)
}

/// `secs` since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian calendar; days
/// to civil date after Howard Hinnant's published algorithm).
pub fn utc_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_iso() {
        assert_eq!(utc_date(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_date(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_date(1_798_761_599), "2026-12-31T23:59:59Z");
    }
}
