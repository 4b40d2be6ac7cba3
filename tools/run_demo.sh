#!/usr/bin/env bash
# README command 1, the main job on the embedded default: set up the environment if needed,
# generate the demo video dataset if missing (or made by another version of the generator),
# train the demo NL-C2D and its C2D twin, test both with 10 clips x 3 crops, print top-1/top-5,
# then draw the paper's Figure 4 (their training and validation error) and Figure 3-style attention
# maps of the NL-C2D, and print its attention share on the cue.
# Extra arguments go to both tools/train.py runs (e.g. --cfg-options train_cfg.max_epochs=5).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
PY=.venv/bin/python
# The demo networks are tiny: one intra-op thread per process beats oversubscribing 2 cores
# shared with the data-loading worker.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
DATA=data/demo
SEED=0

stamp="$(sha256sum tools/data/make_demo_dataset.py | cut -d' ' -f1)"
if [ "$(cat "$DATA/.generator-sha256" 2>/dev/null)" != "$stamp" ]; then
  echo "[run_demo] generating the demo dataset in $DATA"
  "$PY" tools/data/make_demo_dataset.py --out-dir "$DATA" --seed "$SEED"
  echo "$stamp" > "$DATA/.generator-sha256"
fi

dumps=()
logs=()
for model in nl-c2d c2d; do
  name=${model}_r18-tiny_1xb16-8x2x1-20e_demo-rgb
  work_dir=work_dirs/demo/$name
  rm -rf "$work_dir"
  echo "[run_demo] training $name (log: $work_dir)"
  "$PY" tools/train.py "configs/demo/$name.py" --work-dir "$work_dir" --seed "$SEED" \
    --deterministic "$@"
  echo "[run_demo] testing $name with 10 clips x 3 crops"
  "$PY" tools/test.py "configs/demo/$name.py" "$(cat "$work_dir/last_checkpoint")" \
    --work-dir "$work_dir" --dump "$work_dir/result.pkl"
  dumps+=("$work_dir/result.pkl")
  # The training run's log: the first timestamped folder (the test run adds a later one).
  logs+=("$(ls -d "$work_dir"/*/vis_data/scalars.json | head -n 1)")
done
"$PY" tools/analysis/summarize_dumps.py "${dumps[@]}"

mkdir -p resources
"$PY" tools/analysis/analyze_logs.py plot_curve "${logs[@]}" --style paper-fig4 \
  --legend NL-C2D C2D --title 'Demo: training (dashed) and validation (solid) error' \
  --out resources/demo_fig4.png
nl_work_dir=work_dirs/demo/nl-c2d_r18-tiny_1xb16-8x2x1-20e_demo-rgb
"$PY" tools/analysis/demo_cue_attention.py configs/demo/nl-c2d_r18-tiny_1xb16-8x2x1-20e_demo-rgb.py \
  "$(cat "$nl_work_dir/last_checkpoint")" --data-root "$DATA" --out-dir work_dirs/demo/attention
cp "$(ls work_dirs/demo/attention/*/*_q0.png | head -n 1)" resources/demo_attention.png
echo "[run_demo] Figure 4: resources/demo_fig4.png; attention maps: work_dirs/demo/attention/ (one in resources/demo_attention.png)"
