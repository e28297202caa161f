#!/usr/bin/env bash
# Times one training step of the `paper` preset in hgn and in its PyTorch twin, side by side,
# with the same batch, rollout length and thread count, and prints the ratios.
#
# Needs: a release build of hgn (cargo build --release) and python3 with torch.
# PyTorch is timed twice: with the system allocator, and with jemalloc preloaded and purging
# disabled where Debian's libjemalloc2 is installed (its best figure on this machine).
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${THREADS:-2}
batch=${BATCH:-16}
steps=${STEPS:-5}
export OMP_NUM_THREADS=$threads RAYON_NUM_THREADS=$threads

hgn_line=$(./target/release/hgn bench --preset paper --batch-size "$batch" --steps "$steps" | tail -1)
echo "hgn:   $hgn_line"
hgn_ms=$(sed -E 's/.*median ([0-9.]+) ms.*/\1/' <<<"$hgn_line")

torch_line=$(python3 bench/torch_hgn.py --batch-size "$batch" --steps "$steps" --threads "$threads")
echo "torch: $torch_line"
torch_ms=$(sed -E 's/.*median ([0-9.]+) ms.*/\1/' <<<"$torch_line")
echo "ratio hgn / torch (system allocator): $(python3 -c "print(f'{$hgn_ms / $torch_ms:.2f}')")"

jemalloc=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
if [ -e "$jemalloc" ]; then
  tuned=$(LD_PRELOAD=$jemalloc MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1 \
    python3 bench/torch_hgn.py --batch-size "$batch" --steps "$steps" --threads "$threads")
  echo "torch+jemalloc: $tuned"
  tuned_ms=$(sed -E 's/.*median ([0-9.]+) ms.*/\1/' <<<"$tuned")
  echo "ratio hgn / torch+jemalloc: $(python3 -c "print(f'{$hgn_ms / $tuned_ms:.2f}')")"
fi
