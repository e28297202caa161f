//! Test-time refinement of the inferred state: a diagnostic that splits a model's Table 1 error
//! into the part its encoder's state costs and the part its dynamics and decoder cost.
//!
//! Each sequence starts from the state `(q, p)` the encoder infers from the posterior mean (as
//! `hgn eval` predicts). Adam then moves `(q, p)` alone, every weight fixed, to lower the Table 1
//! metric itself: the pixel MSE of the decoded rollout over the Table 1 frames, under the run's
//! protocol (`reconstruct`: all `W` frames, integrated back from frame `W − 1`; `forecast`: the
//! first 30 from frame `K − 1`). What the refined state scores is what this Hamiltonian and
//! decoder reach from the best start Adam finds; the inferred state's excess over it is the
//! encoder's share (the amortisation gap).

use anyhow::{Result, ensure};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{FramePlan, Interval};
use crate::data::dataset::{SequenceDataset, batch_tensor};
use crate::metrics;
use crate::model::Hgn;
use crate::model::integrator::rollout;
use crate::protocol::Direction;
use crate::train::RunConfig;

/// Sequences refined per batch.
const CHUNK: usize = 16;

/// How to refine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefineOptions {
    /// Adam steps per sequence.
    pub iterations: usize,
    /// Adam's learning rate, in latent units.
    pub learning_rate: f64,
}

impl RefineOptions {
    /// At least one step, at a positive finite rate.
    pub fn validate(&self) -> Result<()> {
        ensure!(self.iterations >= 1, "--refine needs at least 1 iteration");
        ensure!(
            self.learning_rate.is_finite() && self.learning_rate > 0.0,
            "--refine-lr must be a positive number"
        );
        Ok(())
    }
}

/// The Table 1 error of the inferred and the refined states on the same sequences.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RefineReport {
    /// Adam steps per sequence.
    pub iterations: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Sequences refined (the first ones of the split).
    pub sequences: usize,
    /// Table 1 MSE × 1e4 from the encoder's state.
    pub inferred_mse_x1e4: Interval,
    /// Table 1 MSE × 1e4 from the refined state.
    pub refined_mse_x1e4: Interval,
    /// MSE × 1e4 of each rollout frame from the encoder's state (index `t`: `t` steps from the
    /// inferred frame, as in `mse_per_step`).
    pub inferred_per_step_x1e4: Vec<f64>,
    /// As `inferred_per_step_x1e4`, from the refined state.
    pub refined_per_step_x1e4: Vec<f64>,
}

/// Refines the first `max_sequences` sequences of `set` (see the module's documentation).
/// `model` must live on an autodiff device (`device`).
pub(super) fn refine_split(
    model: &Hgn,
    config: &RunConfig,
    set: &SequenceDataset,
    max_sequences: usize,
    opts: RefineOptions,
    reporter: &crate::progress::Reporter,
    device: &Device,
) -> Result<RefineReport> {
    let plan = FramePlan::new(config, set.seq_len);
    let n = set.num_sequences.min(max_sequences);
    let frames = plan.table1_frames;
    let steps = frames - 1;
    let (direction, read) = if plan.reconstruct {
        (Direction::Backward, plan.bwd_len)
    } else {
        (Direction::Forward, plan.k + steps)
    };
    let dt = direction.signed(config.model.dt);
    let spec = config.window();
    let bar = reporter.task("refine", "sequences", n as u64, 0);
    let (mut inferred, mut refined) = (Vec::new(), Vec::new());
    let (mut inferred_steps, mut refined_steps) = (vec![0.0; frames], vec![0.0; frames]);
    for start in (0..n).step_by(CHUNK) {
        let ids = start..(start + CHUNK).min(n);
        let sequences = set.read_windows(ids.clone(), read)?;
        let frame_len = 3 * set.image_size * set.image_size;
        let truths: Vec<Vec<f32>> = sequences
            .iter()
            .map(|seq| table1_truth(seq, &plan, direction, frame_len))
            .collect();
        let input = batch_tensor(sequences, read, set.image_size, device);
        let (q, p, _, _) = model.infer(spec.inference(input, direction), None);
        let targets = batch_tensor(truths.clone(), frames, set.image_size, device).inner();
        let (q0, p0) = (q.inner(), p.inner());
        let (q1, p1) = adam(model, q0.clone(), p0.clone(), &targets, dt, steps, opts);
        for (state, scores, per_step) in [
            ((q0, p0), &mut inferred, &mut inferred_steps),
            ((q1, p1), &mut refined, &mut refined_steps),
        ] {
            let decoded = decode(model, state.0, state.1, dt, steps);
            let per_seq = decoded.len() / truths.len();
            for (i, truth) in truths.iter().enumerate() {
                let e = metrics::frame_errors(
                    &decoded[i * per_seq..(i + 1) * per_seq],
                    truth,
                    frame_len,
                );
                scores.push(1e4 * metrics::mean(&e.mse));
                for (acc, v) in per_step.iter_mut().zip(&e.mse) {
                    *acc += 1e4 * v;
                }
            }
        }
        bar.inc(ids.len() as u64);
    }
    drop(bar);
    let average = |v: Vec<f64>| v.into_iter().map(|s| s / n as f64).collect();
    Ok(RefineReport {
        iterations: opts.iterations,
        learning_rate: opts.learning_rate,
        sequences: n,
        inferred_mse_x1e4: Interval::of(&inferred),
        refined_mse_x1e4: Interval::of(&refined),
        inferred_per_step_x1e4: average(inferred_steps),
        refined_per_step_x1e4: average(refined_steps),
    })
}

/// The Table 1 frames of one sequence (flat, recorded frames in order) in rollout order:
/// rollout state `t` is recorded frame `W − 1 − t` (backward) or `K − 1 + t` (forward).
fn table1_truth(seq: &[f32], plan: &FramePlan, direction: Direction, frame_len: usize) -> Vec<f32> {
    (0..plan.table1_frames)
        .flat_map(|t| {
            let f = match direction {
                Direction::Backward => plan.bwd_len - 1 - t,
                Direction::Forward => plan.k - 1 + t,
            };
            seq[f * frame_len..(f + 1) * frame_len].iter().copied()
        })
        .collect()
}

/// The decoded rollout of `steps` steps from `(q, p)`, flat `[batch × (steps + 1) × 3·S·S]`.
fn decode(model: &Hgn, q: Tensor<4>, p: Tensor<4>, dt: f64, steps: usize) -> Vec<f32> {
    let trajectory = rollout(&model.hamiltonian, model.integrator, q, p, dt, steps);
    model
        .decode_all(&trajectory.q)
        .inner()
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("float frames")
}

/// Adam (β = 0.9, 0.999) on `(q, p)` against the summed per-sequence pixel MSE of the decoded
/// rollout; each sequence's state moves by its own error's gradient only.
fn adam(
    model: &Hgn,
    q: Tensor<4>,
    p: Tensor<4>,
    targets: &Tensor<5>,
    dt: f64,
    steps: usize,
    opts: RefineOptions,
) -> (Tensor<4>, Tensor<4>) {
    let (beta1, beta2, eps): (f64, f64, f64) = (0.9, 0.999, 1e-8);
    let mut state = [q, p];
    let mut m = state.clone().map(|x| x.zeros_like());
    let mut v = m.clone();
    let b = targets.dims()[0] as f64;
    for it in 1..=opts.iterations {
        let [q, p] = state.clone().map(|x| x.autodiff().require_grad());
        let trajectory = rollout(
            &model.hamiltonian,
            model.integrator,
            q.clone(),
            p.clone(),
            dt,
            steps,
        );
        let frames = model.decode_all(&trajectory.q);
        let loss = (frames - targets.clone()).square().mean().mul_scalar(b);
        let grads = loss.backward();
        let g = [&q, &p].map(|x| x.grad(&grads).expect("the state requires its gradient"));
        let (c1, c2) = (1.0 - beta1.powi(it as i32), 1.0 - beta2.powi(it as i32));
        for (j, g) in g.into_iter().enumerate() {
            m[j] = m[j].clone().mul_scalar(beta1) + g.clone().mul_scalar(1.0 - beta1);
            v[j] = v[j].clone().mul_scalar(beta2) + g.square().mul_scalar(1.0 - beta2);
            let step =
                m[j].clone().div_scalar(c1) / v[j].clone().div_scalar(c2).sqrt().add_scalar(eps);
            state[j] = state[j].clone() - step.mul_scalar(opts.learning_rate);
        }
    }
    let [q, p] = state;
    (q, p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HgnConfig;
    use burn::tensor::Distribution;

    /// Frames rendered by the model itself from a known state: Adam, started away from it,
    /// brings the error down by far more than a factor of ten.
    #[test]
    fn adam_refits_a_state_the_model_can_render() {
        let device = Device::flex().autodiff();
        let model = HgnConfig::tiny().init(&device);
        let shape = [2, 4, 4, 4];
        let normal = Distribution::Normal(0.0, 1.0);
        let (q, p) = (
            Tensor::<4>::random(shape, normal, &device).inner(),
            Tensor::<4>::random(shape, normal, &device).inner(),
        );
        let (dt, steps) = (-0.125, 3);
        let render = |q: Tensor<4>, p: Tensor<4>| {
            let trajectory = rollout(&model.hamiltonian, model.integrator, q, p, dt, steps);
            model.decode_all(&trajectory.q).inner()
        };
        let targets = render(q.clone(), p.clone());
        let error = |q: Tensor<4>, p: Tensor<4>| {
            (render(q, p) - targets.clone())
                .square()
                .mean()
                .into_scalar::<f32>() as f64
        };
        let start = (
            q.clone()
                + Tensor::random(shape, normal, &device)
                    .inner()
                    .mul_scalar(0.5),
            p.clone()
                + Tensor::random(shape, normal, &device)
                    .inner()
                    .mul_scalar(0.5),
        );
        let before = error(start.0.clone(), start.1.clone());
        let opts = RefineOptions {
            iterations: 150,
            learning_rate: 0.02,
        };
        let (q1, p1) = adam(&model, start.0, start.1, &targets, dt, steps, opts);
        let after = error(q1, p1);
        assert!(before > 1e-6, "the start is off: {before}");
        assert!(after < 0.02 * before, "{before} → {after}");
    }
}
