"""The layering, read from every module of the package (docs/architecture.md says why), and no
import circles among the modules as they load.

Each module's imports (all of them: top-level, inside functions, under TYPE_CHECKING) are read
with `ast`, so a new module is checked the day it is added, and a module that belongs to no
layer fails here until someone decides where it goes.

  seam, errors               nothing of kafkarnn
  engine                     NumPy and the standard library only
  runs                       the seam and errors (no training, no front end)
  train                      engine, runs, seam (never inspect, cli or tui)
  inspect                    engine, train, runs, seam
  pictures                   Rich: drawings both front ends print (of what inspect found)
  sweep                      grids of ordinary runs (engine, runs, train, inspect; Ray if asked)
  cli, tui                   everything below; never each other; Textual in tui only
  main, __main__             the program: both front ends (and the thread policy, first)
"""

import ast
import importlib.util
import pkgutil
import sys

import pytest

import kafkarnn

BASE = {"kafkarnn", "kafkarnn.errors", "kafkarnn.seam"}     # the root holds only __version__
BELOW = {"engine", "runs", "train", "inspect"}

# layer -> (kafkarnn layers it may import, third-party packages it may import)
LAYERS = {
    "kafkarnn.seam": (set(), set()),
    "kafkarnn.errors": (set(), set()),
    "kafkarnn.engine": ({"engine"}, {"numpy"}),
    "kafkarnn.runs": ({"runs"}, {"numpy", "platformdirs"}),
    "kafkarnn.train": ({"engine", "runs", "train"}, {"numpy", "threadpoolctl", "pydivsufsort"}),
    "kafkarnn.inspect": ({"engine", "runs", "train", "inspect"}, {"numpy"}),
    "kafkarnn.pictures": (BELOW | {"pictures"}, {"rich"}),    # draws what inspect found
    "kafkarnn.sweep": (BELOW | {"sweep"}, {"numpy", "ray"}),          # runs of runs, above train
    "kafkarnn.cli": (BELOW | {"cli", "pictures", "sweep"}, {"numpy", "rich"}),
    "kafkarnn.tui": (BELOW | {"tui", "pictures"}, {"numpy", "rich", "textual"}),
    "kafkarnn.main": (BELOW | {"cli", "tui"}, set()),
    "kafkarnn.__main__": ({"main"}, set()),
    "kafkarnn": (set(), set()),
}
NO_BASE = {"kafkarnn.seam", "kafkarnn.errors", "kafkarnn.engine"}    # not even errors or seam


def modules() -> list[str]:
    found = [m.name for m in pkgutil.walk_packages(kafkarnn.__path__, "kafkarnn.")]
    return ["kafkarnn", *found]


def layer_of(module: str) -> str | None:
    """The longest LAYERS key that is `module` or a package above it."""
    keys = [k for k in LAYERS if module == k or module.startswith(k + ".")]
    return max(keys, key=len) if keys else None


def imports(module: str) -> set[str]:
    """Every module name `module` imports, absolute (relative imports resolved)."""
    spec = importlib.util.find_spec(module)
    tree = ast.parse(open(spec.origin, encoding="utf-8").read(), spec.origin)
    package = module if spec.submodule_search_locations else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            out |= {f"{base}.{a.name}" for a in node.names} if node.module is None else {base}
    return out


def offences(module: str) -> list[str]:
    """What `module` imports that its layer may not."""
    own = layer_of(module)
    allowed_layers, allowed_third = LAYERS[own]
    bad = []
    for name in sorted(imports(module)):
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top == "__future__":
            continue
        if top != "kafkarnn":
            if top not in allowed_third:
                bad.append(name)
            continue
        target = layer_of(name)
        if target in BASE and own not in NO_BASE:
            continue
        if target == own or target.removeprefix("kafkarnn.") in allowed_layers:
            continue
        bad.append(name)
    return bad


def test_every_module_belongs_to_a_layer():
    assert len(modules()) > 40                     # the walk found the package, not a stub
    assert [m for m in modules() if layer_of(m) is None] == []


@pytest.mark.parametrize("module", modules())
def test_a_module_imports_only_what_its_layer_may(module):
    assert offences(module) == []


def test_the_checker_sees_a_forbidden_import(monkeypatch):
    """The rules bite: a layer told it may import nothing objects to what it does import."""
    monkeypatch.setitem(LAYERS, "kafkarnn.train", (set(), set()))
    assert "numpy" in offences("kafkarnn.train.trainer")
    assert "kafkarnn.engine.model" in offences("kafkarnn.train.trainer")
    assert offences("kafkarnn.train.outcome") == []     # errors and the seam are everyone's


def loaded_with(module: str) -> set[str]:
    """The kafkarnn modules `module` imports as it loads (not under TYPE_CHECKING, not in a function)."""
    spec = importlib.util.find_spec(module)
    tree = ast.parse(open(spec.origin, encoding="utf-8").read(), spec.origin)
    out = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return out & set(modules()) - {module}


def test_no_import_circles():
    graph = {m: loaded_with(m) for m in modules()}
    done, circles = set(), []

    def walk(m, path):
        for n in graph[m]:
            if n in path:
                circles.append(path[path.index(n):] + [n])
            elif n not in done:
                walk(n, path + [n])
        done.add(m)
    for m in graph:
        walk(m, [m])
    assert circles == []
