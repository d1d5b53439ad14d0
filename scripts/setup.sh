#!/usr/bin/env bash
# Install what vae-tfp needs into ./.venv (Python 3.11).
#   bash scripts/setup.sh          runtime: TensorFlow, TFP, Keras, Streamlit, Plotly, ...
#   bash scripts/setup.sh --dev    also the test tools and Debian packages: chromium (browser test),
#                                  dataset-fashion-mnist (offline Fashion-MNIST)
# Debian packages are installed when apt-get is available and we are root (or have sudo); otherwise the script says
# what is missing and the tests that need it are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0
[ "${1:-}" = "--dev" ] && dev=1
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1

apt_packages=()
python3 -c "import ensurepip, venv" 2>/dev/null || apt_packages+=(python3-venv)
if [ "$dev" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || apt_packages+=(chromium)
  [ -d /usr/share/datasets/fashion-mnist ] || apt_packages+=(dataset-fashion-mnist)
fi
if [ "${#apt_packages[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  if command -v apt-get >/dev/null 2>&1 && { [ -z "$sudo" ] || command -v sudo >/dev/null 2>&1; }; then
    echo "setup: apt-get install ${apt_packages[*]}"
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq "${apt_packages[@]}" >/dev/null
  else
    echo "setup: please install these Debian packages: ${apt_packages[*]}" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "$dev" = 1 ]; then
  .venv/bin/python -m pip install -q -r requirements-dev.txt
else
  .venv/bin/python -m pip install -q -r requirements.txt
fi
echo "setup: done ($(.venv/bin/python --version))"
