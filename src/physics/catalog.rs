//! The named systems `hgn generate` can simulate: their equations, parameters, noise, time step
//! and canvas ([`super::trajectory`] samples and renders one trajectory of them).
//!
//! Two families (reference D4, §9):
//!
//! - **The paper's four systems** (Toth et al. 2020, as restated by the ReScience replication):
//!   `mass-spring`, `pendulum`, `two-body`, `three-body`, with fixed parameters, the initial state
//!   drawn at a radius `r` in phase space, Gaussian noise σ added to every phase-space coordinate
//!   of every frame before rendering, and 0.125 time units between frames.
//! - **DeepMind Hamiltonian Dynamics Suite variants**: `double-pendulum` and the `*-colors`
//!   systems with randomised parameters and colours (and a random canvas offset), plus
//!   `*-friction` variants with `dp/dt −= 0.05·∂H/∂p`. No observation noise, 0.05 time units
//!   between frames, as the suite configures them.

use super::render::Viewport;

/// The family of equations of motion behind a named system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dynamics {
    /// [`MassSpring`](super::systems::MassSpring).
    MassSpring,
    /// [`Pendulum`](super::systems::Pendulum).
    Pendulum,
    /// [`DoublePendulum`](super::systems::DoublePendulum).
    DoublePendulum,
    /// [`NBody`](super::systems::NBody) with two bodies.
    TwoBody,
    /// [`NBody`](super::systems::NBody) with three bodies of equal mass.
    ThreeBody,
}

/// A physical parameter drawn uniformly from `[low, high]` (fixed when `low == high`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamRange {
    /// Its name, as in the Hamiltonian.
    pub name: &'static str,
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
}

/// `name = v` for a fixed parameter, `name ∈ [low, high]` for a sampled one.
pub fn format_range(name: &str, low: f64, high: f64) -> String {
    if low == high {
        format!("{name} = {low}")
    } else {
        format!("{name} ∈ [{low}, {high}]")
    }
}

const fn fixed(name: &'static str, value: f64) -> ParamRange {
    ParamRange {
        name,
        low: value,
        high: value,
    }
}

const fn range(name: &'static str, low: f64, high: f64) -> ParamRange {
    ParamRange { name, low, high }
}

/// Everything that defines a named dataset family.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemSpec {
    /// The CLI name, e.g. `pendulum`.
    pub name: &'static str,
    /// One-line description.
    pub summary: &'static str,
    /// The Hamiltonian as a formula.
    pub hamiltonian: &'static str,
    /// Equations of motion.
    pub dynamics: Dynamics,
    /// Physical parameter ranges, in the order of [`Dynamics`]' parameters (see [`Self::param_names`]).
    pub params: &'static [ParamRange],
    /// Range of the initial-state radius `r` (phase-space radius; orbit radius for n-body).
    pub radius: (f64, f64),
    /// Draw the radius uniformly in area (`√U(r²)`) instead of uniformly.
    pub uniform_annulus: bool,
    /// Default observation noise σ added to every phase-space coordinate before rendering.
    pub noise_std: f64,
    /// Friction γ in `dp/dt = −∂H/∂q − γ·∂H/∂p` (0 for conservative systems).
    pub friction: f64,
    /// Number of palette hues bodies are drawn from; 0 means a fixed colour per body
    /// (hue `i / num_bodies`: red for one body; red and cyan; red, green and blue).
    pub num_colors: usize,
    /// Shift the canvas by a random offset of up to 0.4 × half its size (suite `*_COLORS`).
    pub random_canvas_offset: bool,
    /// Half-width of the canvas in world units when given explicitly (n-body systems); otherwise it
    /// is derived from the parameter ranges as the suite does.
    pub canvas_half_size: Option<f64>,
    /// Relative perturbation of each initial velocity component of the n-body systems.
    pub orbit_noise: f64,
    /// Default time between frames.
    pub default_dt: f64,
    /// Where the settings come from.
    pub origin: &'static str,
}

const PAPER: &str = "HGN paper (Toth et al. 2020), via the ReScience replication";
const SUITE: &str = "DeepMind Hamiltonian Dynamics Suite";
const MASS_SPRING_H: &str = "H = p²/(2m) + k·q²/2";
const PENDULUM_H: &str = "H = p²/(2m·l²) + m·g·l·(1 − cos q)";
const DOUBLE_PENDULUM_H: &str = "H = [m₂l₂²p₁² + (m₁+m₂)l₁²p₂² − 2m₂l₁l₂p₁p₂cos(q₁−q₂)] / \
     [2m₂l₁²l₂²(m₁ + m₂sin²(q₁−q₂))] − (m₁+m₂)g·l₁cos q₁ − m₂g·l₂cos q₂";
const N_BODY_H: &str = "H = Σᵢ ‖pᵢ‖²/(2mᵢ) − Σ_{i<j} g·mᵢ·mⱼ/‖qᵢ − qⱼ‖";

const BASE: SystemSpec = SystemSpec {
    name: "",
    summary: "",
    hamiltonian: "",
    dynamics: Dynamics::MassSpring,
    params: &[],
    radius: (0.0, 0.0),
    uniform_annulus: false,
    noise_std: 0.0,
    friction: 0.0,
    num_colors: 0,
    random_canvas_offset: false,
    canvas_half_size: None,
    orbit_noise: 0.0,
    default_dt: 0.05,
    origin: SUITE,
};

/// What every system of one dynamics shares: its Hamiltonian, equations of motion and (but for
/// the colour variants of the double pendulum and the n-body systems) its radius range.
const fn family(hamiltonian: &'static str, dynamics: Dynamics, radius: (f64, f64)) -> SystemSpec {
    SystemSpec {
        hamiltonian,
        dynamics,
        radius,
        ..BASE
    }
}

const MASS_SPRING: SystemSpec = family(MASS_SPRING_H, Dynamics::MassSpring, (0.1, 1.0));
const PENDULUM: SystemSpec = family(PENDULUM_H, Dynamics::Pendulum, (1.3, 2.3));
const DOUBLE_PENDULUM: SystemSpec = family(DOUBLE_PENDULUM_H, Dynamics::DoublePendulum, (1.3, 2.3));
/// Two or three gravitating bodies on perturbed orbits.
const N_BODY: SystemSpec = SystemSpec {
    orbit_noise: 0.1,
    ..family(N_BODY_H, Dynamics::TwoBody, (0.5, 1.5))
};

/// One of the paper's four systems: its time step and source on `family`, with observation
/// noise σ.
const fn paper(
    name: &'static str,
    summary: &'static str,
    noise_std: f64,
    family: SystemSpec,
) -> SystemSpec {
    SystemSpec {
        name,
        summary,
        noise_std,
        default_dt: 0.125,
        origin: PAPER,
        ..family
    }
}

/// One of the suite's `*_COLORS` systems: random parameters, colours and canvas offset on
/// `family`, the radius drawn uniformly in area.
const fn colors(
    name: &'static str,
    summary: &'static str,
    params: &'static [ParamRange],
    family: SystemSpec,
) -> SystemSpec {
    SystemSpec {
        name,
        summary,
        params,
        uniform_annulus: true,
        num_colors: 6,
        random_canvas_offset: true,
        ..family
    }
}

/// `system` with the suite's friction γ = 0.05 (its `*_FRICTION` variants).
const fn with_friction(
    name: &'static str,
    summary: &'static str,
    system: SystemSpec,
) -> SystemSpec {
    SystemSpec {
        name,
        summary,
        friction: 0.05,
        ..system
    }
}

const MASS_SPRING_COLORS_PARAMS: &[ParamRange] = &[range("m", 0.2, 1.0), fixed("k", 2.0)];
const PENDULUM_COLORS_PARAMS: &[ParamRange] = &[
    range("m", 0.5, 1.5),
    range("g", 3.0, 4.0),
    range("l", 0.5, 1.0),
];
const DOUBLE_PENDULUM_COLORS_PARAMS: &[ParamRange] = &[
    range("m", 0.4, 0.6),
    range("l", 0.75, 1.0),
    range("g", 2.5, 4.0),
];

const MASS_SPRING_COLORS: SystemSpec = colors(
    "mass-spring-colors",
    "mass-spring with random mass, colour and canvas offset (suite)",
    MASS_SPRING_COLORS_PARAMS,
    MASS_SPRING,
);
const PENDULUM_COLORS: SystemSpec = colors(
    "pendulum-colors",
    "pendulum with random m, g, l and colour (suite)",
    PENDULUM_COLORS_PARAMS,
    PENDULUM,
);
const DOUBLE_PENDULUM_COLORS: SystemSpec = colors(
    "double-pendulum-colors",
    "double pendulum with random parameters and colours (suite)",
    DOUBLE_PENDULUM_COLORS_PARAMS,
    SystemSpec {
        radius: (1.0, 2.5),
        ..DOUBLE_PENDULUM
    },
);

/// Every system `hgn generate` knows, paper systems first.
pub const SYSTEMS: &[SystemSpec] = &[
    SystemSpec {
        params: &[fixed("m", 0.5), fixed("k", 2.0)],
        ..paper(
            "mass-spring",
            "mass on a spring, moving vertically (paper)",
            0.1,
            MASS_SPRING,
        )
    },
    SystemSpec {
        params: &[fixed("m", 0.5), fixed("g", 3.0), fixed("l", 1.0)],
        ..paper("pendulum", "ideal pendulum (paper)", 0.1, PENDULUM)
    },
    SystemSpec {
        params: &[fixed("m", 1.0), fixed("g", 1.0)],
        canvas_half_size: Some(2.75),
        ..paper(
            "two-body",
            "two gravitating bodies on near-circular orbits (paper)",
            0.05,
            N_BODY,
        )
    },
    SystemSpec {
        dynamics: Dynamics::ThreeBody,
        params: &[fixed("m", 1.0), fixed("g", 1.0)],
        radius: (0.9, 1.2),
        canvas_half_size: Some(3.0),
        ..paper(
            "three-body",
            "three gravitating bodies, perturbed equilateral orbit (paper)",
            0.2,
            N_BODY,
        )
    },
    SystemSpec {
        name: "double-pendulum",
        summary: "ideal double pendulum (suite DOUBLE_PENDULUM)",
        params: &[fixed("m", 0.5), fixed("l", 1.0), fixed("g", 3.0)],
        ..DOUBLE_PENDULUM
    },
    MASS_SPRING_COLORS,
    with_friction(
        "mass-spring-colors-friction",
        "mass-spring-colors with friction 0.05 (suite)",
        MASS_SPRING_COLORS,
    ),
    PENDULUM_COLORS,
    with_friction(
        "pendulum-colors-friction",
        "pendulum-colors with friction 0.05 (suite)",
        PENDULUM_COLORS,
    ),
    DOUBLE_PENDULUM_COLORS,
    with_friction(
        "double-pendulum-colors-friction",
        "double-pendulum-colors with friction 0.05 (suite)",
        DOUBLE_PENDULUM_COLORS,
    ),
    SystemSpec {
        canvas_half_size: Some(5.0),
        ..colors(
            "two-body-colors",
            "two-body with random masses, g and colours (suite)",
            &[range("m", 0.5, 1.5), range("g", 0.5, 1.5)],
            N_BODY,
        )
    },
];

/// The names of all systems, for messages.
pub fn system_names() -> Vec<&'static str> {
    SYSTEMS.iter().map(|s| s.name).collect()
}

/// Looks a system up by name (case-insensitive; `_` and `-` are interchangeable).
pub fn find_system(name: &str) -> Option<&'static SystemSpec> {
    let wanted = name.trim().to_ascii_lowercase().replace('_', "-");
    SYSTEMS.iter().find(|s| s.name == wanted)
}

impl SystemSpec {
    /// Number of rendered bodies.
    pub fn num_bodies(&self) -> usize {
        match self.dynamics {
            Dynamics::MassSpring | Dynamics::Pendulum => 1,
            Dynamics::DoublePendulum | Dynamics::TwoBody => 2,
            Dynamics::ThreeBody => 3,
        }
    }

    /// Number of generalised coordinates (`q` and `p` each have this length).
    pub fn dof(&self) -> usize {
        match self.dynamics {
            Dynamics::MassSpring | Dynamics::Pendulum => 1,
            Dynamics::DoublePendulum => 2,
            Dynamics::TwoBody => 4,
            Dynamics::ThreeBody => 6,
        }
    }

    /// Names of the state components, `q` first then `p`.
    pub fn state_names(&self) -> Vec<String> {
        let coords: Vec<String> = match self.dynamics {
            Dynamics::MassSpring | Dynamics::Pendulum => vec![String::new()],
            Dynamics::DoublePendulum => vec!["1".into(), "2".into()],
            Dynamics::TwoBody | Dynamics::ThreeBody => (1..=self.num_bodies())
                .flat_map(|i| [format!("{i}_x"), format!("{i}_y")])
                .collect(),
        };
        let q = coords.iter().map(|c| format!("q{c}"));
        let p = coords.iter().map(|c| format!("p{c}"));
        q.chain(p).collect()
    }

    /// Names of the columns of `params.npy`.
    pub fn param_names(&self) -> Vec<String> {
        let mut names: Vec<String> = match self.dynamics {
            Dynamics::MassSpring => vec!["m".into(), "k".into()],
            Dynamics::Pendulum => vec!["m".into(), "g".into(), "l".into()],
            Dynamics::DoublePendulum => ["m1", "m2", "l1", "l2", "g"].map(String::from).to_vec(),
            Dynamics::TwoBody => ["m1", "m2", "g"].map(String::from).to_vec(),
            Dynamics::ThreeBody => ["m1", "m2", "m3", "g"].map(String::from).to_vec(),
        };
        names.extend((1..=self.num_bodies()).map(|i| format!("hue{i}")));
        names.extend(["canvas_offset_x".to_string(), "canvas_offset_y".to_string()]);
        names
    }

    pub(super) fn param(&self, name: &str) -> ParamRange {
        *self
            .params
            .iter()
            .find(|p| p.name == name)
            .expect("catalog entry names its parameters")
    }

    /// The canvas before any random offset: centred on the origin, large enough for every body
    /// of every admissible trajectory (suite `canvas_bounds`).
    pub fn base_canvas(&self) -> Viewport {
        let max_disc = |m: f64| (m / std::f64::consts::PI).sqrt();
        let half_size = self
            .canvas_half_size
            .unwrap_or_else(|| match self.dynamics {
                Dynamics::MassSpring => self.radius.1 + max_disc(self.param("m").high),
                Dynamics::Pendulum => self.param("l").high + max_disc(self.param("m").high),
                Dynamics::DoublePendulum => {
                    2.0 * self.param("l").high + max_disc(self.param("m").high)
                }
                Dynamics::TwoBody | Dynamics::ThreeBody => {
                    unreachable!("n-body systems set their canvas")
                }
            });
        Viewport {
            center: [0.0, 0.0],
            half_size,
        }
    }

    /// Largest random canvas offset along each axis.
    pub fn max_canvas_offset(&self) -> f64 {
        if self.random_canvas_offset {
            0.4 * self.base_canvas().half_size
        } else {
            0.0
        }
    }

    /// The canvas that images show: the base canvas grown by the largest offset.
    pub fn canvas(&self) -> Viewport {
        let base = self.base_canvas();
        Viewport {
            center: base.center,
            half_size: base.half_size + self.max_canvas_offset(),
        }
    }
}
