#!/usr/bin/env bash
# Regenerates kjv.txt (the bundled training corpus) from Debian's bible-kjv-text package:
# one verse per line, the verse references removed. Needs: apt-get install bible-kjv bible-kjv-text
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v bible >/dev/null || { echo "extract-kjv: the 'bible' program is missing (apt-get install bible-kjv bible-kjv-text)" >&2; exit 1; }
bible -f "Gen1:1-Rev22:21" | sed -E 's/^[1-3]?[A-Za-z]+[0-9]+:[0-9]+ //' > "$here/kjv.txt.tmp"
mv "$here/kjv.txt.tmp" "$here/kjv.txt"
echo "extract-kjv: wrote $here/kjv.txt ($(wc -c < "$here/kjv.txt") bytes)" >&2
