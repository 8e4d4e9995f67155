"""The floors of docs/architecture.md, held against the code: imports only go down (or stay on their
floor), and no module outside faceswap_lite/plugins imports a plugin (plugins are leaves)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import ROOT

PACKAGE = ROOT / "faceswap_lite"
# docs/architecture.md's "Floors" table, floor by floor (the longest matching name decides).
FLOORS = {
    1: ["errors", "settings", "fsutil", "device", "machine", "dlib_resnet", "dlib_models"],
    2: ["faceset", "runfolder", "models", "losses.base", "extract.detect", "extract.sources", "config",
        "config_reference", "registry", "data.split"],
    3: ["frames", "data", "losses", "identity"],
    4: ["extract", "train", "convert", "sort", "evaluate", "demo", "monitor"],
    5: ["cli"],
}
UNPLACED = {"", "__main__", "assets", "assets.samples", "configs"}  # the package itself and data folders


def floor_of(module: str) -> int | None:
    best: tuple[int, int] | None = None
    for floor, names in FLOORS.items():
        for name in names:
            if (module == name or module.startswith(name + ".")) and (best is None or len(name) > best[1]):
                best = (floor, len(name))
    return None if best is None else best[0]


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Line numbers of imports inside ``if TYPE_CHECKING:`` (annotations only: no run-time arrow)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            lines |= {n.lineno for stmt in node.body for n in ast.walk(stmt) if isinstance(n, ast.ImportFrom)}
    return lines


def imports() -> list[tuple[str, str]]:
    """(importing module, imported module) inside faceswap_lite, names relative to the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        package = parts[:-1]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_only(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or node.lineno in skip:
                continue
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("faceswap_lite."):
                base = node.module.removeprefix("faceswap_lite.")
            else:
                continue
            targets = [base] if node.module else [f"{base}.{a.name}".lstrip(".") for a in node.names]
            found += [(".".join(parts), t) for t in targets]
    return found


def test_plugins_are_leaves():
    arrows = [(a, b) for a, b in imports() if b.startswith("plugins") and not a.startswith("plugins")]
    assert arrows == [], arrows


def test_imports_only_go_down():
    up = []
    for a, b in imports():
        if a.startswith("plugins") or a in UNPLACED or b in ("__version__",) or b in UNPLACED:
            continue
        fa, fb = floor_of(a), floor_of(b)
        assert fa is not None, f"{a} is on no floor: add it to FLOORS and docs/architecture.md"
        assert fb is not None, f"{b} (imported by {a}) is on no floor"
        if fb > fa:
            up.append(f"{a} (floor {fa}) -> {b} (floor {fb})")
    assert up == [], "imports climbing a floor:\n" + "\n".join(up)


def test_the_test_sees_imports():
    """The checker itself: it finds the arrows it must (a relative, an absolute and a from-package import)."""
    found = set(imports())
    assert ("train.trainer", "train.setup") in found
    assert ("cli", "cli.group") in found
    assert floor_of("losses.base") == 2 and floor_of("losses.mix") == 3 and floor_of("cli.common") == 5
    assert Path(PACKAGE / "runfolder.py").is_file()
