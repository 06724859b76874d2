#!/usr/bin/env bash
# Installs what Whisper Studio needs, once, and again only when requirements change:
#   system packages through apt (espeak-ng, ffmpeg, libsndfile; with --dev also chromium + chromedriver),
#   a virtual environment in .venv, and the pinned Python packages.
# Sourced by scripts/run.sh and scripts/test.sh; safe to run again (it checks before it installs).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEV=0
[ "${1:-}" = "--dev" ] && DEV=1

missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
# grep reads all of ldconfig's output (no -q): with pipefail an early exit would fail ldconfig with SIGPIPE
ldconfig -p 2>/dev/null | grep 'libsndfile\.so\.1' >/dev/null || missing+=(libsndfile1)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
if [ "$DEV" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo"
  else
    echo "error: missing system packages: ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: missing system packages: ${missing[*]}; this is no Debian/Ubuntu system, install them with your package manager" >&2
    exit 1
  fi
  echo "installing system packages: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

VENV="$ROOT/.venv"
REQ="$ROOT/requirements.txt"
[ "$DEV" = 1 ] && REQ="$ROOT/requirements-dev.txt"
STAMP="$VENV/.installed-$(basename "$REQ")"
# what a stamp holds: the hash of the requirements an install was made from
requirements_hash() { cat "$ROOT/requirements.txt" "$ROOT/pyproject.toml" "$1" | sha256sum | cut -c1-16; }
WANT="$(requirements_hash "$REQ")"
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating the virtual environment in .venv" >&2
  python3 -m venv "$VENV"
fi
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "installing Python packages from $(basename "$REQ") (first run takes a few minutes)" >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q -r "$REQ"
  # the project itself, editable: `core` and `app` import from anywhere and `whisper-studio` is on the venv's PATH
  if ! out=$("$VENV/bin/python" -m pip install -q --no-deps -e "$ROOT" 2>&1); then echo "$out" >&2; exit 1; fi
  echo "$WANT" > "$STAMP"
  # requirements-dev.txt includes requirements.txt: the app's own check (scripts/run.sh) has nothing left to do
  if [ "$DEV" = 1 ]; then
    requirements_hash "$ROOT/requirements.txt" > "$VENV/.installed-requirements.txt"
  fi
fi
