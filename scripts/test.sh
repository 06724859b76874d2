#!/usr/bin/env bash
# The test suite: installs everything it needs on first use (scripts/bootstrap.sh --dev), then runs pytest.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k folders`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh" --dev
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m pytest "$@"
