//! How mmlatent shows its work to a person: progress bars ([`progress`]), loss plots ([`plot`]),
//! PNG grids of image samples ([`grid`]), and [`stages::Presenter`], the observer of the training
//! loop (`mmlatent_train::observe`) that draws each stage's bar and plots its losses into the run
//! folder. A front end installs it; the training loop never calls this crate.
//!
//! It must not know any model family, dataset file format or evaluation metric: it draws what it
//! is given (tensors, a `MultimodalModel`'s samples, logged metrics, step counts). Model crates
//! must not depend on it.

pub mod grid;
pub mod plot;
pub mod progress;
pub mod stages;
