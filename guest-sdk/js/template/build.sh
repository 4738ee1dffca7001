#!/usr/bin/env bash
# Builds app.js (next to this script) into a component: ./build.sh [OUT.wasm]  (default filter.wasm)
# ./build.sh --test runs the unit tests (test_*.js) outside a component, with node --test.
# Needs Node.js, ComponentizeJS (Vigil's scripts/setup.sh installs it into target/js-tools) and a
# checkout of Vigil: the one this project was made from, or the one named by VIGIL_REPO.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=${VIGIL_REPO:-$here/../../..}
if [ ! -x "$repo/scripts/build-js-guest.sh" ]; then
    echo "build.sh: no Vigil checkout at $repo; set VIGIL_REPO=/path/to/vigil" >&2
    exit 1
fi
if [ "${1:-}" = "--test" ]; then
    exec "$repo/scripts/build-js-guest.sh" --test "$here"
fi
exec "$repo/scripts/build-js-guest.sh" "$here" "${1:-$here/filter.wasm}"
