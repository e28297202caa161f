//! Datasets on disk: the `.npy` format, the `meta.json` schema, generation and verification.
//!
//! The data path runs one way: [`generate`](mod@generate) writes a dataset folder from the simulators in
//! [`crate::physics`]; [`format`](mod@format) defines and validates its layout; [`inspect`](mod@inspect) verifies a
//! folder and summarises it. Training reads the same files through [`npy`].

pub mod dataset;
pub mod format;
pub mod generate;
pub mod inspect;
pub mod npy;

pub use dataset::{SequenceDataset, batch_tensor};
pub use format::{DatasetMeta, FORMAT_VERSION, Split};
pub use generate::{GenerateOptions, GenerateSummary, generate};
pub use inspect::{InspectReport, inspect};
