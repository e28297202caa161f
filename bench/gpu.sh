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

say "== paper preset (reconstruct: 31 frames in, 30 steps back), batch 16"
T=150 run "$hgn" bench --device vulkan --preset paper --batch-size 16 --steps 10
T=60 run python3 bench/torch_hgn.py --device cuda --batch-size 16 --steps 10
say "== paper preset, batch 128"
T=60 run python3 bench/torch_hgn.py --device cuda --batch-size 128 --steps 10
T=100 run "$hgn" bench --device vulkan --preset paper --batch-size 128 --steps 5

say "== training on the GPU: tiny preset, 200 steps, pendulum"
T=40 run "$hgn" generate --system pendulum --train 2000 --test 200 --out /tmp/hgn-pendulum -q
T=90 run "$hgn" train --data /tmp/hgn-pendulum --run /tmp/hgn-gpu-run --steps 200 --device vulkan -q
T=40 run "$hgn" eval --run /tmp/hgn-gpu-run --split test --sequences 200 --device vulkan -q
T=20 run "$hgn" rollout --run /tmp/hgn-gpu-run --out "$out/gpu-rollout.png"
