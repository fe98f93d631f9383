#!/usr/bin/env bash
# Regenerate constraints.txt: the newest releases inside pyproject.toml's ranges today,
# resolved by pip for every extra CI installs. scripts/test.sh installs with
# `-c constraints.txt`, so CI is reproducible; run this when a range moves or to take newer
# releases, then run ./scripts/test.sh and commit the file.
set -euo pipefail
cd "$(dirname "$0")/.."

extras="cli,test,postgres,metrics,redis,serve"
report="$(mktemp /tmp/pushwire-constraints.XXXXXX.json)"
trap 'rm -f "$report"' EXIT

# --ignore-installed: resolve as on a fresh machine, whatever this one has installed.
python3 -m pip install --quiet --disable-pip-version-check --no-cache-dir \
    --dry-run --ignore-installed --report "$report" ".[$extras]"

python3 - "$report" "$extras" > constraints.txt <<'PY'
import datetime
import json
import sys

report, extras = sys.argv[1], sys.argv[2]
pins = sorted(
    (item["metadata"]["name"].lower(), item["metadata"]["version"])
    for item in json.load(open(report))["install"]
    if item["metadata"]["name"].lower() != "pushwire"
)
today = datetime.date.today().isoformat()
print(f"# What CI installs: the newest releases inside pyproject's ranges on {today}, resolved for")
print(f"# pushwire[{extras}]. scripts/test.sh installs with `-c constraints.txt` so a")
print("# run is reproducible; refresh it with scripts/refresh-constraints.sh when a range moves.")
for name, version in pins:
    print(f"{name}=={version}")
PY
echo "constraints.txt: $(grep -vc '^#' constraints.txt) pins" >&2
