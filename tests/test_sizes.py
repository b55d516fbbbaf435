"""Sizes the project keeps (docs/architecture.md): a module of the training layer, the run
folders, the inspection or a front end reads in one sitting (about 300 lines), and a function
on one screen (about 50); the argparse table is one long list and is let be."""

import ast
import pathlib

import pytest

import kafkarnn

PACKAGE = pathlib.Path(kafkarnn.__file__).parent
SIZED = ["train", "runs", "inspect", "cli", "tui", "seam.py"]
MAX_MODULE, MAX_FUNCTION = 300, 50
LONG_BY_NATURE = {("cli/options.py", "build_parser")}


def sources() -> list[pathlib.Path]:
    return sorted(PACKAGE.rglob("*.py"))


def too_long_functions(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    where = path.relative_to(PACKAGE).as_posix()
    return [f"{where}:{n.name} ({n.end_lineno - n.lineno + 1} lines)" for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.end_lineno - n.lineno + 1 > MAX_FUNCTION and (where, n.name) not in LONG_BY_NATURE]


@pytest.mark.parametrize("part", SIZED)
def test_modules_read_in_one_sitting(part):
    root = PACKAGE / part
    files = [root] if root.suffix == ".py" else sorted(root.rglob("*.py"))
    assert files
    long = {f.relative_to(PACKAGE).as_posix(): n for f in files
            if (n := len(f.read_text(encoding="utf-8").splitlines())) > MAX_MODULE}
    assert long == {}


def test_functions_fit_on_a_screen():
    assert sum(1 for _ in sources()) > 40
    assert [f for path in sources() for f in too_long_functions(path)] == []
