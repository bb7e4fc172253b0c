#!/usr/bin/env python3
"""The options table of docs/operations.md is the one tetherd generates.

`tetherd --print-options-markdown` renders the node's and the gateway's option tables
(name, default, bounds, description: libactors/node/node_options.cpp and
services/tetherd/gateway_options.cpp). This test fails, with a diff, when the table
between the markers in docs/operations.md differs from it; `--update` rewrites the
docs instead.
"""

import argparse
import difflib
import pathlib
import subprocess
import sys

BEGIN = "<!-- options-table:begin"
END = "<!-- options-table:end -->"


def split(text):
    """Returns (before, table, after) around the markers; before ends with BEGIN's line."""
    lines = text.splitlines(keepends=True)
    begin = [i for i, line in enumerate(lines) if line.startswith(BEGIN)]
    end = [i for i, line in enumerate(lines) if line.startswith(END)]
    if len(begin) != 1 or len(end) != 1 or end[0] < begin[0]:
        raise SystemExit(f"docs: expected one '{BEGIN} ...' line and one '{END}' line after it")
    b, e = begin[0], end[0]
    return "".join(lines[: b + 1]), "".join(lines[b + 1 : e]), "".join(lines[e:])


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tetherd", required=True, help="path of the tetherd binary")
    ap.add_argument("--docs", required=True, help="path of docs/operations.md")
    ap.add_argument("--update", action="store_true", help="rewrite the docs' table")
    args = ap.parse_args()
    generated = subprocess.run([args.tetherd, "--print-options-markdown"], check=True,
                               capture_output=True, text=True, timeout=60).stdout
    docs = pathlib.Path(args.docs)
    before, table, after = split(docs.read_text(encoding="utf-8"))
    if table == generated:
        print("options table of docs/operations.md matches tetherd --print-options-markdown")
        print("1 passed, 0 failed")
        return 0
    if args.update:
        docs.write_text(before + generated + after, encoding="utf-8")
        print(f"rewrote the options table of {docs}")
        return 0
    sys.stdout.writelines(difflib.unified_diff(
        table.splitlines(keepends=True), generated.splitlines(keepends=True),
        "docs/operations.md", "tetherd --print-options-markdown"))
    print("\nthe options table of docs/operations.md differs from the option tables; "
          "regenerate it with: python3 tests/docs/options_table_test.py "
          "--tetherd build/bin/tetherd --docs docs/operations.md --update")
    print("0 passed, 1 failed")
    return 1


if __name__ == "__main__":
    sys.exit(main())
