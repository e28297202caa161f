#!/usr/bin/env bash
# GPU figures in one run: `hgn bench` through Vulkan (burn wgpu/vulkan backend) beside the
# PyTorch twin on CUDA, same presets, batches and rollout length, then a short training run on
# the GPU to show that the whole loop (data, model, loss, Adam, checkpoint, eval) works there.
#
# Usage: bash bench/gpu.sh HGN [OUT]
#   HGN: an hgn binary built with `cargo build --release --features gpu`
#   OUT: folder for the log (default: .)
# Needs: a Vulkan loader and driver, python3 with torch and CUDA.
set -uo pipefail
hgn=${1:?usage: bench/gpu.sh HGN [OUT]}
out=${2:-.}
mkdir -p "$out"
log="$out/gpu.log"
say() { echo "$@" | tee -a "$log"; }
run() { say "\$ $*"; timeout "${T:-240}" "$@" 2>&1 | tee -a "$log"; say "(exit ${PIPESTATUS[0]})"; }

say "== machine"
run nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
run python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

for batch in 16 128; do
  say "== paper preset, batch $batch, 29 rollout steps"
  T=300 run "$hgn" bench --device vulkan --preset paper --batch-size "$batch" --steps 10
  T=120 run python3 bench/torch_hgn.py --device cuda --batch-size "$batch" --steps 10
done

say "== training on the GPU: tiny preset, 300 steps, pendulum"
T=120 run "$hgn" generate --system pendulum --train 2000 --test 200 --out /tmp/hgn-pendulum -q
T=300 run "$hgn" train --data /tmp/hgn-pendulum --run /tmp/hgn-gpu-run --steps 300 --device vulkan -q
T=120 run "$hgn" eval --run /tmp/hgn-gpu-run --split test --sequences 200 -q
