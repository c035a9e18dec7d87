#!/usr/bin/env bash
# The package as a user installs it: the wheel built from this checkout, installed with pip into a fresh venv
# outside it (its dependencies resolved as a user's pip resolves them), then used from an empty directory: --help, extract with the mock
# LLM, train, predict, and serve until /readyz answers 200 and / serves the page. Exits non-zero on any
# failure. Run by .ci/run; about a minute once pip's cache is warm.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
serve_pid=""
cleanup() { [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

echo "--- wheel: build"
"$repo/.venv/bin/python" -m pip wheel --quiet --no-deps -w "$work/dist" "$repo"
wheel="$(ls "$work"/dist/hybrid_scorer-*.whl)"
# grep without -q reads the whole listing: -q would close the pipe early and pipefail would fail the writer
python3 -m zipfile -l "$wheel" | grep "hybrid_scorer/prompts/assessment_v2/system.txt" >/dev/null

echo "--- wheel: install into a fresh venv outside the checkout"
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "$wheel"
bin="$work/venv/bin"

echo "--- wheel: use it from an empty directory"
mkdir "$work/empty" && cd "$work/empty"
(cd "$repo" && .venv/bin/python -c "from tests.conftest import synthetic_frame; synthetic_frame().to_csv('$work/posts.csv', index=False)")
export MLFLOW_TRACKING_URI="sqlite:///$work/empty/mlflow.db"
"$bin/hybrid-scorer" --help >/dev/null
"$bin/hybrid-scorer" extract --data "$work/posts.csv" --llm mock --limit 5 -q
"$bin/hybrid-scorer" train --data "$work/posts.csv" --llm none -q --out models
"$bin/hybrid-scorer" predict --model models --title "Why is the sky blue?" --body ""
port="$("$bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$bin/hybrid-scorer" serve --model models --port "$port" 2>"$work/serve.log" &
serve_pid=$!
for _ in $(seq 120); do
  if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
    curl -fsS "http://127.0.0.1:$port/" | grep "Score a draft" >/dev/null && curl -fsS "http://127.0.0.1:$port/page/page.js" >/dev/null
    echo "wheel: installed outside the checkout, /readyz 200 and the page served"
    exit 0
  fi
  kill -0 "$serve_pid" 2>/dev/null || break
  sleep 0.5
done
echo "wheel: serve did not become ready" >&2
tail -20 "$work/serve.log" >&2
exit 1
