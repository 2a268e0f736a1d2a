# Shared set-up for the entry points: a venv under the repo and the Debian packages listed in
# scripts/apt-packages.txt. Sourced, not run. Idempotent and quiet when nothing is missing.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
export PIP_DISABLE_PIP_VERSION_CHECK=1

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ensure_apt() {
    local wanted missing=()
    wanted=$(sed -e 's/#.*//' "$REPO/scripts/apt-packages.txt" | tr -s ' \n' ' ')
    for pkg in $wanted; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing Debian packages: ${missing[*]}"
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_venv() {
    local stamp="$VENV/.installed-$(sha256sum "$REPO/pyproject.toml" | cut -c1-16)"
    [ -f "$stamp" ] && return 0
    say "preparing $VENV"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
    "$VENV/bin/pip" install -q -e "$REPO[dev]" 2>&1 | grep -vE '^WARNING: Location|^ +|^!!|^\*+$' || true
    "$VENV/bin/python" -c 'import app, infra, fastapi, pyinfra, hcloud' # fail loudly if the install did not take
    rm -f "$VENV"/.installed-*
    touch "$stamp"
}

ensure_all() {
    ensure_apt
    ensure_venv
    export PATH="$VENV/bin:$PATH"
}
