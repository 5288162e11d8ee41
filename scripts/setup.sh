# Sourced by scripts/run and scripts/test: the virtualenv with the project installed, and the
# local folders of the default configuration. Safe to run again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "csv_pipeline needs Python 3.11 or newer; set PYTHON to one." >&2; exit 1; }
  "$PYTHON" -m venv .venv
fi
# Reinstall (and recompile the engine's C++ loops) only when they or the dependencies changed.
stamp=".venv/.csv_pipeline-$(cat setup.py pyproject.toml csv_pipeline/engine/_kernels.cpp | sha1sum | cut -c1-12)"
if [ ! -e "$stamp" ]; then
  .venv/bin/python -m pip install --quiet -e ".[dev]"
  rm -f .venv/.csv_pipeline-*
  touch "$stamp"
fi

export DAGSTER_HOME=${DAGSTER_HOME:-$PWD/.dagster_home}
mkdir -p "$DAGSTER_HOME" data/inbox data/outbox
[ -e "$DAGSTER_HOME/dagster.yaml" ] || printf 'telemetry:\n  enabled: false\n' > "$DAGSTER_HOME/dagster.yaml"
