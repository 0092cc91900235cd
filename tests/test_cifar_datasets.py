"""Real CIFAR-10 wherever a profile says CIFAR-10: the paper's CIFAR-10 claims and tables are
about the original ("cifar10"); a profile may choose the JPEG copy ("cifar10_jpeg": quick-full,
the -jpeg profiles), which then stands for it, labelled, never silently."""
import pytest

from dfl_lib.errors import UsageError
from dfl_lib.paper.claims import claims
from dfl_lib.paper.comparison import paper_cells, paper_dataset, table_dataset, table_rows
from dfl_lib.study.evidence import table_verdicts
from dfl_lib.study.plan import datasets


def test_a_table_shows_the_profiles_cifar10_and_never_two():
    assert paper_dataset("cifar10_jpeg") == "cifar10" == paper_dataset("cifar10")
    assert table_dataset("Table 2") == "cifar10" and table_dataset("Table 1") == "mnist"
    assert table_dataset("Table 2", among=datasets("quick-full")) == "cifar10_jpeg"
    assert table_dataset("Table 2", among=datasets("gpu")) == "cifar10"
    with pytest.raises(UsageError, match="one dataset stands for the paper's CIFAR-10"):
        table_dataset("Table 2", among=("cifar10", "cifar10_jpeg"))
    with pytest.raises(UsageError, match="does not stand for Table 2's CIFAR-10"):
        paper_cells("Table 2", dataset="mnist")
    assert {d for d, _, _ in paper_cells("Table 4", dataset="cifar10_jpeg")} == {"cifar10_jpeg"}
    # without cells of either, a table's rows are "not run" on the original
    rows = table_rows(table="Table 2", cells={})
    assert {r["dataset"] for r in rows} == {"cifar10"}
    assert all(r["ours"] is None and r["note"].startswith("not run") for r in rows)


def test_the_claims_name_the_original_and_a_jpeg_profile_judges_them_on_its_copy():
    cifar = [c for c in claims() if c.kind == "table" and c.table in ("Table 2", "Table 4")]
    assert cifar and {c.dataset for c in cifar} == {"cifar10"}
    here = {v["claim"]: v for v in table_verdicts("quick-full-cifar", cells={})}
    elsewhere = {v["claim"]: v for v in table_verdicts("quick", cells={})}
    for c in cifar:
        assert here[c.label]["dataset"] == "cifar10_jpeg"  # the copy, named
        assert elsewhere[c.label]["dataset"] == "cifar10"
        assert elsewhere[c.label]["reason"].startswith("not run yet")
