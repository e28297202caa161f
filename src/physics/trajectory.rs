//! Sampling one trajectory of a catalog system: its parameters, its initial state at the
//! sampled radius, the exact simulation and the rendered, noisy frames (reference D4, §9).
//!
//! Trajectories whose bodies leave the canvas (or whose integration fails, e.g. a collision) are
//! re-sampled from the same RNG stream, as the suite does.

use rand::Rng;

use super::catalog::{Dynamics, SystemSpec};
use super::integrate::{IntegrationError, Tolerance, integrate_frames};
use super::render::{Disc, hue_to_rgb, render_frame};
use super::sampling::{annulus, distinct_indices, standard_normal, uniform, unit_vector};
use super::systems::{DoublePendulum, HamiltonianSystem, MassSpring, NBody, Pendulum};

/// Settings of one generated trajectory that do not come from the [`SystemSpec`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RenderSettings {
    /// Number of frames.
    pub seq_len: usize,
    /// Time between frames.
    pub dt: f64,
    /// Observation noise σ.
    pub noise_std: f64,
    /// Image height and width in pixels.
    pub image_size: usize,
    /// Integrator tolerance.
    pub tolerance: Tolerance,
}

/// One simulated and rendered trajectory.
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory {
    /// The row of `params.npy`: physical parameters, then each body's hue, then the canvas offset
    /// (see [`SystemSpec::param_names`]).
    pub params: Vec<f64>,
    /// Clean states `[seq_len × 2·dof]`.
    pub states: Vec<f64>,
    /// The noisy states that were rendered, same shape.
    pub observed_states: Vec<f64>,
    /// RGB frames `[seq_len × size × size × 3]`.
    pub frames: Vec<u8>,
}

/// Why no trajectory could be sampled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "{system}: no trajectory stayed on the canvas in {attempts} attempts (last problem: {last}); \
     try fewer frames or a smaller dt"
)]
pub struct SampleError {
    /// The system.
    pub system: &'static str,
    /// How many attempts were made.
    pub attempts: usize,
    /// The last reason for rejection.
    pub last: String,
}

/// Sampled attempts before giving up; a rejection rate that high means the settings are wrong.
const MAX_ATTEMPTS: usize = 200;
impl SystemSpec {
    /// Draws the physical parameters and returns the system and the parameter row.
    pub fn sample_system(&self, rng: &mut impl Rng) -> (Box<dyn HamiltonianSystem>, Vec<f64>) {
        let mut draw = |name: &str| {
            let p = self.param(name);
            uniform(rng, p.low, p.high)
        };
        let row = match self.dynamics {
            Dynamics::MassSpring => vec![draw("m"), draw("k")],
            Dynamics::Pendulum => vec![draw("m"), draw("g"), draw("l")],
            Dynamics::DoublePendulum => vec![draw("m"), draw("m"), draw("l"), draw("l"), draw("g")],
            Dynamics::TwoBody => vec![draw("m"), draw("m"), draw("g")],
            Dynamics::ThreeBody => {
                let (m, g) = (draw("m"), draw("g"));
                vec![m, m, m, g]
            }
        };
        (self.system_from_params(&row), row)
    }

    /// A `params.npy` row split into the physical parameters, the bodies' hues and the canvas
    /// offset (see [`Self::param_names`]); `None` when the row has the wrong length.
    pub fn split_params<'a>(&self, row: &'a [f64]) -> Option<(&'a [f64], &'a [f64], [f64; 2])> {
        let n = self.num_bodies();
        let physical = self.param_names().len() - n - 2;
        if row.len() != physical + n + 2 {
            return None;
        }
        Some((
            &row[..physical],
            &row[physical..physical + n],
            [row[physical + n], row[physical + n + 1]],
        ))
    }

    /// Rebuilds the system of a trajectory from its `params.npy` row (physical columns first).
    pub fn system_from_params(&self, p: &[f64]) -> Box<dyn HamiltonianSystem> {
        match self.dynamics {
            Dynamics::MassSpring => Box::new(MassSpring { m: p[0], k: p[1] }),
            Dynamics::Pendulum => Box::new(Pendulum {
                m: p[0],
                g: p[1],
                l: p[2],
            }),
            Dynamics::DoublePendulum => Box::new(DoublePendulum {
                m1: p[0],
                m2: p[1],
                l1: p[2],
                l2: p[3],
                g: p[4],
            }),
            Dynamics::TwoBody => Box::new(NBody {
                masses: vec![p[0], p[1]],
                g: p[2],
            }),
            Dynamics::ThreeBody => Box::new(NBody {
                masses: vec![p[0], p[1], p[2]],
                g: p[3],
            }),
        }
    }

    /// Draws an initial state `[q, p]` for a system with parameter row `params`.
    ///
    /// - mass-spring: `(q, p/√(km))` uniform on a circle of radius `r` (suite `sample_y`), so the
    ///   amplitude is exactly `r`;
    /// - pendulum: `(q, p)` on a circle of radius `r`; double pendulum: one such pair per bob;
    /// - n-body: bodies on a circle of radius `r` about their centre of mass (opposite each other,
    ///   or at 120° for three bodies), velocities of a circular orbit in a random sense of
    ///   rotation, each component scaled by `1 + orbit_noise·U(−1, 1)` (§9.2), then the
    ///   centre-of-mass momentum removed so the system does not drift off the canvas.
    pub fn sample_initial_state(&self, params: &[f64], rng: &mut impl Rng) -> Vec<f64> {
        let (r_min, r_max) = self.radius;
        match self.dynamics {
            Dynamics::MassSpring => {
                let [q, v] = annulus(rng, r_min, r_max, self.uniform_annulus);
                let (m, k) = (params[0], params[1]);
                vec![q, v * (k * m).sqrt()]
            }
            Dynamics::Pendulum => {
                let [q, p] = annulus(rng, r_min, r_max, self.uniform_annulus);
                vec![q, p]
            }
            Dynamics::DoublePendulum => {
                let [q1, p1] = annulus(rng, r_min, r_max, self.uniform_annulus);
                let [q2, p2] = annulus(rng, r_min, r_max, self.uniform_annulus);
                vec![q1, q2, p1, p2]
            }
            Dynamics::TwoBody | Dynamics::ThreeBody => {
                let n = self.num_bodies();
                let masses = &params[..n];
                let g = params[n];
                let r = if self.uniform_annulus {
                    uniform(rng, r_min * r_min, r_max * r_max).sqrt()
                } else {
                    uniform(rng, r_min, r_max)
                };
                let u = unit_vector(rng);
                let sense = if rng.random::<bool>() { 1.0 } else { -1.0 };
                let (positions, velocities) = circular_orbit(masses, g, r, u, sense);
                let mut y = vec![0.0; 4 * n];
                for i in 0..n {
                    for c in 0..2 {
                        let jitter = 1.0 + self.orbit_noise * uniform(rng, -1.0, 1.0);
                        y[2 * i + c] = positions[i][c];
                        y[2 * n + 2 * i + c] = masses[i] * velocities[i][c] * jitter;
                    }
                }
                // Remove the centre-of-mass momentum: p_i -= (m_i / M) P.
                let total_mass: f64 = masses.iter().sum();
                for c in 0..2 {
                    let total: f64 = (0..n).map(|i| y[2 * n + 2 * i + c]).sum();
                    for i in 0..n {
                        y[2 * n + 2 * i + c] -= masses[i] / total_mass * total;
                    }
                }
                y
            }
        }
    }

    /// Simulates and renders one trajectory; rejected samples are re-drawn from the same stream.
    pub fn sample_trajectory(
        &self,
        rng: &mut impl Rng,
        settings: &RenderSettings,
    ) -> Result<Trajectory, SampleError> {
        let mut last = String::new();
        for _ in 0..MAX_ATTEMPTS {
            let (system, mut params) = self.sample_system(rng);
            let y0 = self.sample_initial_state(&params, rng);
            let states = match self.simulate(system.as_ref(), &y0, settings) {
                Ok(states) => states,
                Err(err) => {
                    last = err.to_string();
                    continue;
                }
            };
            if let Some(problem) = self.leaves_canvas(system.as_ref(), &states) {
                last = problem;
                continue;
            }
            // Rendering choices: colours and canvas offset.
            let n = self.num_bodies();
            let hues: Vec<f64> = if self.num_colors == 0 {
                (0..n).map(|i| i as f64 / n as f64).collect()
            } else {
                distinct_indices(rng, self.num_colors.max(n), n)
                    .into_iter()
                    .map(|k| k as f64 / self.num_colors.max(n) as f64)
                    .collect()
            };
            let max_offset = self.max_canvas_offset();
            let offset = [
                uniform(rng, -max_offset, max_offset),
                uniform(rng, -max_offset, max_offset),
            ];
            let mut observed_states = states.clone();
            if settings.noise_std > 0.0 {
                for v in observed_states.iter_mut() {
                    *v += settings.noise_std * standard_normal(rng);
                }
            }
            let frames = self.render(
                system.as_ref(),
                &observed_states,
                &hues,
                offset,
                settings.image_size,
            );
            params.extend_from_slice(&hues);
            params.extend_from_slice(&offset);
            return Ok(Trajectory {
                params,
                states,
                observed_states,
                frames,
            });
        }
        Err(SampleError {
            system: self.name,
            attempts: MAX_ATTEMPTS,
            last,
        })
    }

    /// The clean trajectory: analytic where the system has a closed form and no friction,
    /// otherwise Dormand–Prince.
    pub fn simulate(
        &self,
        system: &dyn HamiltonianSystem,
        y0: &[f64],
        settings: &RenderSettings,
    ) -> Result<Vec<f64>, IntegrationError> {
        if self.friction == 0.0 && system.analytic(y0, 0.0).is_some() {
            let mut out = Vec::with_capacity(settings.seq_len * y0.len());
            for f in 0..settings.seq_len {
                out.extend(
                    system
                        .analytic(y0, f as f64 * settings.dt)
                        .expect("checked above"),
                );
            }
            return Ok(out);
        }
        integrate_frames(
            system,
            self.friction,
            y0,
            settings.dt,
            settings.seq_len,
            settings.tolerance,
        )
    }

    /// `Some(reason)` when a body's disc leaves the base canvas at some frame.
    fn leaves_canvas(&self, system: &dyn HamiltonianSystem, states: &[f64]) -> Option<String> {
        let dim = 2 * system.dof();
        let half = self.base_canvas().half_size;
        let radii: Vec<f64> = system
            .body_masses()
            .iter()
            .map(|m| (m / std::f64::consts::PI).sqrt())
            .collect();
        let mut positions = vec![[0.0; 2]; system.num_bodies()];
        for (frame, y) in states.chunks(dim).enumerate() {
            system.body_positions(&y[..system.dof()], &mut positions);
            for (body, (pos, r)) in positions.iter().zip(&radii).enumerate() {
                // A small tolerance: the pendulum at full length touches the edge exactly.
                if pos[0].abs() + r > half + 1e-9 || pos[1].abs() + r > half + 1e-9 {
                    return Some(format!(
                        "body {} left the canvas at frame {frame}",
                        body + 1
                    ));
                }
            }
        }
        None
    }

    /// Renders states `[T × 2·dof]` into `T` RGB frames `[T × size × size × 3]` with the bodies'
    /// `hues` and the canvas `offset` of a `params.npy` row (see [`Self::split_params`]).
    pub fn render(
        &self,
        system: &dyn HamiltonianSystem,
        states: &[f64],
        hues: &[f64],
        offset: [f64; 2],
        size: usize,
    ) -> Vec<u8> {
        let frame_bytes = size * size * 3;
        let canvas = self.canvas();
        let dim = 2 * system.dof();
        let masses = system.body_masses();
        let mut positions = vec![[0.0; 2]; system.num_bodies()];
        let mut frames = vec![0u8; states.len() / dim * frame_bytes];
        let observed = states;
        for (y, frame) in observed.chunks(dim).zip(frames.chunks_mut(frame_bytes)) {
            system.body_positions(&y[..system.dof()], &mut positions);
            let discs: Vec<Disc> = positions
                .iter()
                .zip(&masses)
                .zip(hues)
                .map(|((pos, m), hue)| Disc {
                    position: [pos[0] + offset[0], pos[1] + offset[1]],
                    radius: (m / std::f64::consts::PI).sqrt(),
                    color: hue_to_rgb(*hue),
                })
                .collect();
            render_frame(&discs, &canvas, size, frame);
        }
        frames
    }
}

/// Positions and velocities of `n` bodies (2 or 3) on a circular orbit of radius `r` about their
/// centre of mass at the origin; body 0 sits in direction `u`; `sense = ±1` sets the rotation.
///
/// Two bodies of masses m₁, m₂ at separation d = 2r circle their centre of mass with angular
/// speed ω = √(g(m₁+m₂)/d³). Three equal masses m at the corners of an equilateral triangle of
/// circumradius r need speed v = √(g·m/(√3·r)) (reference §9.2/§9.3).
fn circular_orbit(
    masses: &[f64],
    g: f64,
    r: f64,
    u: [f64; 2],
    sense: f64,
) -> (Vec<[f64; 2]>, Vec<[f64; 2]>) {
    let perp = |v: [f64; 2]| [-sense * v[1], sense * v[0]];
    match masses.len() {
        2 => {
            let total = masses[0] + masses[1];
            let d = 2.0 * r;
            let omega = (g * total / d.powi(3)).sqrt();
            let r1 = masses[1] / total * d;
            let r2 = masses[0] / total * d;
            let p1 = [r1 * u[0], r1 * u[1]];
            let p2 = [-r2 * u[0], -r2 * u[1]];
            let v1 = perp([omega * p1[0], omega * p1[1]]);
            let v2 = perp([omega * p2[0], omega * p2[1]]);
            (vec![p1, p2], vec![v1, v2])
        }
        3 => {
            let speed = (g * masses[0] / (3f64.sqrt() * r)).sqrt();
            let mut positions = Vec::with_capacity(3);
            let mut velocities = Vec::with_capacity(3);
            for i in 0..3 {
                let angle = 2.0 * std::f64::consts::PI * i as f64 / 3.0;
                let (s, c) = angle.sin_cos();
                let dir = [c * u[0] - s * u[1], s * u[0] + c * u[1]];
                positions.push([r * dir[0], r * dir[1]]);
                velocities.push(perp([speed * dir[0], speed * dir[1]]));
            }
            (positions, velocities)
        }
        n => unreachable!("circular orbits are defined for 2 or 3 bodies, not {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::physics::catalog::{SYSTEMS, find_system};
    use crate::physics::render::tests::centroid;
    use crate::physics::sampling::trajectory_rng;

    fn settings(seq_len: usize, dt: f64, noise_std: f64) -> RenderSettings {
        RenderSettings {
            seq_len,
            dt,
            noise_std,
            image_size: 32,
            tolerance: Tolerance::default(),
        }
    }

    /// A trajectory of `spec` at its own `dt` and noise, `frames` frames of `size`×`size`
    /// pixels, drawn from `trajectory_rng(seed, split, index)`.
    fn sample(
        spec: &SystemSpec,
        [seed, split, index]: [u64; 3],
        frames: usize,
        size: usize,
    ) -> Trajectory {
        let s = RenderSettings {
            image_size: size,
            ..settings(frames, spec.default_dt, spec.noise_std)
        };
        spec.sample_trajectory(&mut trajectory_rng(seed, split, index), &s)
            .unwrap()
    }

    fn relative_energy_drift(spec: &SystemSpec, seed: u64, frames: usize) -> f64 {
        let mut rng = trajectory_rng(seed, 0, 0);
        let (system, params) = spec.sample_system(&mut rng);
        let y0 = spec.sample_initial_state(&params, &mut rng);
        let states = spec
            .simulate(
                system.as_ref(),
                &y0,
                &settings(frames, spec.default_dt, 0.0),
            )
            .unwrap();
        let dim = y0.len();
        let h0 = system.hamiltonian(&y0);
        states
            .chunks(dim)
            .map(|y| (system.hamiltonian(y) - h0).abs() / h0.abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn conservative_systems_drift_below_1e9_over_1000_frames() {
        for spec in SYSTEMS.iter().filter(|s| s.friction == 0.0) {
            for seed in 0..3 {
                let drift = relative_energy_drift(spec, seed, 1000);
                assert!(
                    drift < 1e-9,
                    "{} (seed {seed}): relative drift {drift:e}",
                    spec.name
                );
            }
        }
    }

    #[test]
    fn friction_variants_lose_energy_monotonically() {
        for spec in SYSTEMS.iter().filter(|s| s.friction > 0.0) {
            let mut rng = trajectory_rng(11, 0, 0);
            let (system, params) = spec.sample_system(&mut rng);
            let y0 = spec.sample_initial_state(&params, &mut rng);
            let states = spec
                .simulate(system.as_ref(), &y0, &settings(400, spec.default_dt, 0.0))
                .unwrap();
            let energies: Vec<f64> = states
                .chunks(y0.len())
                .map(|y| system.hamiltonian(y))
                .collect();
            for w in energies.windows(2) {
                assert!(
                    w[1] < w[0],
                    "{}: energy rose from {} to {}",
                    spec.name,
                    w[0],
                    w[1]
                );
            }
            assert!(
                energies[399] < energies[0] - 1e-3,
                "{}: barely lost energy",
                spec.name
            );
        }
    }

    #[test]
    fn initial_states_lie_at_the_sampled_radius() {
        for name in ["mass-spring", "pendulum"] {
            let spec = find_system(name).unwrap();
            let mut rng = trajectory_rng(5, 0, 0);
            for _ in 0..200 {
                let (_, params) = spec.sample_system(&mut rng);
                let y = spec.sample_initial_state(&params, &mut rng);
                let scale = if name == "mass-spring" {
                    (params[0] * params[1]).sqrt()
                } else {
                    1.0
                };
                let r = (y[0] * y[0] + (y[1] / scale).powi(2)).sqrt();
                assert!(
                    r >= spec.radius.0 - 1e-12 && r <= spec.radius.1 + 1e-12,
                    "{name}: r = {r}"
                );
            }
        }
    }

    #[test]
    fn n_body_initial_states_have_zero_total_momentum_and_centre_of_mass() {
        for name in ["two-body", "three-body", "two-body-colors"] {
            let spec = find_system(name).unwrap();
            let mut rng = trajectory_rng(9, 0, 0);
            let (_, params) = spec.sample_system(&mut rng);
            let y = spec.sample_initial_state(&params, &mut rng);
            let n = spec.num_bodies();
            for c in 0..2 {
                let momentum: f64 = (0..n).map(|i| y[2 * n + 2 * i + c]).sum();
                let com: f64 = (0..n).map(|i| params[i] * y[2 * i + c]).sum();
                assert!(momentum.abs() < 1e-12 && com.abs() < 1e-12, "{name}");
            }
        }
    }

    #[test]
    fn unperturbed_orbits_are_circular() {
        for masses in [vec![1.0, 1.0], vec![0.6, 1.4], vec![1.0, 1.0, 1.0]] {
            let g = 1.3;
            let (pos, vel) = circular_orbit(&masses, g, 1.1, [0.6, 0.8], -1.0);
            let n = masses.len();
            let system = NBody {
                masses: masses.clone(),
                g,
            };
            let mut y0 = vec![0.0; 4 * n];
            for i in 0..n {
                for c in 0..2 {
                    y0[2 * i + c] = pos[i][c];
                    y0[2 * n + 2 * i + c] = masses[i] * vel[i][c];
                }
            }
            let states =
                integrate_frames(&system, 0.0, &y0, 0.125, 200, Tolerance::default()).unwrap();
            for y in states.chunks(4 * n) {
                for i in 0..n {
                    let r = (y[2 * i].powi(2) + y[2 * i + 1].powi(2)).sqrt();
                    let r0 = (pos[i][0].powi(2) + pos[i][1].powi(2)).sqrt();
                    assert!(
                        (r - r0).abs() < 1e-8,
                        "masses {masses:?}: radius {r} vs {r0}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_system_samples_a_trajectory_that_stays_on_the_canvas() {
        for spec in SYSTEMS {
            let t = sample(spec, [3, 0, 1], 30, 32);
            let dim = 2 * spec.dof();
            assert_eq!(t.states.len(), 30 * dim, "{}", spec.name);
            assert_eq!(t.observed_states.len(), 30 * dim);
            assert_eq!(t.frames.len(), 30 * 32 * 32 * 3);
            assert_eq!(t.params.len(), spec.param_names().len());
            // Noise is added exactly where the spec asks for it.
            let differs = t.states.iter().zip(&t.observed_states).any(|(a, b)| a != b);
            assert_eq!(differs, spec.noise_std > 0.0, "{}", spec.name);
            // The system moves: the first and last frames differ.
            let fb = 32 * 32 * 3;
            assert_ne!(
                &t.frames[..fb],
                &t.frames[29 * fb..],
                "{} does not move",
                spec.name
            );
        }
    }

    #[test]
    fn observation_noise_has_the_requested_scale() {
        let spec = find_system("pendulum").unwrap();
        let mut rng = trajectory_rng(4, 0, 0);
        let s = settings(200, 0.125, 0.1);
        let t = spec.sample_trajectory(&mut rng, &s).unwrap();
        let n = t.states.len() as f64;
        let var: f64 = t
            .states
            .iter()
            .zip(&t.observed_states)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            / n;
        assert!((var.sqrt() - 0.1).abs() < 0.01, "noise std {}", var.sqrt());
    }

    #[test]
    fn single_body_frames_show_the_body_at_its_projected_position() {
        // Projection written out independently of `Viewport::to_pixel`: world (x, y) on a canvas
        // of half-width h maps to column (x + h)/(2h)·(S−1) and row (h − y)/(2h)·(S−1).
        for name in ["pendulum", "mass-spring", "pendulum-colors"] {
            let spec = find_system(name).unwrap();
            for size in [32, 64] {
                let t = sample(spec, [21, 0, 0], 20, size);
                let h = spec.canvas().half_size;
                let offset = &t.params[t.params.len() - 2..];
                for f in 0..20 {
                    let q = t.observed_states[2 * f];
                    let (x, y) = match spec.dynamics {
                        Dynamics::Pendulum => (t.params[2] * q.sin(), -t.params[2] * q.cos()),
                        _ => (0.0, q),
                    };
                    let (x, y) = (x + offset[0], y + offset[1]);
                    let expected = [
                        (x + h) / (2.0 * h) * (size - 1) as f64,
                        (h - y) / (2.0 * h) * (size - 1) as f64,
                    ];
                    let fb = size * size * 3;
                    let got = centroid(&t.frames[f * fb..(f + 1) * fb], size);
                    let err =
                        ((got[0] - expected[0]).powi(2) + (got[1] - expected[1]).powi(2)).sqrt();
                    assert!(
                        err < 0.5,
                        "{name} at {size}px, frame {f}: centroid {got:?} vs {expected:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn each_body_of_every_system_is_drawn_at_its_canvas_position() {
        // Render each body alone with the dataset's canvas and compare the centroid with the
        // projection of the body's world position.
        for spec in SYSTEMS {
            let t = sample(spec, [8, 1, 2], 5, 32);
            let p = &t.params;
            let system = spec.system_from_params(p);
            let offset = [p[p.len() - 2], p[p.len() - 1]];
            let dof = spec.dof();
            let mut positions = vec![[0.0; 2]; spec.num_bodies()];
            system.body_positions(&t.observed_states[..dof], &mut positions);
            let canvas = spec.canvas();
            for (i, pos) in positions.iter().enumerate() {
                let world = [pos[0] + offset[0], pos[1] + offset[1]];
                let disc = Disc {
                    position: world,
                    radius: (system.body_masses()[i] / std::f64::consts::PI).sqrt(),
                    color: hue_to_rgb(p[p.len() - 2 - spec.num_bodies() + i]),
                };
                let mut img = vec![0u8; 32 * 32 * 3];
                render_frame(&[disc], &canvas, 32, &mut img);
                let got = centroid(&img, 32);
                let expected = canvas.to_pixel(world, 32);
                // Discs cut by the image border pull the centroid inwards; only check whole discs.
                let r_px = disc.radius / (2.0 * canvas.half_size) * 31.0 + 1.0;
                if expected.iter().all(|&e| e > r_px && e < 31.0 - r_px) {
                    let err =
                        ((got[0] - expected[0]).powi(2) + (got[1] - expected[1]).powi(2)).sqrt();
                    assert!(err < 0.5, "{} body {i}: {got:?} vs {expected:?}", spec.name);
                }
            }
        }
    }
}
