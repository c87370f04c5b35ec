"""Every error class lives in tessera.errors, and docs/errors.md lists exactly its codes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from rest_framework import exceptions

from tessera import errors

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "tessera"
EXCEPTION_BASES = {
    name
    for name in dir(exceptions)
    if isinstance(getattr(exceptions, name), type)
    and issubclass(getattr(exceptions, name), exceptions.APIException)
}


def documented_codes() -> set[str]:
    page = (ROOT / "docs" / "errors.md").read_text()
    table = page.split("## Codes", 1)[1].split("\n\n", 2)[1]
    return set(re.findall(r"^\| `([a-z_]+)` \|", table, re.M))


def test_the_errors_page_lists_exactly_the_codes_tessera_defines():
    defined = {cls.default_code for cls in errors.tessera_error_classes()}
    assert documented_codes() == defined | set(errors.DRF_CODES)


def test_every_error_class_is_defined_in_the_errors_module():
    elsewhere = []
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {getattr(base, "attr", getattr(base, "id", "")) for base in node.bases}
                local = {cls.__name__ for cls in errors.tessera_error_classes()}
                if bases & (EXCEPTION_BASES | local):
                    elsewhere.append(f"{path.relative_to(ROOT)}:{node.name}")
    assert not elsewhere


def test_default_details_are_translatable():
    untranslated = [
        cls.__name__
        for cls in errors.tessera_error_classes()
        if isinstance(cls.default_detail, str)
    ]
    assert not untranslated
