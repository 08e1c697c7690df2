#!/usr/bin/env bash
# The FMEN-S power-spectrum study (paper Sec. 4.3, Fig. 6-8): the first 20 Urban100 images (LR x4 made with
# effbench.imresize) for both public FMEN-S checkpoints, and all 68 B100-68 images for the NTIRE one; each with
# the maps' mean (DC) kept (the paper's definition) and removed. Run from the repository root.
set -euo pipefail
S=${EFFBENCH_SHARED_DIR:-../shared}
N=${N:-20}
rm -rf reports/psd/*/
run() {  # run OUT_NAME CHECKPOINT DATASET MAX_IMAGES [extra options]
  local out=$1 ckpt=$2 data=$3 n=$4; shift 4
  python -m effbench psd fmen_s --weights "$S/weights/$ckpt" --dataset "$S/data/$data" --max-images "$n" \
    --out "reports/psd/$out" --no-progress "$@"
}
run urban100_ntire22 ntire22_team03_fmen.pth Urban100 "$N"
run urban100_ntire22_nodc ntire22_team03_fmen.pth Urban100 "$N" --remove-mean
run urban100_fmen_test FMEN_test_weights.pt Urban100 "$N"
run urban100_fmen_test_nodc FMEN_test_weights.pt Urban100 "$N" --remove-mean
run b100-68_ntire22 ntire22_team03_fmen.pth B100-68 68
run b100-68_ntire22_nodc ntire22_team03_fmen.pth B100-68 68 --remove-mean
# the channel-averaged maps do not depend on --remove-mean: keep one copy (in the DC-kept folders)
rm -f reports/psd/*_nodc/*_maps.png
python reports/psd/summarise.py
