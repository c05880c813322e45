#!/usr/bin/env bash
# The README's two commands. Each installs whatever is missing first (Debian's ffmpeg, a
# virtual environment in .venv with the pinned packages), then:
#   bash run.sh demo   runs the main job on its embedded CPU default
#   bash run.sh test   runs the test suite (what .ci/run calls)
# Extra arguments go to the job (demo) or to pytest (test).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
job=${1:-}
[ $# -gt 0 ] && shift
case "$job" in
    demo)
        bash scripts/bootstrap.sh
        exec .venv/bin/python -m ssvqa.demo "$@"
        ;;
    test)
        bash scripts/bootstrap.sh
        # Each worker gets one BLAS thread: tests run in parallel and ffmpeg has its own threads.
        export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} TOKENIZERS_PARALLELISM=false
        exec .venv/bin/python -m pytest -n "${SSVQA_TEST_WORKERS:-2}" "$@"
        ;;
    *)
        echo "usage: bash run.sh demo [ARGS...] | bash run.sh test [PYTEST ARGS...]" >&2
        exit 2
        ;;
esac
