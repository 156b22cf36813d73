#!/usr/bin/env bash
# Install ngspice (>= 45, built with OSDI) and libngspice from Debian's
# bookworm-backports suite. The suite is added by reusing the mirror that the
# machine's apt sources already name, so no host is hard-coded here.
# Idempotent: does nothing when a suitable ngspice is already installed.
set -euo pipefail

MIN_MAJOR=45

have_ngspice() {
    command -v ngspice >/dev/null 2>&1 || return 1
    local v
    v=$(ngspice -v 2>/dev/null | sed -n 's/.*ngspice-\([0-9][0-9]*\).*/\1/p' | head -n1)
    [ -n "$v" ] && [ "$v" -ge "$MIN_MAJOR" ] || return 1
    ldconfig -p 2>/dev/null | grep -q 'libngspice\.so\.0' || return 1
}

if have_ngspice; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo"
    else
        echo "circuitkit setup: ngspice >= $MIN_MAJOR with OSDI is missing and this user cannot install it." >&2
        echo "Run as root:  sudo bash scripts/setup-toolchain.sh" >&2
        exit 1
    fi
fi

# Find the Debian mirror for the main bookworm suite in deb822 or one-line sources.
mirror=""
keyring=""
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    # deb822: take the URIs of the stanza whose Suites include plain "bookworm".
    read -r mirror keyring < <(awk '
        BEGIN { RS=""; FS="\n" }
        {
            uri=""; suites=""; key=""
            for (i = 1; i <= NF; i++) {
                if ($i ~ /^URIs:/)      { sub(/^URIs:[ \t]*/, "", $i); split($i, u, " "); uri=u[1] }
                if ($i ~ /^Suites:/)    { suites=" " $i " " }
                if ($i ~ /^Signed-By:/) { sub(/^Signed-By:[ \t]*/, "", $i); key=$i }
            }
            if (suites ~ / bookworm / && uri != "") { print uri, key; exit }
        }' /etc/apt/sources.list.d/debian.sources) || true
fi
if [ -z "$mirror" ]; then
    mirror=$(grep -hE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
        | grep -E '[[:space:]]bookworm[[:space:]]' | grep -v security \
        | awk '{ for (i = 2; i <= NF; i++) if ($i !~ /^\[/) { print $i; exit } }' | head -n1) || true
fi
if [ -z "$mirror" ]; then
    echo "circuitkit setup: could not find the Debian bookworm mirror in the apt sources." >&2
    exit 1
fi
[ -n "$keyring" ] || keyring=/usr/share/keyrings/debian-archive-keyring.gpg

list=/etc/apt/sources.list.d/circuitkit-backports.sources
if [ ! -f "$list" ]; then
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' \
        "$mirror" "$keyring" | $SUDO tee "$list" >/dev/null
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq -t bookworm-backports ngspice libngspice0 >/dev/null
have_ngspice || { echo "circuitkit setup: ngspice from bookworm-backports is still not usable" >&2; exit 1; }
echo "circuitkit setup: $(ngspice -v 2>/dev/null | grep -o 'ngspice-[0-9]*' | head -n1) installed"
