"""The reference pages list every setting, check id and error code the code has."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from tessera.conf import (
    OPTIONS,
    TABLE_END,
    TABLE_START,
    embed_settings_reference,
    main,
    render_default,
    settings_reference_markdown,
)

ROOT = Path(__file__).resolve().parent.parent
SOURCE = "\n".join(p.read_text() for p in (ROOT / "src" / "tessera").rglob("*.py"))


def test_every_setting_is_in_the_settings_reference():
    page = (ROOT / "docs" / "settings.md").read_text()
    missing = [key for key in OPTIONS if f"`{key}`" not in page]
    assert not missing


def test_the_settings_table_is_generated_from_the_options():
    page = (ROOT / "docs" / "settings.md").read_text()
    # On failure: python -m tessera.conf docs/settings.md
    assert embed_settings_reference(page) == page
    assert f"{TABLE_START}\n{settings_reference_markdown()}{TABLE_END}" in page


def test_a_changed_option_makes_the_page_stale(monkeypatch):
    page = (ROOT / "docs" / "settings.md").read_text()
    option = OPTIONS["TOKEN_TTL"]
    monkeypatch.setitem(OPTIONS, "TOKEN_TTL", type(option)(**{**vars(option), "doc": "New."}))
    assert embed_settings_reference(page) != page


@pytest.mark.parametrize(
    "value,rendered",
    [
        (timedelta(hours=10), "`timedelta(hours=10)`"),
        (timedelta(seconds=90), "`timedelta(seconds=90)`"),
        (timedelta(days=365), "`timedelta(days=365)`"),
        (timedelta(0), "`timedelta(0)`"),
        (timedelta(milliseconds=1500), "`datetime.timedelta(seconds=1, microseconds=500000)`"),
        (("Token", "Bearer"), "`('Token', 'Bearer')`"),
        ({"read": "Read access."}, "`{'read': 'Read access.'}`"),
        ({"ip": "20/min", "username": None}, "`{'ip': '20/min',`<br>`'username': None}`"),
        (None, "`None`"),
        ("", "`''`"),
    ],
)
def test_defaults_render_as_the_python_one_would_write(value, rendered):
    assert render_default(value) == rendered


def test_a_pipe_in_a_doc_does_not_split_the_table_cell():
    row = next(
        line
        for line in settings_reference_markdown().splitlines()
        if line.startswith("| `LOGIN_THROTTLE_RATES`")
    )
    assert "'N/sec\\|min\\|hour\\|day'" in row
    assert row.count(" | ") == 2


def test_python_m_tessera_conf_rewrites_the_table_in_place(tmp_path, capsys):
    page = tmp_path / "settings.md"
    page.write_text(f"# Settings\n\n{TABLE_START}\nstale\n{TABLE_END}\n\nAfter.\n")
    main([str(page)])
    assert page.read_text() == (
        f"# Settings\n\n{TABLE_START}\n{settings_reference_markdown()}{TABLE_END}\n\nAfter.\n"
    )
    main([])
    assert capsys.readouterr().out == settings_reference_markdown()


def test_a_page_without_the_markers_is_refused():
    with pytest.raises(ValueError, match="settings-table:start"):
        embed_settings_reference("# Settings\n")


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


def test_every_docs_page_is_in_the_site_navigation():
    config = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert [page for page in pages if f": {page}" not in config] == []


def test_every_test_the_security_page_names_exists():
    page = (ROOT / "docs" / "security.md").read_text()
    missing = []
    for path, name in re.findall(r"`(tests/[\w/*.]+\.py)(?:::(\w+))?`", page):
        files = sorted(ROOT.glob(path))
        if not files or (name and not any(f"def {name}(" in f.read_text() for f in files)):
            missing.append(f"{path}::{name}")
    assert missing == []
