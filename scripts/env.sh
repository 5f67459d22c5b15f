# Source this file: it installs Node.js 24 LTS from the npm registry into ./.tools (git-ignored)
# when it is missing and puts it first on PATH, so npm, tests and tools all run on Node 24.
#   source scripts/env.sh
_warden_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
_warden_tools="$_warden_root/.tools"
if [ ! -x "$_warden_tools/node_modules/node/bin/node" ]; then
  echo "warden: installing Node.js 24 into $_warden_tools" >&2
  mkdir -p "$_warden_tools"
  npm install --prefix "$_warden_tools" --no-audit --no-fund --loglevel=error node@24 >&2 || return 1 2>/dev/null || exit 1
fi
case ":$PATH:" in
  *":$_warden_tools/node_modules/node/bin:"*) ;;
  *) export PATH="$_warden_tools/node_modules/node/bin:$PATH" ;;
esac
unset _warden_root _warden_tools
