#!/usr/bin/env bash
# The llmux demo: installs what is missing, builds, starts the bundled provider
# simulator on a free loopback port, makes the first target of the alias fail,
# and sends a few requests through it. No API keys needed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/tools/setup.sh"
"$root/tools/build.sh" "$root/build" >/dev/null

work=$(mktemp -d)
"$root/build/bin/llmux-sim" --port 0 --port-file "$work/port" --quiet &
sim=$!
trap 'kill $sim 2>/dev/null; wait $sim 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
port=$(cat "$work/port")
url="http://127.0.0.1:$port"

# The primary provider answers 503 to every call: the alias falls back.
curl -sf -X PUT "$url/_sim/deployments/primary" \
     -d '{"faults":[{"type":"status","status":503,"count":-1}]}' >/dev/null

cat >"$work/llmux.json" <<JSON
{
  "providers": {
    "primary": {"type": "openai", "base_url": "$url/primary/v1"},
    "backup":  {"type": "openai", "base_url": "$url/backup/v1"}
  },
  "models": {
    "smart": {"targets": [{"provider": "primary", "model": "gpt-4o"},
                          {"provider": "backup",  "model": "llama-3.1-70b"}]}
  },
  "defaults": {"timeout_ms": 10000}
}
JSON
echo "simulator on $url; config:"
cat "$work/llmux.json"
echo
${LLMUX_DEMO_WRAPPER:-} "$root/build/bin/llmux-demo" "$work/llmux.json" smart
