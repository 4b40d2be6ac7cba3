#!/usr/bin/env bash
# Creates (or reuses) the virtual environment .venv with the pinned stack and nlnet installed.
# Idempotent: a second run only checks a stamp and returns in seconds.
# Environment: PYTHON (interpreter, default python3.11 or python3), NLNET_VENV (default .venv),
#              NLNET_WHEELS (extra find-links folder, default ../shared/wheels when present).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
VENV=${NLNET_VENV:-.venv}
WHEELS=${NLNET_WHEELS:-../shared/wheels}

stamp_source() { cat requirements/*.txt setup.py tools/setup_env.sh; "$VENV/bin/python" -V 2>&1; }

if [ -x "$VENV/bin/python" ] && [ -f "$VENV/.nlnet-stamp" ] &&
   [ "$(stamp_source | sha256sum)" = "$(cat "$VENV/.nlnet-stamp")" ]; then
  exit 0
fi

echo "[setup_env] creating $VENV with $($PYTHON -V)"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off)
FIND_LINKS=()
if [ -d "$WHEELS" ]; then FIND_LINKS=(--find-links "$WHEELS"); fi

# 1. torch first: mmcv's build imports it and compiles against its headers.
"${PIP[@]}" -r requirements/build.txt
# 2. mmcv: a prebuilt wheel from find-links when one matches, else a source build (~20 min on 2 cores).
MAX_JOBS=${MAX_JOBS:-$(nproc)} "${PIP[@]}" --no-build-isolation "${FIND_LINKS[@]}" -r requirements/mmcv.txt
# 3. the rest of the stack, the test tools, and nlnet itself (editable).
"${PIP[@]}" "${FIND_LINKS[@]}" -r requirements/runtime.txt -r requirements/tests.txt -r requirements/app.txt
"${PIP[@]}" --no-build-isolation --no-deps -e .
"$VENV/bin/python" -c "import nlnet.openmmlab, mmcv.ops, mmaction.models, mmseg.models, mmdet.models" \
  || { echo "[setup_env] the stack does not import; see the errors above" >&2; exit 1; }

stamp_source | sha256sum > "$VENV/.nlnet-stamp"
echo "[setup_env] ready: $VENV"
