//! Every random stream of `hgn`, named.
//!
//! A draw is identified by `(seed, stream, index)`: each gets its own ChaCha8 stream
//! ([`stream_rng`]), so what is drawn never depends on thread count or on the order work is done
//! in, and a resumed run draws exactly what an uninterrupted one would. The numeric ids are part
//! of the on-disk contract (datasets and runs are reproduced from them) and never change.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The random streams, each with its fixed id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Dataset generation, train split: index = trajectory.
    DatasetTrain,
    /// Dataset generation, test split: index = trajectory.
    DatasetTest,
    /// HGN training: index = optimisation step (batch, window offsets, posterior noise, decoded
    /// frames, direction of time).
    HgnStep,
    /// Flow training: index = optimisation step (the batch and the posterior noise).
    FlowStep,
    /// A flow run's held-out points of a built-in target (index 0).
    FlowTestPoints,
    /// The train/test split of a flow run's point file (index 0).
    FlowFileSplit,
    /// The points `hgn flow data` writes for a target (index 0).
    FlowTargetFile,
    /// Importance-sampling noise of flow evaluation: index = chunk.
    FlowEvalNoise,
    /// `hgn flow sample` (index 0).
    FlowSamples,
    /// `hgn flow plot`: the target's reference points (index 0) and the base draws whose paths
    /// it shows (index 1).
    FlowPlotTarget,
    /// Draws from the physics oracle's posterior in `hgn eval`: index = sequence.
    OracleDraws,
    /// A flow run's validation points for early stopping (index 0): draws of a built-in
    /// target, or the split of a point file's training part.
    FlowValidation,
}

impl Stream {
    /// The stream's fixed id.
    pub fn id(self) -> u64 {
        match self {
            Stream::DatasetTrain => 0,
            Stream::DatasetTest => 1,
            Stream::HgnStep => 2,
            Stream::FlowStep => 3,
            Stream::FlowTestPoints => 4,
            Stream::FlowFileSplit => 5,
            Stream::FlowTargetFile => 6,
            Stream::FlowEvalNoise => 7,
            Stream::FlowSamples => 8,
            Stream::FlowPlotTarget => 9,
            Stream::OracleDraws => 10,
            Stream::FlowValidation => 11,
        }
    }
}

/// The RNG of draw `index` of `stream` under `seed`.
pub fn stream_rng(seed: u64, stream: Stream, index: u64) -> ChaCha8Rng {
    rng_with_id(seed, stream.id(), index)
}

/// The ChaCha8 RNG of `(seed, id, index)`: disjoint 2^48-long ranges of stream ids per `id`.
pub(crate) fn rng_with_id(seed: u64, id: u64, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream((id << 48) | index);
    rng
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn ids_are_distinct_and_streams_repeat() {
        let all = [
            Stream::DatasetTrain,
            Stream::DatasetTest,
            Stream::HgnStep,
            Stream::FlowStep,
            Stream::FlowTestPoints,
            Stream::FlowFileSplit,
            Stream::FlowTargetFile,
            Stream::FlowEvalNoise,
            Stream::FlowSamples,
            Stream::FlowPlotTarget,
            Stream::OracleDraws,
            Stream::FlowValidation,
        ];
        let mut ids: Vec<u64> = all.iter().map(|s| s.id()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all.len());
        let a: u64 = stream_rng(3, Stream::HgnStep, 7).random();
        let b: u64 = stream_rng(3, Stream::HgnStep, 7).random();
        let c: u64 = stream_rng(3, Stream::FlowStep, 7).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
