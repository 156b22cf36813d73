#!/usr/bin/env bash
# Peak resident memory of `circuitkit generate` on an N x N 1R crossbar (default 2048), measured with
# /usr/bin/time -v; fails when it exceeds LIMIT_MB (default 1024). Usage: scripts/render-memory.sh [N] [ENGINE]
set -euo pipefail
N="${1:-2048}"
ENGINE="${2:-spice}"
LIMIT_MB="${LIMIT_MB:-1024}"
CK="${CK:-.venv/bin/circuitkit}"
OUT="build/render-memory"
mkdir -p "$OUT"
cat > "$OUT/read.xbar" <<XBAR
title "render memory: N x N 1R read"
param n = 64
crossbar xb {
    rows = n; cols = n; cell = 1R
    device = vteam(iv = 0, ron = 10k, roff = 100k, voff = 0.5, von = -0.5)
    state = uniform(0.0, 1.0, seed = 11)
}
wires { r_row = 2.5; r_col = 2.5 }
driver rows { r_out = 10 }
sense cols { tia = ideal(rf = 500) }
stimulus { duration = 20n
    read = fill(n, 0.1) }
analysis op()
record column_currents
XBAR
/usr/bin/time -v $CK generate "$OUT/read.xbar" --set "n=$N" --engine "$ENGINE" -o "$OUT/read-$N.deck" 2> "$OUT/time.log"
RSS_KB=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$OUT/time.log")
WALL=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$OUT/time.log")
SIZE=$(stat -c %s "$OUT/read-$N.deck")
rm -f "$OUT/read-$N.deck"
echo "generate ${N}x${N} ($ENGINE): peak RSS $((RSS_KB / 1024)) MB, wall $WALL, netlist $((SIZE / 1000000)) MB (limit ${LIMIT_MB} MB)"
test "$((RSS_KB / 1024))" -le "$LIMIT_MB"
