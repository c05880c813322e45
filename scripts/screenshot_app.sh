#!/usr/bin/env bash
# Screenshots of the browser app (not part of CI): `ssvqa app` with a trained ranker, opened with
# two videos already scored (one of them with a heavily blurred second half, scored per second)
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

# Two 6 s clips of the same content: clean, and with its second half heavily blurred.
ffmpeg -nostdin -loglevel error -y -f lavfi -i "testsrc2=size=320x240:rate=10" -t 6 -c:v libx264 -pix_fmt yuv420p "$work/clean.mp4"
ffmpeg -nostdin -loglevel error -y -i "$work/clean.mp4" -vf "gblur=sigma=12:enable='gte(t,3)'" -c:v libx264 -pix_fmt yuv420p "$work/blurred-second-half.mp4"

port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_DISABLE_TELEMETRY=1 HF_HUB_OFFLINE=1
"$python" -m ssvqa.cli app --model "$model" --port "$port" \
    --preload "$work/clean.mp4" "$work/blurred-second-half.mp4" --preload-segments 1 "${extra[@]}" \
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
