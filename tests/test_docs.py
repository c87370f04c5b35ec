"""The reference pages list every setting, check id and error code the code has."""

from __future__ import annotations

import re
from pathlib import Path

from tessera.conf import OPTIONS

ROOT = Path(__file__).resolve().parent.parent
SOURCE = "\n".join(p.read_text() for p in (ROOT / "src" / "tessera").rglob("*.py"))


def test_every_setting_is_in_the_settings_reference():
    page = (ROOT / "docs" / "settings.md").read_text()
    missing = [key for key in OPTIONS if f"`{key}`" not in page]
    assert not missing


def test_every_check_id_is_in_the_settings_reference():
    page = (ROOT / "docs" / "settings.md").read_text()
    ids = set(re.findall(r"tessera\.[EW]\d{3}", SOURCE))
    assert ids and not [i for i in sorted(ids) if f"`{i}`" not in page]


def test_every_error_code_is_in_the_errors_page():
    page = (ROOT / "docs" / "errors.md").read_text()
    codes = set(re.findall(r'(?:default_code = |code=|code = )"([a-z_]+)"', SOURCE))
    assert codes and not [c for c in sorted(codes) if f"`{c}`" not in page]


def test_readme_links_resolve():
    readme = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(((?:docs|bench)/[^)#]+)", readme):
        assert (ROOT / target).exists(), target
