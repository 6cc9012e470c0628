# Sourced by the other scripts: puts a Node.js >= 24 first on PATH.
# The product targets Node 24 LTS; when the system node is older (this machine
# ships Node 20) the npm registry's `node` package brings the 24 binary into
# .cache/node24, once. Nothing outside the repository is changed.
_turnout_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_turnout_node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(_turnout_node_major node)" -lt 24 ]; then
  _turnout_n24="$_turnout_root/.cache/node24"
  if [ ! -x "$_turnout_n24/node_modules/node/bin/node" ] || [ "$(_turnout_node_major "$_turnout_n24/node_modules/node/bin/node")" -lt 24 ]; then
    echo "turnout: system node is $(node --version 2>/dev/null || echo missing); installing Node 24 from the npm registry into .cache/node24" >&2
    mkdir -p "$_turnout_n24"
    npm install --silent --no-save --no-audit --no-fund --prefix "$_turnout_n24" node@24 >&2
  fi
  mkdir -p "$_turnout_n24/bin"
  ln -sf "$_turnout_n24/node_modules/node/bin/node" "$_turnout_n24/bin/node"
  export PATH="$_turnout_n24/bin:$PATH"
fi
if [ "$(_turnout_node_major node)" -lt 24 ]; then
  echo "turnout: could not provide Node.js >= 24 (have $(node --version))" >&2
  return 1 2>/dev/null || exit 1
fi
