#!/usr/bin/env bash
# Screenshots of the console from a real run: target/release/ecops on the
# embedded demo (a fresh demo folder, a real catalog, a real ingest) runs in
# tmux, is driven with send-keys, captured with its colours
# (capture-pane -p -e), and rendered to PNG with aha and headless chromium.
#
#   scripts/screenshots.sh            # writes screenshots/*.png
#
# Needs tmux, aha and chromium (Debian: apt-get install -y tmux aha chromium).
# ECOPS_BIN overrides the binary (default target/release/ecops, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${ECOPS_BIN:-target/release/ecops}
[ -x "$BIN" ] || cargo build --release --bin ecops
BIN=$(realpath "$BIN")
for tool in tmux aha chromium python3; do
    command -v "$tool" >/dev/null || { echo "screenshots: $tool is missing" >&2; exit 1; }
done

OUT=screenshots
WORK=$(mktemp -d /tmp/ecops-shots.XXXXXX)
SESSION="ecops-shots-$$"
DEMO="$WORK/demo"
mkdir -p "$OUT"
cleanup() {
    tmux kill-session -t "$SESSION" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# Starts the console (embedded demo: no --base, no ECOPS_BASE, no ecops.toml here),
# $3… are extra console flags (e.g. --theme light).
start() {
    local cols=$1 rows=$2
    shift 2
    tmux new-session -d -s "$SESSION" -x "$cols" -y "$rows" -c "$WORK" \
        "env -u ECOPS_BASE ECOPS_DEMO_DIR='$DEMO' ECOPS_DEMO_RATE=${ECOPS_DEMO_RATE:-150} TERM=xterm-256color '$BIN' $*"
}
keys() { tmux send-keys -t "$SESSION" "$@"; }
screen() { tmux capture-pane -t "$SESSION" -p; }
# Waits until the screen shows $1 (a grep -E pattern), at most $2 seconds.
wait_for() {
    local deadline=$((SECONDS + $2))
    until screen | grep -Eq -- "$1"; do
        if ((SECONDS > deadline)); then
            echo "screenshots: timed out waiting for '$1'; screen:" >&2
            screen >&2
            exit 1
        fi
        sleep 0.5
    done
}
# Renders the current screen to $OUT/$1.png ($2 columns × $3 rows; $4 = light
# for a white terminal background).
shot() {
    local name=$1 cols=$2 rows=$3 bg="#000" fg="#d0d0d0" black=--black
    if [ "${4:-}" = light ]; then bg="#fff" fg="#000" black=""; fi
    tmux capture-pane -t "$SESSION" -p -e >"$WORK/$name.ansi"
    {
        printf '<!DOCTYPE html><html><head><meta charset="utf-8"><style>'
        printf 'body{margin:0;background:%s}' "$bg"
        printf 'pre{margin:6px;font-family:"DejaVu Sans Mono",monospace;font-size:14px;line-height:17px;color:%s}' "$fg"
        printf '</style></head><body><pre>'
        aha --no-header $black <"$WORK/$name.ansi"
        printf '</pre></body></html>'
    } >"$WORK/$name.html"
    # DejaVu Sans Mono at 14 px is about 8.43 px wide (rounding varies: leave
    # some slack on the right); 17 px lines; 6 px margins.
    local width=$((cols * 850 / 100 + 20)) height=$((rows * 17 + 12))
    # Headless chromium occasionally crashes on start: retry with a fresh profile.
    local attempt
    for attempt in 1 2 3; do
        rm -f "$OUT/$name.png"
        if chromium --headless --no-sandbox --disable-gpu --no-first-run \
            --disable-background-networking --disable-component-update --disable-sync \
            --hide-scrollbars --user-data-dir="$WORK/chrome-$name-$attempt" \
            --window-size="$width,$height" --screenshot="$OUT/$name.png" \
            "file://$WORK/$name.html" >/dev/null 2>&1 && [ -s "$OUT/$name.png" ]; then
            echo "screenshots: $OUT/$name.png"
            return
        fi
    done
    echo "screenshots: chromium failed to render $name" >&2
    exit 1
}
# Quits the console and waits for it to exit (it commits what is complete).
quit() {
    keys q
    local deadline=$((SECONDS + 60))
    while tmux has-session -t "$SESSION" 2>/dev/null; do
        ((SECONDS < deadline)) || { echo "screenshots: console did not exit" >&2; exit 1; }
        sleep 0.5
    done
}

# 1. Overview during the demo's live ingest (throughput history builds up).
start 160 48
wait_for 'demo-live +running' 240
sleep 20
keys 1
sleep 1
shot overview 160 48

# 2. Partitions with health and the map; 3. top cells and the map.
keys 3
sleep 1
shot partitions 160 48
keys 4
sleep 1
shot cells 160 48

# 4. A query from the form: a box over Greenland, 15 results.
keys 6 e
keys -l -- '-75,58,-10,84'
keys Down Down Down C-u
keys -l -- '15'
keys Enter
wait_for 'results .*files pruned' 60
shot query 160 48
keys 8
sleep 1
shot history 160 48

# 5. Lock: pause the demo ingest (it releases its lock), let a maintenance
# lock with a 10 s TTL go stale under the console's watch, steal it.
keys 1 j p
wait_for 'demo-live +paused' 60
GENERATION=$("$BIN" --base "$DEMO/catalog" --json lock acquire --owner nightly-backfill --ttl 10s |
    python3 -c 'import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])["generation"])')
keys 5
wait_for 'STALE' 60
keys s
keys -l -- "$GENERATION"
sleep 1
shot lock-steal 160 48
keys Enter
wait_for 'STOLEN|REFUSED' 30
shot lock-stolen 160 48
keys Escape
quit

# 6. The same console at 80×24 (compact layout: short tabs), a few seconds into a
# fresh demo; its partitions.
start 80 24
wait_for 'demo-live +running' 240
sleep 12
shot overview-80x24 80 24
keys 3
sleep 1
shot partitions-80x24 80 24
quit

# 7. Themes: light on a white background, ansi (16 colours) — Overview and Partitions.
start 160 48 --theme light
wait_for 'demo-live +running' 240
sleep 10
shot overview-light 160 48 light
quit
start 160 48 --theme ansi
wait_for 'demo-live +running' 240
sleep 10
keys 3
sleep 1
shot partitions-ansi 160 48
quit

# 8. A headless ingest started elsewhere (its own process, like cron or nohup
# would), watched from a read-only console: Jobs lists it as an external run.
"$BIN" demo-data --items 100000 --out "$WORK/ext-data" >/dev/null
"$BIN" init --base "$WORK/ext" >/dev/null
"$BIN" --heartbeat 1s ingest --base "$WORK/ext" --inventory "$WORK/ext-data/inventory/inventory.csv" \
    --items-root "$WORK/ext-data/items" --chunk-size 2000 --concurrency 2 >"$WORK/ext.log" 2>&1 &
EXT_PID=$!
start 160 48 --base "$WORK/ext" --read-only
wait_for 'pid [0-9]+' 60
keys 2
sleep 4
shot jobs-external 160 48
quit
kill "$EXT_PID" 2>/dev/null || true
wait "$EXT_PID" 2>/dev/null || true

# 9. Backfill: a local-engine backfill of freshly generated items onto the demo
# catalog (the demo ingest paused first, so the commit finds the lock free):
# the Backfill view mid-map with its workers, then committed.
start 160 48
wait_for 'demo-live +running' 240
keys 1 j p
wait_for 'demo-live +paused' 60
"$BIN" demo-data --items "${ECOPS_BACKFILL_ITEMS:-6000}" --out "$WORK/bf-data" >/dev/null
"$BIN" --base "$DEMO/catalog" backfill submit --engine local --skip-known \
    --inventory "$WORK/bf-data/inventory/inventory.csv" --items-root "$WORK/bf-data/items" \
    --chunk-size 200 --tasks 4 --max-parallel 2 --workdir "$WORK/bf-work" --json \
    >"$WORK/backfill.json" 2>"$WORK/backfill.log" &
BACKFILL_PID=$!
keys 9
wait_for 'mapping|reducing|committ' 120
sleep 2
shot backfill 160 48
wait_for 'committed' 300
shot backfill-committed 160 48
wait "$BACKFILL_PID" || { echo "screenshots: the backfill failed:" >&2; cat "$WORK/backfill.log" >&2; exit 1; }
quit
