#!/usr/bin/env bash
# Starts Whisper Studio: installs everything on first use (scripts/bootstrap.sh), then opens the app on
# http://localhost:8501 (localhost only; set STUDIO_ADDRESS=0.0.0.0 to listen on the network, STUDIO_PORT to move it).
# Until the app is built, it runs the offline demo pipeline from the command line instead.
# `bash scripts/run.sh cli ARGS…` runs the command line (`python -m core ARGS…`) in the same environment.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
if [ "${1:-}" = "cli" ]; then
  shift
  exec "$ROOT/.venv/bin/python" -m core "$@"
fi
if [ -f "$ROOT/app/main.py" ]; then
  # the rest of the settings (headless, no usage statistics, no Deploy button, one script thread per tab) are in
  # .streamlit/config.toml, read from this folder, so `streamlit run app/main.py` gets them too
  exec "$ROOT/.venv/bin/streamlit" run "$ROOT/app/main.py" \
    --server.address "${STUDIO_ADDRESS:-127.0.0.1}" --server.port "${STUDIO_PORT:-8501}" "$@"
fi
exec "$ROOT/.venv/bin/python" -m core demo --language "${STUDIO_DEMO_LANGUAGE:-nb}"
