"""The web app's files, without sockets: every one is served, shipped in the wheel, and every reference resolves."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from services.gateway.webapp import CONTENT_TYPES, WEB_ROOT, load_assets
from tests.conftest import REPO

IMPORT = re.compile(r"""^\s*(?:import|export)\b[^"';]*?from\s+["']([^"']+)["']""", re.MULTILINE)
STATIC_REF = re.compile(r"""(?:href|src)="(/static/[^"]+)\"""")


def web_files() -> list[Path]:
    return sorted(path for path in WEB_ROOT.rglob("*") if path.is_file())


def test_every_file_has_a_served_type_and_is_loaded() -> None:
    files = web_files()
    assert files, f"no web app files under {WEB_ROOT}"
    assert {path.suffix for path in files} <= set(CONTENT_TYPES)
    assets = load_assets(WEB_ROOT)
    static = [path for path in files if path.parent != WEB_ROOT]
    assert sorted(assets) == sorted(path.relative_to(WEB_ROOT / "static").as_posix() for path in static)


def test_package_data_ships_every_file() -> None:
    """The wheel (and so the Docker image, which pip-installs it) holds exactly what the globs match."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["services.gateway"]
    package = WEB_ROOT.parent
    shipped = {path for pattern in patterns for path in package.glob(pattern) if path.is_file()}
    assert shipped == set(web_files())


def test_page_references_and_module_imports_resolve() -> None:
    page = (WEB_ROOT / "index.html").read_text()
    references = STATIC_REF.findall(page)
    assert "/static/app.js" in references and "/static/app.css" in references
    for reference in references:
        assert (WEB_ROOT / reference.lstrip("/")).is_file(), reference
    modules = sorted((WEB_ROOT / "static").rglob("*.js"))
    imported: set[Path] = set()
    for module in modules:
        for target in IMPORT.findall(module.read_text()):
            assert target.startswith("."), f"{module.name} imports {target!r}: only relative files, no packages"
            path = (module.parent / target).resolve()
            assert path.is_file(), f"{module.name} imports {target}, which does not exist"
            imported.add(path)
    unused = {module.resolve() for module in modules} - imported - {(WEB_ROOT / "static" / "app.js").resolve()}
    assert not unused, f"modules nothing imports: {sorted(p.name for p in unused)}"


@pytest.mark.parametrize("path", web_files(), ids=lambda path: path.relative_to(WEB_ROOT).as_posix())
def test_no_remote_resources_and_no_markup_from_strings(path: Path) -> None:
    """Works with no network: nothing is fetched from another origin (external links are only `<a href>`), and
    no data is ever parsed as HTML."""
    text = path.read_text()
    assert not re.search(r"""(?:src=|@import|url\()\s*["']?(?:https?:)?//""", text)
    assert not re.search(r"\.(?:inner|outer)HTML\s*=|insertAdjacentHTML|document\.write", text)
