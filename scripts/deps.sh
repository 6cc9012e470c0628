# Sourced after node24.sh: installs node_modules from the lockfile when it is
# missing or older than the lockfile.
_turnout_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_stamp="$_turnout_root/node_modules/.turnout-lock-stamp"
if [ ! -f "$_stamp" ] || ! cmp -s "$_turnout_root/package-lock.json" "$_stamp"; then
  echo "turnout: installing dependencies (npm ci)" >&2
  (cd "$_turnout_root" && npm ci --no-audit --no-fund --loglevel=error >&2) || { echo "turnout: npm ci failed" >&2; return 1 2>/dev/null || exit 1; }
  cp "$_turnout_root/package-lock.json" "$_stamp"
fi
