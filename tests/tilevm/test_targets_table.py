"""README's "Targets" table is the one generated from the backends' caps, and the generator
lists what the caps say: every lowering backend's targets, their matrix atoms by name."""

from __future__ import annotations

from tilevm.runtime import registry, targets_table
from tilevm.runtime.targets_table import BEGIN, END, README, readme_table

REGENERATE = "python3 -m tilevm.runtime.targets_table --write"


def test_readme_table_matches_the_generated_one():
    text = README.read_text()
    found = readme_table(text)
    assert found is not None, f"README.md needs a '## Targets' section with {BEGIN} ... {END}"
    want = targets_table.targets_table()
    assert found == want, (
        "README.md's Targets table differs from what the backends' caps give; regenerate it "
        f"with `{REGENERATE}` and review the diff"
    )


def test_every_lowering_backend_has_rows_and_the_interpreter_none():
    table = targets_table.targets_table()
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    for backend in registry.backends():
        listed = [r for r in rows if r.startswith(f"| `{backend.name}")]
        if backend.lowers:
            specs = [info.spec for info in backend.describe()]
            assert specs, f"backend {backend.name!r} lists no target in describe()"
            assert len(listed) == len(specs)
        else:
            assert not listed


def test_matrix_column_names_each_atom_of_the_target():
    for backend in registry.backends():
        if not backend.lowers:
            continue
        for info in backend.describe():
            cell = targets_table._matrix(info.target)
            if info.target.atoms:
                assert all(f"`{atom.name}`" in cell for atom in info.target.atoms)
            else:
                assert cell.startswith("none")


def test_described_targets_are_the_backends_own():
    """A described target lowers as the backend's target() gives it for its spec, where the
    spec names the target itself (an arch or a family, not a device whose caps it reads)."""
    for backend in registry.backends():
        if not backend.lowers:
            continue
        for info in backend.describe():
            assert backend.answers(info.spec)
            if info.target.name == info.spec.replace(":", "-"):
                assert backend.target(info.spec) == info.target
