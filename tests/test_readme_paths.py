"""Every file or folder of the repository that a README names (in backticks or as a link)
exists (issue 38, item 6): the project's README, each folder's README and each committed
report's index. A README that pointed to a module since moved (`dfl_lib/plan.py`) sent readers
nowhere."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# the repository's own folders: a token starting with one is a path, not a name or a command
TOP = ("dfl_lib/", "notebooks/", "reports/", "tests/", "studies/", "benchmarks/", ".ci/")
TOKEN = re.compile(r"`([^`\s]+)`|\]\(([^)\s#]+)")
READMES = [ROOT / "README.md", *sorted(ROOT.glob("*/README.md")),
           *sorted(ROOT.glob("reports/*/README.md"))]


def named_paths(text: str) -> list[str]:
    """Repository paths `text` names: backticked tokens under `TOP`, and relative link targets
    (a "path:line" or "file.py:function" pointer keeps its path); not URLs, runs/ (never
    committed), the shared data beside the project, or patterns ("<class>", "*", "{a,b}")."""
    out = []
    for match in TOKEN.finditer(text):
        token = (match.group(1) or match.group(2)).rstrip(".,:;")
        if token.startswith(("http", "../shared", "runs/", "$", "#", "mailto:")) or any(
                c in token for c in "<*{"):
            continue
        if token.startswith(TOP) or match.group(2):
            out.append(token.split(":")[0])
    return out


def test_the_pattern_finds_paths_and_skips_what_is_not_one():
    text = ("see `dfl_lib/study/plan.py:study_plan`, [report](reports/quick/README.md), "
            "`runs/quick`, [site](https://example.org), `dfl_lib/*.py`, `make test`, "
            "[top](#findings)")
    assert named_paths(text) == ["dfl_lib/study/plan.py", "reports/quick/README.md"]


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_a_readme_names_exists(readme):
    missing = [p for p in named_paths(readme.read_text())
               if not ((ROOT / p).exists() or (readme.parent / p).exists())]
    assert not missing, f"{readme.relative_to(ROOT)} names paths that do not exist: {missing}"


@pytest.mark.parametrize("readme", ["README.md", "notebooks/README.md"])
def test_every_notebook_is_in_the_readmes_notebook_table(readme):
    """notebooks/README.md listed 6 of the 8 notebooks after 07 and 08 were added."""
    text = (ROOT / readme).read_text()
    rows = {line.split("|")[1].strip().strip("`") for line in text.splitlines()
            if line.startswith("| `")}
    notebooks = {p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb")}
    assert notebooks and notebooks <= rows, sorted(notebooks - rows)
