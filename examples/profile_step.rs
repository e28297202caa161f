//! Rough timing of the parts of one training step (forward pieces and backward).
use std::time::Instant;

use burn::tensor::{Device, Distribution, Tensor};
use hgn::model::{HgnConfig, rollout};

fn main() {
    let preset = std::env::args().nth(1).unwrap_or_else(|| "tiny".into());
    let cfg = if preset == "paper" {
        HgnConfig::paper()
    } else {
        HgnConfig::tiny()
    };
    let device = Device::flex().autodiff();
    let model = cfg.init(&device);
    let b = 16;
    let frames = Tensor::<5>::random([b, 5, 3, 32, 32], Distribution::Default, &device);
    for _ in 0..3 {
        let t = Instant::now();
        let (q, p, _, _) = model.infer(frames.clone(), None);
        let t_enc = t.elapsed();
        let t = Instant::now();
        let r = rollout(&model.hamiltonian, cfg.integrator, q, p, 0.125, 29);
        let last = r.q.last().unwrap().clone().sum().into_data();
        let t_roll = t.elapsed();
        let _ = last;
        let t = Instant::now();
        let rec = model.decode_all(&r.q);
        let loss = rec.powf_scalar(2.0).mean();
        let _ = loss.clone().into_data();
        let t_dec = t.elapsed();
        let t = Instant::now();
        let _g = loss.backward();
        let t_back = t.elapsed();
        println!(
            "encoder {:?}  rollout {:?}  decoder {:?}  backward {:?}",
            t_enc, t_roll, t_dec, t_back
        );
    }
    // Backward of the rollout alone.
    let (q, p, _, _) = model.infer(frames.clone(), None);
    let r = rollout(&model.hamiltonian, cfg.integrator, q, p, 0.125, 29);
    let loss = Tensor::cat(r.q.clone(), 0).powf_scalar(2.0).mean();
    let t = Instant::now();
    let _g = loss.backward();
    println!("rollout-only backward {:?}", t.elapsed());
}
