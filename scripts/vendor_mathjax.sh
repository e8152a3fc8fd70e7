#!/usr/bin/env bash
# Serve MathJax from the book itself instead of a CDN.
#
# Sphinx points MathJax at jsdelivr by default, so offline (or behind a strict proxy)
# the book shows raw TeX. This script installs npm `mathjax@3` into the git-ignored
# `.vendor/` and copies the one bundle the book loads plus its web fonts into the
# git-ignored `_mathjax/`, which `_config.yml` adds to `html_static_path`:
#
#   _mathjax/tex-mml-chtml.js                  -> _build/html/_static/tex-mml-chtml.js
#   _mathjax/output/chtml/fonts/woff-v2/*.woff -> _build/html/_static/output/chtml/fonts/woff-v2/
#
# MathJax resolves its fonts relative to the script's own URL, so this layout needs no
# further configuration. Idempotent: does nothing when `_mathjax/` already holds the
# pinned version. Usage: scripts/vendor_mathjax.sh [--force]
set -euo pipefail

MATHJAX_VERSION="${MATHJAX_VERSION:-3.2.2}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
vendor="$root/.vendor"
out="$root/_mathjax"
stamp="$out/.version"

if [[ "${1:-}" != "--force" && -f "$stamp" && "$(cat "$stamp")" == "$MATHJAX_VERSION" \
      && -f "$out/tex-mml-chtml.js" && -d "$out/output/chtml/fonts/woff-v2" ]]; then
    exit 0
fi

src="$vendor/node_modules/mathjax/es5"
installed="$(node -p "require('$vendor/node_modules/mathjax/package.json').version" 2>/dev/null || true)"
if [[ "$installed" != "$MATHJAX_VERSION" ]]; then
    if ! command -v npm >/dev/null; then
        echo "vendor_mathjax: npm is missing; install it (Debian: apt-get install -y npm)" >&2
        exit 1
    fi
    echo "vendor_mathjax: npm install mathjax@$MATHJAX_VERSION into .vendor/"
    npm install --prefix "$vendor" "mathjax@$MATHJAX_VERSION" \
        --no-audit --no-fund --no-save --loglevel=error
fi

rm -rf "$out"
mkdir -p "$out/output/chtml/fonts"
cp "$src/tex-mml-chtml.js" "$out/"
cp -r "$src/output/chtml/fonts/woff-v2" "$out/output/chtml/fonts/"
echo "$MATHJAX_VERSION" > "$stamp"
echo "vendor_mathjax: MathJax $MATHJAX_VERSION copied into _mathjax/"
