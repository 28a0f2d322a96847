"""The README's commands and paths work as written: a new user copies them."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
LAYER = ROOT / "layers" / "shared"

# Paths in the repository, as the README writes them: top folders and what lies under them.
REPO_PATH = re.compile(r"(?<![\w/.-])((?:api|events|bench|functions|layers|sandbox|tests)/[\w./-]*)")
LAYER_MODULE = re.compile(r"(?<![\w/])martech/(\w+\.py)")


def test_every_repository_path_the_readme_names_exists():
    named = {path.rstrip(".") for path in REPO_PATH.findall(README)}
    assert "events/monetate/customers.webhook.json" in named  # the webhook sample of the curl example
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert not missing, f"README.md names paths that do not exist: {missing}"


def test_every_layer_module_named_in_the_readme_exists_and_every_module_is_named():
    named = set(LAYER_MODULE.findall(README))
    present = {path.name for path in (LAYER / "martech").glob("*.py")} - {"__init__.py"}
    assert not named - present, f"README.md names modules that do not exist: {sorted(named - present)}"
    assert not present - named, f"README.md's layout leaves out: {sorted(present - named)}"


def test_every_make_target_the_readme_names_is_in_the_makefile():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, flags=re.MULTILINE))
    named = set(re.findall(r"\bmake (\w+)", README))
    assert {"run", "test"} <= named
    assert not named - targets, f"README.md names make targets the Makefile lacks: {sorted(named - targets)}"


def test_every_template_parameter_and_every_setting_the_template_leaves_alone_is_in_the_readme():
    import dataclasses

    from martech.settings import Settings
    from sandbox.local.template import load

    template = load(ROOT / "template.yaml")
    set_by_template = set(template["Globals"]["Function"]["Environment"]["Variables"])
    for resource in template["Resources"].values():
        set_by_template |= set(resource.get("Properties", {}).get("Environment", {}).get("Variables", {}))
    settings = {field.metadata["env"] for field in dataclasses.fields(Settings)}
    undocumented = [name for name in [*template["Parameters"], *sorted(settings - set_by_template)]
                    if f"`{name}`" not in README]
    assert not undocumented, f"README.md does not name: {undocumented}"


def _cells(row: str) -> int:
    return len(re.split(r"(?<!\\)\|", row.strip().strip("|")))


def test_every_table_row_in_the_readme_has_its_headers_cells():
    # A pipe in a row's text, or a paragraph between two rows, splits a table as GitHub shows it.
    lines = README.splitlines()
    widths, in_code = None, False
    for number, line in enumerate(lines, start=1):
        in_code ^= line.startswith("```")
        if in_code or not line.startswith("|"):
            widths = None
            continue
        if widths is None:  # a table's first row: its header, with the separator row next
            assert re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[number].strip()), f"README.md line {number}: no header"
            widths = _cells(line)
        assert _cells(line) == widths, f"README.md line {number}: {_cells(line)} cells under a {widths}-cell header"
