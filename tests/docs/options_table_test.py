#!/usr/bin/env python3
"""The options table of docs/operations.md is the one tetherd generates.

`tetherd --print-options-markdown` renders the node's and the gateway's option tables
(name, default, bounds, description: libactors/node/node_options.cpp and
libactors/gateway/gateway_options.cpp). This test fails, with a diff, when the table
between the markers in docs/operations.md differs from it; `--update` rewrites the
docs instead.

    python3 -m pytest -p no:cacheprovider tests/docs/options_table_test.py \
        --tetherd build/bin/tetherd --docs docs/operations.md [--update]

Run as a script it takes the same options (and runs this test with pytest):
    python3 tests/docs/options_table_test.py --tetherd build/bin/tetherd \
        --docs docs/operations.md --update
"""

import difflib
import pathlib
import subprocess
import sys

import pytest

BEGIN = "<!-- options-table:begin"
END = "<!-- options-table:end -->"


def split(text):
    """Returns (before, table, after) around the markers; before ends with BEGIN's line."""
    lines = text.splitlines(keepends=True)
    begin = [i for i, line in enumerate(lines) if line.startswith(BEGIN)]
    end = [i for i, line in enumerate(lines) if line.startswith(END)]
    assert len(begin) == 1 and len(end) == 1 and end[0] > begin[0], \
        f"docs: expected one '{BEGIN} ...' line and one '{END}' line after it"
    b, e = begin[0], end[0]
    return "".join(lines[: b + 1]), "".join(lines[b + 1 : e]), "".join(lines[e:])


def test_options_table(tetherd, docs_path, request):
    """The table between the markers equals `tetherd --print-options-markdown`."""
    generated = subprocess.run([tetherd, "--print-options-markdown"], check=True,
                               capture_output=True, text=True, timeout=60).stdout
    docs = pathlib.Path(docs_path)
    before, table, after = split(docs.read_text(encoding="utf-8"))
    if table == generated:
        return
    if request.config.getoption("update"):
        docs.write_text(before + generated + after, encoding="utf-8")
        print(f"rewrote the options table of {docs}")
        return
    diff = "".join(difflib.unified_diff(
        table.splitlines(keepends=True), generated.splitlines(keepends=True),
        "docs/operations.md", "tetherd --print-options-markdown"))
    pytest.fail(f"{diff}\nthe options table of docs/operations.md differs from the option "
                "tables; regenerate it with: python3 tests/docs/options_table_test.py "
                "--tetherd build/bin/tetherd --docs docs/operations.md --update",
                pytrace=False)


if __name__ == "__main__":
    sys.dont_write_bytecode = True
    sys.exit(pytest.main([__file__, "-q", *sys.argv[1:]]))
