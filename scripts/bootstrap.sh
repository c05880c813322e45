#!/usr/bin/env bash
# Install what is missing for ssvqa on a Debian machine with Python >= 3.11, then stop.
# Idempotent: a second run with nothing changed takes about a second.
#   - Debian's ffmpeg (the CLI for distortions, its shared libraries for torchcodec)
#   - a virtual environment in .venv with torch 2.13.0 (CPU where no CUDA wheel is wanted) and ssvqa[dev]
#   - a start-up hook in the venv (ssvqa-torchvision-shim.pth): every interpreter of it can import
#     torchvision even where its native ops cannot load (ssvqa/_torchvision_shim.py); a no-op elsewhere
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
venv=${SSVQA_VENV:-$root/.venv}
python=${PYTHON:-python3}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
    echo "[bootstrap] installing Debian packages: $*" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
    apt_install ffmpeg
fi

if [ ! -x "$venv/bin/python" ]; then
    if ! "$python" -m venv "$venv" 2>/dev/null; then
        rm -rf "$venv"
        apt_install python3-venv
        "$python" -m venv "$venv"
    fi
fi

# Reinstall only when the dependency list changed.
stamp="$venv/.ssvqa-installed"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "[bootstrap] installing Python packages into $venv" >&2
    "$venv/bin/python" -m pip install -q --upgrade pip
    # torch first and on its own, so the pinned build (a local CPU wheel where one is provided)
    # is what every later requirement sees as already satisfied.
    "$venv/bin/python" -m pip install -q "torch==2.13.0"
    "$venv/bin/python" -m pip install -q -e ".[dev]"
    echo "$want" > "$stamp"
fi

# Every run (cheap, idempotent): the torchvision start-up hook; it imports nothing heavy at start-up.
SHIM_STEP='from ssvqa._torchvision_shim import write_pth; print("[bootstrap] start-up hook:", write_pth())'
"$venv/bin/python" -c "$SHIM_STEP" >&2
