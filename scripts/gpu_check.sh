#!/usr/bin/env bash
# GPU validation of effbench in one call of the device tool (< 8 minutes on an H100; installs nothing).
# Run from anywhere; it cds to the repo root and uses PYTHONPATH=. (the repo need not be pip-installed).
#   bash scripts/gpu_check.sh                      # writes into $OUT (default ./gpu_check_out)
#   EFFBENCH_GPU_CHECK_DEVICE=cpu bash scripts/gpu_check.sh --dry-run   # CPU check of the script itself
# Extra arguments go to scripts/gpu_check.py (--budget S, --models ..., --dataset DIR, --images N, --parts ...).
#   bash scripts/gpu_check.sh --parts steady,projection   # the zoo measured vs its runtime projection; then
#   python reports/projection/validate.py fit --measured $OUT/gpu_results.json   (reports/projection/README.md)
# Outputs: $OUT/gpu_report.tar.gz (reports/gpu/<gpu-name>/...), $OUT/gpu_report.md, $OUT/gpu_results.json,
# $OUT/gpu_check.log. Unpack into the repo with: tar -xzf gpu_report.tar.gz -C <repo root>
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
OUT="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT"
BUDGET="${EFFBENCH_GPU_CHECK_BUDGET:-400}"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv \
  2>/dev/null | tee "$OUT/gpu_check.log" || true
python -c "import effbench; print('zoo:', effbench.list_models())" 2>&1 | tee -a "$OUT/gpu_check.log"
# Hard stop a little after the script's own budget: partial results are written after every part.
timeout -k 10 $((BUDGET + 60)) python scripts/gpu_check.py --out "$OUT" --budget "$BUDGET" "$@" 2>&1 \
  | tee -a "$OUT/gpu_check.log"
rc=${PIPESTATUS[0]}
echo "gpu_check exit code $rc" | tee -a "$OUT/gpu_check.log"
ls -la "$OUT"
exit "$rc"
