#!/usr/bin/env bash
# Screenshots of the browser app (not part of CI): `ssvqa app` with a trained ranker, opened with
# two videos already scored (one of them heavily distorted in its second half, scored per second)
# and compared, photographed by headless Chromium.
#
#   bash scripts/screenshot_app.sh [MODEL_DIR [OUT_DIR]] [-- EXTRA APP OPTIONS]
#
# MODEL_DIR defaults to the newest outputs/tiny-rounds/round-*/model (run `bash run.sh demo`
# first); it needs its anchors.json. OUT_DIR defaults to screenshots/. Needs Debian's chromium
# (`apt-get install -y chromium`), ffmpeg, and ssvqa[app] in .venv (or PYTHON=...).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-$root/.venv/bin/python}
model=${1:-}
out=${2:-screenshots}
extra=()
if [ $# -gt 2 ] && [ "$3" = "--" ]; then extra=("${@:4}"); fi
if [ -z "$model" ]; then
    model=$(ls -d "$root"/outputs/tiny-rounds/round-*/model 2>/dev/null | sort -t- -k3 -n | tail -1)
fi
[ -f "$model/anchors.json" ] || { echo "no anchors.json in '$model': pass a trained model folder (bash run.sh demo makes one)" >&2; exit 1; }
command -v chromium >/dev/null || { echo "chromium is missing: apt-get install -y chromium" >&2; exit 1; }
mkdir -p "$out"
work=$(mktemp -d)
trap 'kill "$app_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

# Two 6 s clips of one generated content (ssvqa.corpus): clean, and with its second half at the
# heaviest level of a distortion of ssvqa.distortions (DISTORTION, default exposure: the one the
# demo's model learns).
"$python" - "$work" "${DISTORTION:-exposure}" <<'PY'
import subprocess, sys
from pathlib import Path
from ssvqa.corpus import make_corpus
from ssvqa.distortions import Variant, ladder, render_variants

work, name = Path(sys.argv[1]), sys.argv[2]
source = make_corpus(work / "corpus", num_clips=1, seed=11, duration=6.0, size=(320, 240))[0]
clean, heavy = render_variants(source, [Variant(()), ladder(name)[-1]], work / "variants")
subprocess.run(["cp", str(clean), str(work / "clean.mp4")], check=True)
subprocess.run([
    "ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(clean), "-i", str(heavy), "-filter_complex",
    "[0:v]trim=0:3,setpts=PTS-STARTPTS[a];[1:v]trim=3:6,setpts=PTS-STARTPTS[b];[a][b]concat=n=2:v=1[v]",
    "-map", "[v]", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(work / f"{name}-second-half.mp4"),
], check=True)
PY
second=$(ls "$work"/*-second-half.mp4)

port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_DISABLE_TELEMETRY=1 HF_HUB_OFFLINE=1
"$python" -m ssvqa.cli app --model "$model" --port "$port" \
    --preload "$work/clean.mp4" "$second" --preload-segments 1 "${extra[@]}" \
    > "$work/app.log" 2>&1 &
app_pid=$!
for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$port/" >/dev/null && break
    kill -0 "$app_pid" 2>/dev/null || { cat "$work/app.log" >&2; exit 1; }
    sleep 0.5
done

# The results were computed before the server started: the shot waits only for the page to render.
shot() {  # shot NAME HEIGHT
    chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
        --window-size=1280,"$2" --virtual-time-budget=15000 --screenshot="$out/$1.png" \
        "http://127.0.0.1:$port/" 2>/dev/null
}
shot app 2600
echo "wrote $out/app.png" >&2
