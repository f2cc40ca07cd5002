//! One module per sub-command.

pub mod bench;
pub mod classifier;
pub mod common;
pub mod data;
pub mod eval;
pub mod fid;
pub mod quickstart;
pub mod report;
pub mod runs;
pub mod sample;
pub mod train;
pub mod workers;
