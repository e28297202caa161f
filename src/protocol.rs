//! The window protocols (reference D3): which frames the encoder sees, where the state is
//! inferred, which way time runs, and which frames are targets. Training, its test evaluation,
//! `hgn bench`, `hgn eval`, `hgn rollout` and the physics oracle all take their frames from here.
//!
//! For a window of `W` recorded frames and `K` inference frames:
//!
//! - **forward** (`+dt`): the encoder sees frames `0..K`, the state is inferred at frame `K − 1`,
//!   and rollout state `i` is compared with frame `K − 1 + i`;
//! - **backward** (`−dt`): the encoder sees the last `K` frames `W − K..W` (in recorded order), the
//!   state is inferred at frame `W − 1`, and rollout state `i` is compared with frame `W − 1 − i`.
//!
//! [`Protocol::Forecast`] trains forward on windows of `K + rollout_steps` frames (and backward
//! too with `bidirectional`); [`Protocol::Reconstruct`] is DeepMind's `hgn_paper_config`: the
//! encoder sees the whole window (`K = W`), the state is inferred at its last frame and rolled
//! backward `W − 1` steps, and every frame of the window is a target.

use anyhow::{Result, ensure};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// How a window of frames is split into the encoder's input and the targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// `K` frames in, state at frame `K − 1`, `rollout_steps` steps forward (the authors' e-mail:
    /// 5 frames in, 29 steps); the protocol of extrapolation, VPT and rollout videos.
    #[default]
    Forecast,
    /// All `W = K` frames in, state at frame `W − 1`, `W − 1` steps backward, all `W` frames scored
    /// (DeepMind's `hgn_paper_config`, `W = 31`); the protocol of the paper's Table 1.
    Reconstruct,
}

impl Protocol {
    /// Both protocols.
    pub const ALL: [Protocol; 2] = [Protocol::Forecast, Protocol::Reconstruct];

    /// The name in `config.json`, reports and flags.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Forecast => "forecast",
            Protocol::Reconstruct => "reconstruct",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Protocol {
    type Err = anyhow::Error;

    /// A protocol by name (any case).
    fn from_str(name: &str) -> Result<Self> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| {
                anyhow::anyhow!("unknown protocol '{name}' (known: forecast, reconstruct)")
            })
    }
}

/// The direction of time of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `+dt` from the state at frame `K − 1`.
    Forward,
    /// `−dt` from the state at the window's last frame.
    Backward,
}

impl Direction {
    /// `dt` with this direction's sign.
    pub fn signed(self, dt: f64) -> f64 {
        match self {
            Direction::Forward => dt,
            Direction::Backward => -dt,
        }
    }

    /// The recorded frame compared with rollout state `i`, in a window of `w` frames with `k`
    /// inference frames.
    pub fn target_frame(self, w: usize, k: usize, i: usize) -> usize {
        match self {
            Direction::Forward => k - 1 + i,
            Direction::Backward => w - 1 - i,
        }
    }

    /// The first of the `k` frames the encoder sees, in a window of `w` frames.
    pub fn first_inference_frame(self, w: usize, k: usize) -> usize {
        match self {
            Direction::Forward => 0,
            Direction::Backward => w - k,
        }
    }
}

/// A model's training window under its protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The protocol.
    pub protocol: Protocol,
    /// Frames the encoder sees (`K`).
    pub inference_frames: usize,
    /// Integration steps of a training rollout.
    pub rollout_steps: usize,
}

impl Window {
    /// Checks that the numbers fit the protocol: `K ≥ 1`, and under `reconstruct` `K ≥ 2` and
    /// `rollout_steps = K − 1`.
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.inference_frames >= 1,
            "model.num_inference_frames must be at least 1"
        );
        if self.protocol == Protocol::Reconstruct {
            ensure!(
                self.inference_frames >= 2 && self.rollout_steps + 1 == self.inference_frames,
                "the reconstruct protocol infers from the whole window: model.rollout_steps must be \
                 model.num_inference_frames − 1 (got {} and {})",
                self.rollout_steps,
                self.inference_frames
            );
        }
        Ok(())
    }

    /// Frames of one training window: `K + rollout_steps` (forecast) or `K` (reconstruct).
    pub fn len(&self) -> usize {
        match self.protocol {
            Protocol::Forecast => self.inference_frames + self.rollout_steps,
            Protocol::Reconstruct => self.inference_frames,
        }
    }

    /// Always false: a window holds at least one frame.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The direction of a training rollout; `backward_draw` is the bidirectional coin of
    /// forecast training (reconstruct always runs backward).
    pub fn direction(&self, backward_draw: bool) -> Direction {
        match self.protocol {
            Protocol::Reconstruct => Direction::Backward,
            Protocol::Forecast if backward_draw => Direction::Backward,
            Protocol::Forecast => Direction::Forward,
        }
    }

    /// The `K` frames the encoder sees, in recorded order, from `frames` (`[batch, W', 3, S, S]`,
    /// any `W' ≥ K`).
    pub fn inference(&self, frames: Tensor<5>, direction: Direction) -> Tensor<5> {
        let [b, w, c, h, wd] = frames.dims();
        let k = self.inference_frames;
        let first = direction.first_inference_frame(w, k);
        frames.slice([0..b, first..first + k, 0..c, 0..h, 0..wd])
    }

    /// The encoder's input and the targets of the rollout states `decode` (`[batch, |decode|, 3,
    /// S, S]`), from `frames` (`[batch, W', 3, S, S]`).
    pub fn parts(
        &self,
        frames: Tensor<5>,
        decode: &[usize],
        direction: Direction,
    ) -> (Tensor<5>, Tensor<5>) {
        let [b, w, c, h, wd] = frames.dims();
        let k = self.inference_frames;
        let targets = Tensor::cat(
            decode
                .iter()
                .map(|&i| {
                    let t = direction.target_frame(w, k, i);
                    frames.clone().slice([0..b, t..t + 1, 0..c, 0..h, 0..wd])
                })
                .collect(),
            1,
        );
        (self.inference(frames, direction), targets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    /// Frames whose every pixel holds the frame's index, `[batch 2, W, 3, 2, 2]`.
    fn indexed_frames(w: usize) -> Tensor<5> {
        let values: Vec<f32> = (0..2)
            .flat_map(|_| (0..w).flat_map(|t| std::iter::repeat_n(t as f32, 12)))
            .collect();
        Tensor::from_data(TensorData::new(values, [2, w, 3, 2, 2]), &Device::flex())
    }

    fn frame_ids(t: Tensor<5>) -> Vec<usize> {
        let [_, n, _, _, _] = t.dims();
        let v = t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        (0..n).map(|i| v[i * 12] as usize).collect()
    }

    #[test]
    fn forecast_picks_the_frames_of_each_direction() {
        // W = 8 frames, K = 3 inference frames, rollout states 0, 2 and 5 decoded.
        let window = Window {
            protocol: Protocol::Forecast,
            inference_frames: 3,
            rollout_steps: 5,
        };
        assert_eq!(window.len(), 8);
        assert_eq!(window.direction(false), Direction::Forward);
        assert_eq!(window.direction(true), Direction::Backward);
        let (inference, targets) = window.parts(indexed_frames(8), &[0, 2, 5], Direction::Forward);
        assert_eq!(frame_ids(inference), [0, 1, 2]);
        assert_eq!(frame_ids(targets), [2, 4, 7]);
        let (inference, targets) = window.parts(indexed_frames(8), &[0, 2, 5], Direction::Backward);
        assert_eq!(
            frame_ids(inference),
            [5, 6, 7],
            "recorded order, ending at the last"
        );
        assert_eq!(
            frame_ids(targets),
            [7, 5, 2],
            "backward from the last frame"
        );
    }

    #[test]
    fn reconstruct_feeds_every_frame_infers_at_the_last_and_scores_all_backward() {
        let window = Window {
            protocol: Protocol::Reconstruct,
            inference_frames: 31,
            rollout_steps: 30,
        };
        window.validate().unwrap();
        assert_eq!(window.len(), 31);
        for coin in [false, true] {
            assert_eq!(window.direction(coin), Direction::Backward);
        }
        assert_eq!(Direction::Backward.signed(0.125), -0.125);
        let all: Vec<usize> = (0..=30).collect();
        let (inference, targets) = window.parts(indexed_frames(31), &all, window.direction(false));
        assert_eq!(frame_ids(inference), (0..31).collect::<Vec<_>>());
        assert_eq!(frame_ids(targets), (0..31).rev().collect::<Vec<_>>());
        let bad = Window {
            rollout_steps: 29,
            ..window
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("rollout_steps")
        );
        assert_eq!(
            "Reconstruct".parse::<Protocol>().unwrap(),
            Protocol::Reconstruct
        );
        assert!("autoencode".parse::<Protocol>().is_err());
        let json = serde_json::to_string(&Protocol::Reconstruct).unwrap();
        assert_eq!(json, "\"reconstruct\"");
    }
}
