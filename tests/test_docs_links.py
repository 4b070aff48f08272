"""The docs a reader can follow: every link of README.md, docs/ and benchmarks/README.md opens (the
file exists, and the heading an anchor names is on that page), and every file path written in
backticks names a file of the repository."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_PATH = re.compile(r"`((?:tcx|models|datamodules|callbacks|configs|tests|benchmarks|docs|examples|\.ci)"
                       r"/[\w./-]*\w)(?:[:`]|\s)")


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation but '-' and '_' dropped, spaces to '-'."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    heads = re.findall(r"^#{1,6}\s+(.*?)\s*$", text, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.replace("`", "").lower()).replace(" ", "-") for h in heads}


def _prose(page: Path) -> str:
    """The page without its fenced code blocks (shell and YAML there are commands, not references)."""
    return re.sub(r"```.*?```", "", page.read_text(), flags=re.S)


def test_the_anchor_rule_matches_githubs():
    page = ROOT / "docs" / "datamodules.md"
    assert "datamodulesprotocolpy-the-datamodule-protocol" in _anchors(page)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_opens(page):
    broken = []
    for target in LINK.findall(_prose(page)):
        if re.match(r"[a-z]+:", target):
            continue  # an address outside the repository
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no file {file.relative_to(ROOT) if file.is_relative_to(ROOT) else file}")
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            broken.append(f"{target}: no heading with anchor #{anchor} in {file.relative_to(ROOT)}")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_path_in_backticks_exists(page):
    missing = sorted({p for p in CODE_PATH.findall(_prose(page))
                      if not (ROOT / p).exists() and not any(c in p for c in "*{}<>")})
    assert not missing, f"{page.relative_to(ROOT)} names files that are not in the repository: {missing}"
