#!/usr/bin/env bash
# Times one training step of hgn's presets and of their PyTorch twins (bench/torch_hgn.py), side
# by side, with the same batch, rollout length and thread count, and prints the ratios.
#
# Needs: a release build of hgn (cargo build --release) and python3 with torch (PYTHON names
# another interpreter). PyTorch is timed twice: with the system allocator, and with jemalloc
# preloaded and purging disabled where Debian's libjemalloc2 is installed (its best figure on
# this machine). PRESETS (default "paper tiny vector"), THREADS, BATCH and STEPS set the runs.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${THREADS:-2}
batch=${BATCH:-16}
steps=${STEPS:-5}
python=${PYTHON:-python3}
export OMP_NUM_THREADS=$threads RAYON_NUM_THREADS=$threads
jemalloc=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
median() { sed -E 's/.*median ([0-9.]+) ms.*/\1/' <<<"$1"; }
ratio() { "$python" -c "print(f'{$1 / $2:.2f}')"; }

for preset in ${PRESETS:-paper tiny vector}; do
  echo "== $preset"
  hgn_out=$(./target/release/hgn bench --preset "$preset" --batch-size "$batch" --steps "$steps")
  hgn_line=$(grep '^median' <<<"$hgn_out")
  echo "hgn:   $(head -1 <<<"$hgn_out")"
  echo "       $hgn_line"
  grep 'GFLOP' <<<"$hgn_out" | sed 's/^/       /'
  hgn_ms=$(median "$hgn_line")

  torch_line=$("$python" bench/torch_hgn.py --preset "$preset" --batch-size "$batch" --steps "$steps" --threads "$threads")
  echo "torch: $torch_line"
  echo "ratio torch / hgn (system allocator): $(ratio "$(median "$torch_line")" "$hgn_ms")"

  if [ -e "$jemalloc" ]; then
    tuned=$(LD_PRELOAD=$jemalloc MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1 \
      "$python" bench/torch_hgn.py --preset "$preset" --batch-size "$batch" --steps "$steps" --threads "$threads")
    echo "torch+jemalloc: $tuned"
    echo "ratio torch+jemalloc / hgn: $(ratio "$(median "$tuned")" "$hgn_ms")"
  fi
done
