#!/usr/bin/env bash
# Builds the book in docs/ (mdBook) into docs/book/, and fails on any warning mdbook prints (a
# missing page, a broken include) and on any link of the book or the README to a page, file or
# anchor that does not exist. mdbook 0.5.4 is installed from crates.io into .tools/ (git-ignored)
# the first time. Also used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

MDBOOK_VERSION=0.5.4
mdbook=.tools/bin/mdbook
if ! [ -x "$mdbook" ] || ! "$mdbook" --version | grep -q " v$MDBOOK_VERSION\$"; then
    echo "docs: installing mdbook $MDBOOK_VERSION into .tools/ (a few minutes, once)"
    cargo install mdbook --version "$MDBOOK_VERSION" --locked --no-default-features --features search \
        --root .tools
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! "$mdbook" build docs >"$log" 2>&1; then
    cat "$log"
    echo "docs: mdbook build failed" >&2
    exit 1
fi
if grep -Ev '^ *INFO ' "$log" | grep -q .; then
    cat "$log"
    echo "docs: mdbook printed warnings (above); the book must build cleanly" >&2
    exit 1
fi

# Links: every relative link in the built pages must reach a page and, with #anchor, a heading
# of it; every relative link of the README must reach a file.
python3 - docs/book README.md <<'PY'
import html, os, re, sys

book, readme = sys.argv[1], sys.argv[2]
bad, ids = [], {}


def anchors(path):
    if path not in ids:
        ids[path] = set(re.findall(r'\bid="([^"]+)"', open(path, encoding="utf-8").read()))
    return ids[path]


for root, _, files in os.walk(book):
    for name in files:
        if not name.endswith(".html") or name in ("print.html", "404.html", "toc.html"):
            continue
        page = os.path.join(root, name)
        main = open(page, encoding="utf-8").read().split("<main>", 1)[-1].split("</main>", 1)[0]
        for href in re.findall(r'href="([^"]+)"', main):
            href = html.unescape(href)
            if re.match(r"^[a-z]+:", href) or href.startswith("//"):
                continue
            path, _, anchor = href.partition("#")
            target = os.path.normpath(os.path.join(root, path)) if path else page
            where = os.path.relpath(page, book)
            if not os.path.exists(target):
                bad.append(f"{where}: link to a missing page: {href}")
            elif anchor and target.endswith(".html") and anchor not in anchors(target):
                bad.append(f"{where}: link to a missing heading: {href}")

for href in re.findall(r"\]\(([^)\s]+)\)", open(readme, encoding="utf-8").read()):
    path = href.partition("#")[0]
    if path and not re.match(r"^[a-z]+:", path) and not os.path.exists(path):
        bad.append(f"{readme}: link to a missing file: {href}")

for line in bad:
    print(f"docs: {line}", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
echo "docs: built docs/book/index.html"
