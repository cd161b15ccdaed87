# Sourced by scripts/test.sh: Node.js for the admin stylesheet's check (scripts/admin).
# Why Debian's packages: these machines reach Debian's and npm's registries but no other download site.
ROOT_DIR="${ROOT_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"

# _node_as_root CMD...: runs CMD as root (through sudo when this shell is not root)
_node_as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# node_ensure_installed: node and npm on PATH, from Debian's nodejs and npm packages when either is missing
node_ensure_installed() {
  if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    return 0
  fi
  echo "[node] installing nodejs and npm from Debian's packages"
  _node_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  _node_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
}

# admin_css_check: fails (non-zero) when app/wwwroot/admin/tokens.css is not what scripts/admin/build-css.mjs
# generates from the pinned @shopify/polaris-tokens for the current admin.css (regenerate and commit it).
admin_css_check() {
  local dir="$ROOT_DIR/scripts/admin"
  node_ensure_installed
  # npm ci only when node_modules is missing or differs from package-lock.json (npm keeps a copy of what it
  # installed in node_modules/.package-lock.json).
  if ! node -e '
    const fs = require("fs"), dir = process.argv[1];
    const packages = (file) => JSON.parse(fs.readFileSync(`${dir}/${file}`, "utf8")).packages;
    const want = packages("package-lock.json"), have = packages("node_modules/.package-lock.json");
    const same = Object.entries(want).every(([path, p]) => path === "" ||
      (have[path] && have[path].version === p.version && have[path].integrity === p.integrity));
    process.exit(same ? 0 : 1);' "$dir" 2>/dev/null; then
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >/dev/null
  fi
  node "$dir/build-css.mjs" --check
}
