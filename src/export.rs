//! `hgn export`: a trained run's weights as a SafeTensors file for PyTorch or JAX users.
//!
//! Tensor names are the module paths of `Hgn`, joined by dots, and are stable:
//!
//! ```text
//! encoder.layers.{i}.{weight,bias}              conv weights [out, in, kh, kw] (PyTorch OIHW)
//! encoder.head.{weight,bias}                     vector latent: linear, weight [in, out]
//! transform.layers.{i}.{weight,bias}            absent for the "no f_ψ" ablation
//! hamiltonian.kinetic.layers.{0..4}.{weight,bias}    K(p) of a separable H (0..2: vector latent)
//! hamiltonian.potential.layers.{0..4}.{weight,bias}  U(q) of a separable H
//! hamiltonian.joint.layers.{0..4}.{weight,bias}      H(q, p) of a non-separable H
//! decoder.constant                               learned constant channels [1, 2, s, s]
//! decoder.blocks.{0..2}.{i}.{weight,bias}        upsampling blocks (`paper` layout)
//! broadcast_decoder.position.{weight,bias}       vector latent: first layer on q, [in, out]
//! broadcast_decoder.coordinates.{weight,bias}    first layer on the pixel (x, y) ∈ [−1, 1]²
//! broadcast_decoder.layers.{i}.{weight,bias}     further per-pixel linear layers, the last to RGB
//! residual_decoder.blocks.{0..2}.{0,1}.{weight,bias}, residual_decoder.skips.0.{weight,bias},
//! residual_decoder.output.{weight,bias}          residual decoder (`campusai` layout)
//! geco_lambda                                    GECO's λ before the softplus
//! ```
//!
//! Padding is TF `SAME`/`VALID` as in `config.json`; `__metadata__` carries the run config.

use std::path::Path;

use anyhow::Result;
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

use crate::device::DeviceChoice;
use crate::model::Hgn;
use crate::train::RunConfig;

/// One named tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    /// Dotted module path.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Values in C order.
    pub values: Vec<f32>,
}

#[derive(Default)]
struct Collector {
    path: Vec<String>,
    tensors: Vec<NamedTensor>,
}

impl ModuleVisitor for Collector {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        let data = tensor.to_data().convert::<f32>();
        self.tensors.push(NamedTensor {
            name: self.path.join("."),
            shape: tensor.dims().to_vec(),
            values: data.try_to_vec::<f32>().unwrap_or_default(),
        });
    }
}

/// Every parameter of `model` with its stable name.
pub fn named_tensors(model: &Hgn) -> Vec<NamedTensor> {
    let mut collector = Collector::default();
    model.visit(&mut collector);
    collector.tensors
}

/// Loads the model of a run from its `config.json` and checkpoint, on the CPU.
pub fn load_run(run: &Path) -> Result<(RunConfig, Hgn)> {
    crate::run::RunDir::new(run).load(&DeviceChoice::Cpu.device()?)
}

/// Serialises tensors in the SafeTensors format (little-endian f32).
pub fn safetensors_bytes(tensors: &[NamedTensor], metadata: &serde_json::Value) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), metadata.clone());
    let mut offset = 0usize;
    for t in tensors {
        let bytes = t.values.len() * 4;
        header.insert(
            t.name.clone(),
            serde_json::json!({ "dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + bytes] }),
        );
        offset += bytes;
    }
    let mut header = serde_json::to_vec(&serde_json::Value::Object(header)).expect("JSON");
    // Pad the header with spaces so the data starts 8-byte aligned.
    while !(8 + header.len()).is_multiple_of(8) {
        header.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    for t in tensors {
        for v in &t.values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// Writes the run's weights to `out` (through a temporary file and a rename).
pub fn export(run: &Path, out: &Path) -> Result<usize> {
    let (config, model) = load_run(run)?;
    let tensors = named_tensors(&model);
    // SafeTensors metadata values must be strings.
    let metadata = serde_json::json!({
        "format": "pt",
        "producer": format!("hgn {}", env!("CARGO_PKG_VERSION")),
        "config": serde_json::to_string(&config)?,
    });
    let bytes = safetensors_bytes(&tensors, &metadata);
    crate::run::write_atomic(out, bytes)?;
    Ok(tensors.len())
}
