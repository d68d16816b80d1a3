"""The head methods as modules (hyperland.heads.methods): one registry, every module with the same parts, option
rules derived from them, and a heads package without import cycles."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from hyperland.errors import InvalidOptionError
from hyperland.heads import METHODS, LandmarkHead
from hyperland.heads.methods import MODULES, RULES, reads
from hyperland.heads.options import AUGMENT, COMMON, SPLIT

HEADS = Path(__file__).resolve().parents[1] / "hyperland" / "heads"


def test_every_method_is_a_module_with_the_same_parts():
    assert tuple(MODULES) == METHODS
    for name, module in MODULES.items():
        assert isinstance(module.OPTIONS, dict) and not set(module.OPTIONS) & set(COMMON), name
        assert module.POOL in (1, 2) and isinstance(module.CONFIDENCE, bool) and 3 in module.FORMATS, name
        assert list(inspect.signature(module.fit).parameters) == ["maps", "targets", "options", "groups", "val",
                                                                  "rng", "generator", "seed"], name
        for part in ("locate", "tensors", "from_tensors"):
            assert callable(getattr(module.State, part)), (name, part)


def test_option_rules_are_the_estimators_signature_and_what_each_method_reads():
    assert set(RULES) == set(inspect.signature(LandmarkHead).parameters)
    assert set(AUGMENT) <= reads("ridge") and set(AUGMENT) <= reads("regressor")
    assert not set(AUGMENT) & reads("prototype") and not set(SPLIT) & reads("ridge")
    assert "steps" in reads("regressor") and "steps" not in reads("ridge") | reads("prototype")
    with pytest.raises(InvalidOptionError, match=r"method='prototype' does not read \['n_augment'\] \(used by "
                                                 r"method 'regressor' / 'ridge'\)"):
        LandmarkHead.check_options({"method": "prototype", "n_augment": 2})
    LandmarkHead.check_options({"method": "prototype", "n_augment": 8})  # the default: not "set"


def test_heads_package_has_no_import_cycle():
    """Module-level and function-level imports between the modules of hyperland.heads form no cycle."""
    def imports(node: ast.AST) -> set[str]:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return set()  # annotations only
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [node.module] if node.module else [a.name for a in node.names]
            return {n.split(".")[0] for n in names if (HEADS / f"{n.split('.')[0]}.py").is_file()}
        return set().union(*(imports(child) for child in ast.iter_child_nodes(node)))

    graph = {path.stem: imports(ast.parse(path.read_text(encoding="utf-8"))) for path in HEADS.glob("*.py")}
    graph["__init__"] = set()  # the package's lazy attributes (LandmarkHead on first use) are not imports of it

    def visit(node: str, path: list[str]) -> None:
        assert node not in path, " -> ".join([*path, node])
        for dep in graph[node]:
            visit(dep, [*path, node])

    for module in graph:
        visit(module, [])


def test_reads_images_says_when_fit_needs_more_than_features():
    assert LandmarkHead().reads_images(100) and LandmarkHead().reads_images(10_000)  # augment_max of them warped
    assert not LandmarkHead(augment_max=0).reads_images(5) and not LandmarkHead(augment=False).reads_images(5)
    assert LandmarkHead(augment=True, augment_max=0).reads_images(10_000)
    assert not LandmarkHead(n_augment=0).reads_images(5)
    assert LandmarkHead(method="regressor").reads_images(112)
    assert not LandmarkHead(method="prototype").reads_images(5)  # no warps
    assert LandmarkHead(framing="object").reads_images(10_000)  # crops the frames
