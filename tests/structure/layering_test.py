#!/usr/bin/env python3
"""Each libactors/ folder includes only the folders its library declares.

Every folder of libactors/ is one static library, declared in the folder's
CMakeLists.txt with the libraries it uses (cmake/TetherLibrary.cmake); CMake writes
the declared graph to <build>/libactors/layering.txt, one line per folder:

    <folder> <library>: <library it depends on> ...

This test reads that graph and every header and source of libactors/ (tests
excepted: the unit test binary links everything) and fails when

- a file includes a header of a folder its library does not depend on, directly or
  through the libraries it depends on (an arrow that runs back up the sample's path,
  or one nobody declared);
- the declared graph has a cycle;
- a folder with sources or tests has no library (its library registers its tests).

The public headers (tether/...) may be included from anywhere: they are the
vocabulary every folder shares, and node/ implements the API they declare.

    python3 -m pytest tests/structure/layering_test.py --layering build/libactors/layering.txt
"""

import pathlib
import re
import sys

import pytest

SOURCE = pathlib.Path(__file__).resolve().parents[2] / "libactors"
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
# Test files: the unit tests link every library.
TEST_FILE = re.compile(r"\.test\.cpp$|_test_support\.hpp$|/sim_cluster\.hpp$")


def read_graph(path):
    """(folder -> library, library -> set of libraries it declares)."""
    folders, deps = {}, {}
    for line in pathlib.Path(path).read_text().splitlines():
        if not line.strip():
            continue
        head, _, tail = line.partition(":")
        folder, lib = head.split()
        folders[folder] = lib
        deps[lib] = set(tail.split())
    return folders, deps


def closure(lib, deps):
    """Every library `lib` reaches through its declared dependencies."""
    seen, pending = set(), list(deps.get(lib, ()))
    while pending:
        d = pending.pop()
        if d not in seen:
            seen.add(d)
            pending.extend(deps.get(d, ()))
    return seen


def sources_of(folder):
    root = SOURCE / folder
    for p in sorted(root.rglob("*")):
        if p.suffix in (".cpp", ".hpp", ".h") and not TEST_FILE.search(p.as_posix()):
            yield p


@pytest.fixture(scope="module")
def graph(request):
    path = request.config.getoption("--layering")
    if not path:
        pytest.skip("no --layering file (build/libactors/layering.txt)")
    return read_graph(path)


def test_every_folder_with_sources_has_a_library(graph):
    """A folder's library also registers its unit tests: a folder without one would
    leave its tests out of the build."""
    folders, _ = graph
    missing = [d.name for d in sorted(SOURCE.iterdir())
               if d.is_dir() and d.name != "include" and d.name not in folders
               and any(p.suffix in (".cpp", ".hpp") for p in d.rglob("*"))]
    assert not missing, f"folders of libactors/ without a library: {missing}"


def test_the_declared_graph_has_no_cycle(graph):
    _, deps = graph
    cyclic = sorted(lib for lib in deps if lib in closure(lib, deps))
    assert not cyclic, f"libraries that depend on themselves through others: {cyclic}"


def test_every_include_follows_a_declared_dependency(graph):
    folders, deps = graph
    wrong = []
    for folder, lib in sorted(folders.items()):
        allowed = {folder, "tether"} | {f for f, l in folders.items()
                                        if l in closure(lib, deps)}
        for path in sources_of(folder):
            for inc in INCLUDE.findall(path.read_text(errors="replace")):
                top = inc.split("/", 1)[0]
                if "/" not in inc or top not in folders and top != "tether":
                    continue  # a file of the same folder, or not a libactors/ header
                if top not in allowed:
                    wrong.append(f"{path.relative_to(SOURCE)} includes {inc} "
                                 f"({lib} does not depend on {folders[top]})")
    assert not wrong, "includes against the declared layering:\n  " + "\n  ".join(wrong)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-p", "no:cacheprovider"] + sys.argv[1:]))
