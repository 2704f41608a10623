#!/usr/bin/env bash
# Registers tools/solc-bridge.cjs as "solc-v<version>" where py-solc-x looks for installed
# compilers (SOLCX_BINARY_PATH, else ~/.solcx), so `ape compile` needs no download.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=$(node -p "require('$root/node_modules/solc/package.json').version")
configured=$(sed -n 's/^  version: \([0-9.]*\).*/\1/p' "$root/ape-config.yaml" | head -n1)
if [ "$version" != "$configured" ]; then
  echo "solc-js $version (package.json) differs from solidity.version $configured (ape-config.yaml)" >&2
  exit 1
fi
dir=${SOLCX_BINARY_PATH:-$HOME/.solcx}
mkdir -p "$dir"
target="$dir/solc-v$version"
cat > "$target.tmp" <<SH
#!/bin/sh
exec node "$root/tools/solc-bridge.cjs" "\$@"
SH
chmod +x "$target.tmp"
mv "$target.tmp" "$target"
"$target" --version | grep -q "$version" || { echo "bridge at $target does not answer --version" >&2; exit 1; }
echo "$target"
