//! The Hamiltonian Generative Network: encoder → f_ψ → (q, p) → H_γ + integrator → decoder.
//!
//! Which frames of a window the encoder sees and which are targets is the run's protocol
//! (reference D3, [`crate::protocol`]); the model itself takes the encoder's frames, a step `dt`
//! (negative to run backward) and a number of steps.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::hamiltonian::{HamiltonianNet, HamiltonianNetConfig, LatentHamiltonian, softplus};
use super::integrator::{IntegratorKind, Rollout, gradient_evaluations, rollout};
use super::networks::{
    Architecture, BroadcastDecoder, BroadcastDecoderConfig, Decoder, DecoderConfig, Encoder,
    EncoderConfig, EncoderInput, ResidualDecoder, Transform, TransformConfig,
};

/// Architecture and dynamics of an HGN. Defaults are DeepMind's `hgn_paper_config` (D1).
#[derive(Config, Debug, PartialEq)]
pub struct HgnConfig {
    /// Image height and width (a multiple of 8, at least 32).
    #[config(default = 32)]
    pub image_size: usize,
    /// Frames the encoder sees (`K`).
    #[config(default = 5)]
    pub num_inference_frames: usize,
    /// Integration steps after the inferred state; targets are `rollout_steps + 1` frames.
    #[config(default = 29)]
    pub rollout_steps: usize,
    /// Hidden channels of encoder, transform and decoder.
    #[config(default = 64)]
    pub hidden: usize,
    /// Hidden channels of the encoder when they differ from `hidden` (`None`: `hidden`).
    #[config(default = "None")]
    pub encoder_hidden: Option<usize>,
    /// How the encoder takes the inference frames; `None` (configs written before the choice
    /// existed) is [`EncoderInput::Stacked`], DeepMind's encoder.
    #[config(default = "None")]
    pub encoder_input: Option<EncoderInput>,
    /// Channels of `q` and of `p` each (DeepMind: 16, so `z` has 32).
    #[config(default = 16)]
    pub latent_channels: usize,
    /// Channel width of the Hamiltonian's energy nets.
    #[config(default = 64)]
    pub hamiltonian_width: usize,
    /// `H = K(p) + U(q)` (true) or one net on `concat(q, p)`.
    #[config(default = true)]
    pub separable: bool,
    /// Use the latent transform f_ψ; false is the paper's "no f_ψ" ablation.
    #[config(default = true)]
    pub latent_transform: bool,
    /// Sample `z` from q_φ and pay a KL; false is the paper's "deterministic" ablation.
    #[config(default = true)]
    pub variational: bool,
    /// Integrator of the latent dynamics.
    #[config(default = "IntegratorKind::Leapfrog")]
    pub integrator: IntegratorKind,
    /// Time step of the latent dynamics (DeepMind and CampusAI: 0.125).
    #[config(default = 0.125)]
    pub dt: f64,
    /// Network layout: DeepMind's `paper` or `campusai`.
    #[config(default = "Architecture::Paper")]
    pub architecture: Architecture,
    /// Channels of `z` when they differ from `2 × latent_channels` (CampusAI: 48).
    #[config(default = "None")]
    pub z_channels: Option<usize>,
    /// `Some(m)`: fixed quadratic kinetic energy `K(p) = |p|²/(2m)` instead of a learned
    /// `K(p)` net (separable `H` only).
    #[config(default = "None")]
    pub kinetic_mass: Option<f64>,
    /// `Some(d)`: `q` and `p` are `d`-vectors (held as `[batch, d, 1, 1]`) instead of
    /// `latent_channels` maps of `S/8 × S/8`. The encoder ends in a linear layer, f_ψ and the
    /// energies are MLPs, and the decoder is a spatial broadcast decoder of width `2 × hidden`
    /// (`paper` layout only). The quick start's [`HgnConfig::vector`] is a 2-vector
    /// (measurements in `docs/experiments.md`).
    #[config(default = "None")]
    pub latent_dim: Option<usize>,
}

impl HgnConfig {
    /// DeepMind's `hgn_paper_config` architecture (≈ 645 k parameters with 31 input frames).
    pub fn paper() -> Self {
        Self::new()
    }

    /// A small model for CPUs, tests and `hgn table1 --scale tiny`: the same structure with 16
    /// channels and 4 + 4 latent channels, 10-frame rollouts (5 inference frames, 9 steps), the
    /// paper's "deterministic" variant, and a fixed quadratic kinetic energy `K(p) = |p|²/2` in
    /// place of the learned `K(p)` net (a freshly initialised `K` net gives nearly zero velocity,
    /// so predictions start out static; `docs/experiments.md` has the measurement).
    pub fn tiny() -> Self {
        Self::new()
            .with_hidden(16)
            .with_latent_channels(4)
            .with_hamiltonian_width(16)
            .with_rollout_steps(9)
            .with_variational(false)
            .with_kinetic_mass(Some(1.0))
    }

    /// The quick start's model: [`HgnConfig::tiny`] with `q` and `p` as 2-vectors
    /// ([`HgnConfig::latent_dim`]), for systems with one degree of freedom (see
    /// [`crate::train::RunConfig::default_preset`]), 24 hidden channels (16 in `tiny`; the
    /// Hamiltonian's width stays 16), rolled out 29 steps: the 30 frames that Table 1 scores
    /// under `forecast`.
    pub fn vector() -> Self {
        Self::tiny()
            .with_hidden(24)
            .with_latent_dim(Some(2))
            .with_rollout_steps(29)
    }

    /// The CampusAI/ReScience layout (reference §4.3): stride-1 encoder to a 48×32×32 `z`,
    /// stride-2 f_ψ to 4×4, a non-separable H on `concat(q, p)`, residual decoder; ≈ 593 k
    /// parameters with 5 inference frames. Without CampusAI's ReLU on f_ψ's output and softplus
    /// on H's output (§4.4, §5.5).
    pub fn campusai() -> Self {
        Self::new()
            .with_architecture(Architecture::CampusAi)
            .with_z_channels(Some(48))
            .with_separable(false)
    }

    /// Channels and spatial size of `z` (and of the posterior noise).
    pub fn z_shape(&self) -> (usize, usize) {
        if let Some(d) = self.latent_dim {
            return (self.z_channels.unwrap_or(2 * d), 1);
        }
        let channels = self.z_channels.unwrap_or(2 * self.latent_channels);
        match self.architecture {
            Architecture::Paper => (channels, self.latent_size()),
            Architecture::CampusAi => (channels, self.image_size),
        }
    }

    /// Frames of one training window.
    pub fn window_len(&self) -> usize {
        self.num_inference_frames + self.rollout_steps
    }

    /// Spatial size of the encoder's last map and of the decoder's first.
    pub fn latent_size(&self) -> usize {
        self.image_size / 8
    }

    /// Channels and spatial size of `q` (and of `p`).
    pub fn state_shape(&self) -> (usize, usize) {
        match self.latent_dim {
            Some(d) => (d, 1),
            None => (self.latent_channels, self.latent_size()),
        }
    }

    /// Checks the settings; messages name the field.
    pub fn validate(&self) -> anyhow::Result<()> {
        // Three stride-2 encoder blocks, then the Hamiltonian's two stride-2 layers need a 4×4 map.
        anyhow::ensure!(
            self.image_size >= 32 && self.image_size.is_multiple_of(8),
            "model.image_size must be a multiple of 8 and at least 32 (got {})",
            self.image_size
        );
        anyhow::ensure!(
            self.num_inference_frames >= 1,
            "model.num_inference_frames must be at least 1"
        );
        anyhow::ensure!(
            self.hidden >= 2 && self.hamiltonian_width >= 2,
            "model widths must be at least 2"
        );
        if let Some(h) = self.encoder_hidden {
            anyhow::ensure!(h >= 2, "model.encoder_hidden must be at least 2 (got {h})");
        }
        anyhow::ensure!(
            self.latent_channels >= 1,
            "model.latent_channels must be at least 1"
        );
        anyhow::ensure!(
            self.dt.is_finite() && self.dt != 0.0,
            "model.dt must be a non-zero number"
        );
        if let Some(d) = self.latent_dim {
            anyhow::ensure!(
                d >= 1 && self.architecture == Architecture::Paper,
                "model.latent_dim needs the paper layout and at least 1 dimension"
            );
        }
        if let Some(input) = self.encoder_input.filter(|e| e.per_frame()) {
            anyhow::ensure!(
                self.architecture == Architecture::Paper,
                "model.encoder_input {} needs the paper layout",
                input.name()
            );
        }
        if let Some(m) = self.kinetic_mass {
            anyhow::ensure!(
                self.separable && m.is_finite() && m > 0.0,
                "model.kinetic_mass needs a separable H and a positive mass (got {m})"
            );
        }
        Ok(())
    }

    /// Builds the model with freshly initialised weights.
    pub fn init(&self, device: &Device) -> Hgn {
        let (z_channels, z_size) = self.z_shape();
        let size = self.latent_size();
        let (state_channels, state_size) = self.state_shape();
        let vector = self.latent_dim.is_some();
        let campusai = self.architecture == Architecture::CampusAi;
        // Built in data-flow order, which is also the order of the device's random draws.
        let encoder = EncoderConfig::new(
            3 * self.num_inference_frames,
            self.image_size,
            self.encoder_hidden.unwrap_or(self.hidden),
            z_channels,
        )
        .with_architecture(self.architecture)
        .with_vector(vector)
        .with_per_frame(self.encoder_input.is_some_and(EncoderInput::per_frame))
        .with_coordinates(self.encoder_input == Some(EncoderInput::PerFrameCoords))
        .init(device);
        let transform = self.latent_transform.then(|| {
            if campusai {
                TransformConfig::campusai(
                    z_channels,
                    z_size,
                    self.hidden,
                    2 * self.latent_channels,
                    device,
                )
            } else {
                TransformConfig::new(z_channels, z_size, self.hidden).init(device)
            }
        });
        Hgn {
            encoder,
            transform,
            hamiltonian: HamiltonianNetConfig::new(state_channels, state_size)
                .with_separable(self.separable)
                .with_kinetic_mass(self.kinetic_mass)
                .with_width(self.hamiltonian_width)
                .with_architecture(self.architecture)
                .init(device),
            decoder: (!campusai && !vector)
                .then(|| DecoderConfig::new(state_channels, size, self.hidden).init(device)),
            broadcast_decoder: vector.then(|| {
                BroadcastDecoderConfig::new(state_channels, self.image_size, 2 * self.hidden)
                    .init(device)
            }),
            residual_decoder: campusai
                .then(|| ResidualDecoder::new(self.latent_channels, size, self.hidden, device)),
            // softplus(log(e − 1)) = 1: GECO's λ starts at 1.
            geco_lambda: Param::from_tensor(Tensor::from_floats(
                [(std::f64::consts::E - 1.0).ln()],
                device,
            )),
            integrator: self.integrator,
            variational: self.variational,
        }
    }
}

/// A Hamiltonian Generative Network.
#[derive(Module, Debug)]
pub struct Hgn {
    /// q_φ(z | x₀…x_{K−1}).
    pub encoder: Encoder,
    /// f_ψ; absent in the "no f_ψ" ablation.
    pub transform: Option<Transform>,
    /// H_γ(q, p).
    pub hamiltonian: HamiltonianNet,
    /// p_θ(x | q), DeepMind's plain decoder (`paper` layout).
    pub decoder: Option<Decoder>,
    /// p_θ(x | q), CampusAI's residual decoder (`campusai` layout).
    pub residual_decoder: Option<ResidualDecoder>,
    /// p_θ(x | q), a spatial broadcast decoder (vector latent).
    pub broadcast_decoder: Option<BroadcastDecoder>,
    /// GECO's Lagrange multiplier before the softplus (λ = softplus of it), trained by the same
    /// optimiser by gradient ascent on the constraint.
    pub geco_lambda: Param<Tensor<1>>,
    /// Integrator of the latent dynamics.
    #[module(skip)]
    pub integrator: IntegratorKind,
    /// Whether `z` is sampled.
    #[module(skip)]
    pub variational: bool,
}

/// p_θ(x | q) of an [`Hgn`], whichever layout it has.
enum DecoderLayout<'a> {
    Plain(&'a Decoder),
    Residual(&'a ResidualDecoder),
    Broadcast(&'a BroadcastDecoder),
}

impl DecoderLayout<'_> {
    /// Height and width of the images decoded from states `s` wide: each upsampling block
    /// doubles them; the broadcast decoder renders its configured size.
    fn image_side(&self, s: usize) -> usize {
        match self {
            DecoderLayout::Plain(plain) => s << plain.blocks.len(),
            DecoderLayout::Residual(residual) => s << residual.blocks.len(),
            DecoderLayout::Broadcast(broadcast) => broadcast.image_size,
        }
    }
}

/// The most output pixels (images × height × width) one call of an HGN's decoder covers on a
/// GPU ([`Hgn::decode_all`]). Burn's GPU backends launch a convolution's matrix product with a
/// workgroup per 16 or more output pixels in one grid dimension, and Vulkan allows 65,535 in
/// each: a call over 1,048,560 pixels (1,023 images of 32 × 32) or more does not launch. A
/// `paper` batch of 16 (496 images) stays one call.
pub const MAX_DECODED_PIXELS: usize = 1 << 19;

/// Floating-point operations of one forward pass ([`Hgn::forward_flops`]), by network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForwardFlops {
    /// The encoder q_φ.
    pub encoder: f64,
    /// f_ψ.
    pub transform: f64,
    /// Every `∂H/∂q` and `∂H/∂p` of the rollout.
    pub dynamics: f64,
    /// The decoder on the decoded states.
    pub decoder: f64,
}

impl ForwardFlops {
    /// All of them.
    pub fn total(&self) -> f64 {
        self.encoder + self.transform + self.dynamics + self.decoder
    }

    /// A training step's: the forward pass and a backward pass counted at twice the forward
    /// (a convolution's or matrix product's input and weight gradients each cost as much as it).
    pub fn training_step(&self) -> f64 {
        3.0 * self.total()
    }
}

/// What [`Hgn::forward`] produces.
#[derive(Debug, Clone)]
pub struct HgnOutput {
    /// Decoded frames along the rollout, `[batch, steps + 1, 3, S, S]`.
    pub reconstruction: Tensor<5>,
    /// Posterior mean of `z`, `[batch, 2L, s, s]`.
    pub mean: Tensor<4>,
    /// Posterior log-scale of `z`, same shape.
    pub log_scale: Tensor<4>,
    /// The latent trajectory.
    pub rollout: Rollout,
}

impl Hgn {
    /// The initial state `(q, p)` from inference frames; `noise` (standard normal, shaped like
    /// `z`) draws `z = mean + exp(log_scale)·noise`, `None` takes the mean.
    ///
    /// # Shapes
    /// - `frames`: `[batch, K, 3, S, S]`
    /// - returns: (`q`, `p`, mean, log-scale), `q` and `p` `[batch, L, s, s]`
    pub fn infer(
        &self,
        frames: Tensor<5>,
        noise: Option<Tensor<4>>,
    ) -> (Tensor<4>, Tensor<4>, Tensor<4>, Tensor<4>) {
        let [b, k, c, h, w] = frames.dims();
        let (mean, log_scale) = self.encoder.forward(frames.reshape([b, k * c, h, w]));
        let z = match noise {
            Some(eps) if self.variational => mean.clone() + log_scale.clone().exp() * eps,
            _ => mean.clone(),
        };
        let (q, p) = self.initial_state(z);
        (q, p, mean, log_scale)
    }

    /// The initial state `(q, p) = split(f_ψ(z))` (or `split(z)` without f_ψ).
    ///
    /// # Shapes
    /// - `z`: `[batch, 2L, s, s]` (paper layout; CampusAI: `[batch, 48, S, S]`)
    /// - returns: `q`, `p`, each `[batch, L, s, s]`
    pub fn initial_state(&self, z: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let s = match &self.transform {
            Some(t) => t.forward(z),
            None => z,
        };
        let half = s.dims()[1] / 2;
        let mut parts = s.split(half, 1);
        let p = parts.pop().expect("two halves");
        let q = parts.pop().expect("two halves");
        (q, p)
    }

    /// The one decoder this HGN has (built by [`HgnConfig::init`] from its layout).
    fn decoder_layout(&self) -> DecoderLayout<'_> {
        match (
            &self.decoder,
            &self.residual_decoder,
            &self.broadcast_decoder,
        ) {
            (Some(plain), _, _) => DecoderLayout::Plain(plain),
            (_, Some(residual), _) => DecoderLayout::Residual(residual),
            (_, _, Some(broadcast)) => DecoderLayout::Broadcast(broadcast),
            _ => unreachable!("an HGN has a decoder"),
        }
    }

    /// Decodes every state of a rollout: on the CPU backend in one decoder call, on a GPU in
    /// calls of at most [`MAX_DECODED_PIXELS`] output pixels each
    /// ([`Self::decode_all_in_calls`]).
    ///
    /// # Shapes
    /// - returns: `[batch, T, 3, S, S]` for `T` states of `[batch, L, s, s]`
    pub fn decode_all(&self, qs: &[Tensor<4>]) -> Tensor<5> {
        let max_pixels = if qs[0].device() == Device::flex() {
            usize::MAX
        } else {
            MAX_DECODED_PIXELS
        };
        self.decode_all_in_calls(qs, max_pixels)
    }

    /// [`Self::decode_all`] with decoder calls of at most `max_pixels` output pixels (images
    /// × S², at least one image a call). Every image is decoded on its own, so the calls change
    /// which images share a matrix product, not what an image decodes to.
    ///
    /// # Shapes
    /// - returns: `[batch, T, 3, S, S]` for `T` states of `[batch, L, s, s]`
    pub fn decode_all_in_calls(&self, qs: &[Tensor<4>], max_pixels: usize) -> Tensor<5> {
        let t = qs.len();
        let [b, _, s, _] = qs[0].dims();
        let layout = self.decoder_layout();
        let side = layout.image_side(s);
        let per_call = (max_pixels / (side * side)).max(1);
        let stacked = Tensor::cat(qs.to_vec(), 0);
        let decode = |states: Tensor<4>| match layout {
            DecoderLayout::Plain(plain) => plain.forward(states),
            DecoderLayout::Residual(residual) => residual.forward(states),
            DecoderLayout::Broadcast(broadcast) => broadcast.forward(states),
        };
        let frames = if t * b <= per_call {
            decode(stacked)
        } else {
            Tensor::cat(
                stacked.split(per_call, 0).into_iter().map(decode).collect(),
                0,
            )
        };
        let [_, c, h, w] = frames.dims();
        debug_assert_eq!([h, w], [side, side], "DecoderLayout::image_side");
        frames.reshape([t, b, c, h, w]).swap_dims(0, 1)
    }

    /// Infers the state from `frames`, rolls it out `steps` steps of `dt` and decodes every state.
    pub fn forward(
        &self,
        frames: Tensor<5>,
        noise: Option<Tensor<4>>,
        dt: f64,
        steps: usize,
    ) -> HgnOutput {
        let all: Vec<usize> = (0..=steps).collect();
        self.forward_decoding(frames, noise, dt, steps, &all)
    }

    /// As [`Self::forward`], but decodes only the rollout states at `decode` (indices into
    /// `0..=steps`, in order); the reconstruction then has `decode.len()` frames.
    pub fn forward_decoding(
        &self,
        frames: Tensor<5>,
        noise: Option<Tensor<4>>,
        dt: f64,
        steps: usize,
        decode: &[usize],
    ) -> HgnOutput {
        let (q, p, mean, log_scale) = self.infer(frames, noise);
        let trajectory = rollout(&self.hamiltonian, self.integrator, q, p, dt, steps);
        let chosen: Vec<Tensor<4>> = decode.iter().map(|&i| trajectory.q[i].clone()).collect();
        let reconstruction = self.decode_all(&chosen);
        HgnOutput {
            reconstruction,
            mean,
            log_scale,
            rollout: trajectory,
        }
    }

    /// Floating-point operations of [`Self::forward_decoding`] on `batch` windows of
    /// `image_size`² frames rolled out `steps` steps with `decoded` states decoded, network by
    /// network: convolutions and matrix products at 2 per multiply–add (each network's `flops`),
    /// the Hamiltonian's gradients as often as the integrator evaluates them
    /// ([`gradient_evaluations`]); element-wise operations are not counted.
    pub fn forward_flops(
        &self,
        batch: usize,
        image_size: usize,
        steps: usize,
        decoded: usize,
    ) -> ForwardFlops {
        let (encoder, size) = self.encoder.flops(batch, image_size);
        let (transform, size) = match &self.transform {
            Some(t) => t.flops(batch, size),
            None => (0.0, size),
        };
        let (dq_calls, dp_calls) =
            gradient_evaluations(self.integrator, self.hamiltonian.is_separable(), steps);
        let (dq, dp) = self.hamiltonian.gradient_flops(batch);
        let images = batch * decoded;
        let decoder = match self.decoder_layout() {
            DecoderLayout::Plain(plain) => plain.flops(images, size),
            DecoderLayout::Residual(residual) => residual.flops(images, size),
            DecoderLayout::Broadcast(broadcast) => broadcast.flops(images),
        };
        ForwardFlops {
            encoder,
            transform,
            dynamics: dq_calls as f64 * dq + dp_calls as f64 * dp,
            decoder,
        }
    }

    /// GECO's current λ = softplus(λ_var).
    pub fn geco_multiplier(&self) -> Tensor<1> {
        let v = self.geco_lambda.val();
        softplus(v.reshape([1, 1, 1, 1])).reshape([1])
    }
}
