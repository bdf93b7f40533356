#!/usr/bin/env bash
# Creates (idempotently) the Python venv with the augmentation references used by
# benches/augment/bench_reference.py and tests/fixtures/augment/generate.py:
# albumentations 2.0.8 (+ albucore 0.0.24), imgaug 0.4.0, OpenCV 4.11.0 (headless), numpy 1.26.4.
#
#   bash benches/augment/setup_venv.sh        # prints the venv's python path on its last line
#   KINDLING_AUGMENT_VENV=/some/dir bash benches/augment/setup_venv.sh
#
# Everything is pinned in requirements.txt beside this script and installed with --no-deps,
# so the venv is exactly that list (see the note there on opencv-python/matplotlib).
# Re-running is cheap: the install is skipped while the stamp matches requirements.txt.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${KINDLING_AUGMENT_VENV:-$HOME/.cache/kindling-augment-venv}"
req="$here/requirements.txt"

py=""
for cand in python3.11 /usr/bin/python3.11 /usr/bin/python3 python3; do
  if command -v "$cand" >/dev/null 2>&1 &&
     "$cand" -c 'import sys, venv; sys.exit(0 if sys.version_info[:2] >= (3, 9) else 1)' 2>/dev/null; then
    py="$cand"; break
  fi
done
[ -n "$py" ] || { echo "setup_venv.sh: no python3 (>= 3.9) with the venv module found" >&2; exit 1; }

if [ ! -x "$venv/bin/python" ]; then
  echo "creating venv $venv with $("$py" --version)" >&2
  "$py" -m venv "$venv"
fi

stamp="$venv/.kindling-augment-requirements"
if [ -f "$stamp" ] && cmp -s "$stamp" "$req"; then
  echo "venv up to date: $venv" >&2
else
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  # An earlier, looser install may have brought opencv-python (GUI) in via imgaug's metadata;
  # it shares the cv2 package directory with the headless build, so remove both and reinstall.
  if "$venv/bin/python" -m pip show --quiet opencv-python >/dev/null 2>&1; then
    "$venv/bin/python" -m pip uninstall --quiet --yes opencv-python opencv-python-headless
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$req"
  cp "$req" "$stamp"
fi

PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$here" "$venv/bin/python" -c '
import compat, numpy, cv2, albumentations, albucore, imgaug, scipy, skimage
import imgaug.augmenters
print("numpy", numpy.__version__, "| opencv", cv2.__version__, "| albumentations", albumentations.__version__,
      "| albucore", albucore.__version__, "| imgaug", imgaug.__version__, "| scipy", scipy.__version__,
      "| scikit-image", skimage.__version__)
' >&2
echo "$venv/bin/python"
