# Sourced by scripts/test.sh: what the storefront tests need besides .NET and PostgreSQL.
# Why Debian's chromium: Playwright's own browser download cannot reach its CDN from these machines; the
# Microsoft.Playwright driver runs Debian's build through ExecutablePath.
ROOT_DIR="${ROOT_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
source "$ROOT_DIR/scripts/lib/node.sh"

# browser_ensure_installed -> exports CHROMIUM_PATH
browser_ensure_installed() {
  if [ ! -x /usr/bin/chromium ]; then
    echo "[browser] installing chromium from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  fi
  export CHROMIUM_PATH=/usr/bin/chromium
  # Why: the driver must never try to download a browser of its own.
  export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
}

# theme_tools_install: Theme Check, liquidjs and Terser, exactly as pinned in scripts/theme/package-lock.json
theme_tools_install() {
  node_ensure_installed
  npm ci --prefix "$ROOT_DIR/scripts/theme" --no-audit --no-fund --loglevel=error >/dev/null
}

# theme_check: fails (non-zero) when a block script in theme-extension/assets is not what its source in
# scripts/theme/src builds to, or on any error-severity offense in theme-extension/
# Why the two variables: Theme Check's docs updater (@shopify/theme-check-docs-updater) fetches the latest
# theme-liquid-docs from GitHub, with no timeout, into $XDG_CACHE_HOME/theme-liquid-docs-nodejs, and prefers that
# copy to the data in the pinned package. With SHOPIFY_TLD_ROOT set it reads files under that folder instead of
# fetching; the folder is left empty, so every read fails at once and the check uses the package's own data. The
# cache is a fresh folder under .run/ on each run, so no copy from an earlier download can take precedence.
theme_check() {
  local dir="$ROOT_DIR/.run/theme-check"
  rm -rf "$dir" && mkdir -p "$dir/cache" "$dir/no-docs" || return 1
  node "$ROOT_DIR/scripts/theme/build.mjs" --check &&
  XDG_CACHE_HOME="$dir/cache" SHOPIFY_TLD_ROOT="$dir/no-docs" \
    node "$ROOT_DIR/scripts/theme/theme-check.mjs" "$ROOT_DIR/theme-extension"
}
