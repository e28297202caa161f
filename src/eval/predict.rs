//! Rollouts of a trained model from the posterior mean, as plain arrays: the decoded frames,
//! the learned energy and the latent state along each rollout (what `hgn eval`, `hgn rollout`
//! and `hgn plot` measure and draw).

use burn::tensor::Tensor;

use crate::device::host_values;
use crate::model::Hgn;
use crate::model::LatentHamiltonian;
use crate::protocol::{Direction, Window};

/// Rollouts of a batch of sequences, as plain arrays.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// Decoded frames, `[batch][steps + 1 frames × 3·S·S]`, channels-first per frame. Frame `t`
    /// is the state `t` steps from the inferred one (backward: `t` steps into the past).
    pub frames: Vec<Vec<f32>>,
    /// The learned energy `H(q_t, p_t)` along each rollout, `[batch][steps + 1]`.
    pub energy: Vec<Vec<f64>>,
    /// Flattened `q_t` of each rollout, `[batch][steps + 1][L·s·s]`.
    pub q: Vec<Vec<Vec<f64>>>,
    /// Flattened `p_t`, as `q`.
    pub p: Vec<Vec<Vec<f64>>>,
}

/// Rolls out the model, from the posterior mean, from the inference frames of `frames`
/// (`[B, T, 3, S, S]`, `T ≥ K`) that `window` picks for `direction`: forward from frames `0..K`,
/// or backward (`−dt`) from the last `K` frames.
pub fn predict(
    model: &Hgn,
    window: &Window,
    frames: Tensor<5>,
    dt: f64,
    steps: usize,
    direction: Direction,
) -> Prediction {
    let inference = window.inference(frames, direction);
    let (q, p, _, _) = model.infer(inference, None);
    predict_from_state(model, q, p, direction.signed(dt), steps)
}

/// Rolls out the model from the latent state `(q, p)` (`[B, L, s, s]` each) with step `dt`.
pub fn predict_from_state(
    model: &Hgn,
    q: Tensor<4>,
    p: Tensor<4>,
    dt: f64,
    steps: usize,
) -> Prediction {
    let b = q.dims()[0];
    let trajectory =
        crate::model::integrator::rollout(&model.hamiltonian, model.integrator, q, p, dt, steps);
    let decoded = host_values::<f32, _>(model.decode_all(&trajectory.q).reshape([b as i32, -1]));
    let per_seq = decoded.len() / b;
    let frames: Vec<Vec<f32>> = decoded.chunks_exact(per_seq).map(|c| c.to_vec()).collect();
    let mut energy = vec![Vec::with_capacity(steps + 1); b];
    let mut qs = vec![Vec::with_capacity(steps + 1); b];
    let mut ps = vec![Vec::with_capacity(steps + 1); b];
    for (q, p) in trajectory.q.iter().zip(&trajectory.p) {
        let e = host_values::<f32, _>(model.hamiltonian.energy(q.clone(), p.clone()));
        for (i, v) in e.into_iter().enumerate() {
            energy[i].push(v as f64);
        }
        for (store, x) in [(&mut qs, q), (&mut ps, p)] {
            let flat = host_values::<f32, _>(x.clone().reshape([b as i32, -1]));
            let d = flat.len() / b;
            for (i, row) in flat.chunks_exact(d).enumerate() {
                store[i].push(row.iter().map(|&v| v as f64).collect());
            }
        }
    }
    Prediction {
        frames,
        energy,
        q: qs,
        p: ps,
    }
}
