//! # hgn — Hamiltonian Generative Networks in Rust
//!
//! An implementation of Toth, Rezende, Jaegle, Racanière, Botev & Higgins, *Hamiltonian
//! Generative Networks* (ICLR 2020) on burn 0.22.
//!
//! "Reference Dn" in the documentation is the project decision Dn in `docs/decisions.md`;
//! `docs/paper-map.md` maps each part of the paper to the code.
//!
//! Crate map (see `ARCHITECTURE.md` for the invariants):
//!
//! - [`physics`]: f64 Hamiltonian systems, ground-truth integration and the soft-disc renderer
//!   (no burn, no I/O);
//! - [`data`]: the dataset format (`.npy` + `meta.json`), `hgn generate`, `hgn inspect`, and
//!   training windows read from the files;
//! - [`model`]: the HGN on burn tensors, with explicit Hamiltonian gradients, integrators and loss;
//! - [`protocol`]: the window protocols (`forecast`, `reconstruct`) every consumer of frames
//!   follows; [`run`]: run folders, crash-safe writes and checkpoints; [`rng`]: the named
//!   random streams; [`check`]: the one-line range checks every `validate` shares;
//! - [`train`], [`bench`](mod@bench), [`export`]: `hgn train`, `hgn bench`, `hgn export`;
//! - [`oracle`]: the physics oracle (the exact system fitted to the same frames);
//! - [`metrics`], [`eval`], [`rollout`], [`plot`], [`table1`]: evaluation formulas, `hgn eval`,
//!   `hgn rollout`, `hgn plot`, `hgn table1`; [`viz`]: charts, heat maps, PNG and GIF writing;
//! - [`flow`]: the Neural Hamiltonian Flow, its RealNVP baseline and `hgn flow`;
//! - [`device`]: the `--device` choice → burn device; [`progress`]: the
//!   [`progress::Reporter`] that carries lines and the progress of long work to an observer the
//!   binary provides; the binary owns the command line (`src/main.rs`, `src/cli/`) and is the
//!   only code that prints or draws.

pub mod bench;
pub mod check;
pub mod data;
pub mod device;
pub mod eval;
pub mod export;
pub mod flow;
pub mod metrics;
pub mod model;
pub mod oracle;
pub mod physics;
pub mod plot;
pub mod probe;
pub mod progress;
pub mod protocol;
pub mod rng;
pub mod rollout;
pub mod run;
pub mod table1;
pub mod train;
pub mod viz;
