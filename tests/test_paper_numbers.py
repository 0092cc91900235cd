"""The transcribed paper numbers (dfl_lib/paper_results.csv, paper_claims.csv) against the
paper's own text in ../shared/paper/*.txt, where each table is printed as tab-separated lines
("No Defense" / "Adversarial Training" headers, then "label<TAB>FGSM<TAB>PGD-10<TAB>C&W" rows).
Tests that read the paper are skipped when that folder is absent."""
import csv
import re
from collections import Counter
from pathlib import Path

import pytest

import dfl_lib.paper.numbers
from dfl_lib.paper.numbers import COLUMNS, SETTINGS, TABLES, paper_claims, paper_table, paper_value

RESULTS_CSV = Path(dfl_lib.paper.numbers.__file__).with_name("paper_results.csv")
PAPER_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "paper"

# numbers per table: rows x columns x settings
EXPECTED_COUNTS = {"Table 1": 24, "Table 2": 24, "Table 3": 24, "Table 4": 24, "Table 5": 18,
                   "Table 6": 6}
# In the text, every table's block comes just before its caption except Table 5's, which follows
# it (Table 4's caption is directly followed by Table 5's).
BLOCK_AFTER_CAPTION = {"Table 5"}
PRINTED_SETTINGS = {"No Defense": "no defence", "Adversarial Training": "adversarial training"}

# Hand-checked spot values: (table, setting, row, column, value as printed)
SPOT_VALUES = [
    ("Table 1", "no defence", "dfl_pcl", "FGSM", "89.93"),
    ("Table 1", "no defence", "dynamic", "FGSM", "14.04"),
    ("Table 1", "adversarial training", "mustafa", "FGSM", "53.10"),
    ("Table 2", "no defence", "resnet", "PGD-10", "0.01"),
    ("Table 2", "adversarial training", "dfl_pcl", "C&W", "61.30"),
    ("Table 3", "no defence", "dynamic", "FGSM", "17.04"),
    ("Table 3", "no defence", "dfl", "PGD-10", "59.60"),
    ("Table 3", "no defence", "dfl", "C&W", "87.0"),
    ("Table 4", "adversarial training", "dfl", "FGSM", "90.31"),
    ("Table 5", "adversarial training", "pcl", "PGD-10", "70.45"),
    ("Table 5", "no defence", "dfl_pcl", "FGSM", "43.85"),
    ("Table 6", "adversarial training", "wrn", "C&W", "68.51"),
    ("Table 6", "adversarial training", "resnet_dfl_pcl", "FGSM", "91.80"),
]


@pytest.fixture(scope="module")
def paper_lines() -> list[str]:
    texts = sorted(PAPER_DIR.glob("*.txt")) if PAPER_DIR.is_dir() else []
    if not texts:
        pytest.skip(f"the paper's text is not at {PAPER_DIR} (../shared/paper beside the repo)")
    return [line for path in texts for line in path.read_text(encoding="utf-8").splitlines()]


def _caption_index(lines: list[str], table: str) -> int:
    hits = [i for i, line in enumerate(lines) if line.startswith(f"{table}:")]
    assert len(hits) == 1, f"{table}: expected one caption line, found {len(hits)}"
    return hits[0]


def _printed_block(lines: list[str], table: str) -> list[str]:
    """The contiguous tab-separated lines of `table`, next to its caption."""
    step = 1 if table in BLOCK_AFTER_CAPTION else -1
    i = _caption_index(lines, table) + step
    while not lines[i].strip() or re.match(r"Table \d:", lines[i]):  # blanks, the other caption
        i += step
    block = []
    while 0 <= i < len(lines) and "\t" in lines[i]:
        block.append(lines[i])
        i += step
    return block if step == 1 else block[::-1]


def _parse_block(block: list[str]) -> dict[tuple[str, str], list[str]]:
    """{(setting, printed row label): [printed numbers in COLUMNS order]}."""
    out, setting = {}, None
    for line in block:
        label, *cells = [re.sub(r"</?b>", "", c).strip() for c in line.split("\t")]
        cells = [c for c in cells if c]
        if label in PRINTED_SETTINGS:
            setting = PRINTED_SETTINGS[label]
        elif label in ("Defenses", "Backbone"):
            assert tuple(cells) == COLUMNS, f"unexpected header {cells}"
        else:
            assert setting is not None, f"row {label!r} before any setting header"
            assert (setting, label) not in out, f"row {label!r} printed twice in {setting}"
            out[(setting, label)] = cells
    return out


def _csv_rows(table: str) -> dict[tuple[str, str], list[str]]:
    """The same shape from the CSV, with `value` as the printed text (not the float)."""
    out: dict[tuple[str, str], list[str]] = {}
    with open(RESULTS_CSV, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        if row["table"] == table:
            out.setdefault((row["setting"], row["source"]), []).append(row["value"])
    return out


# --- the CSV's shape ---------------------------------------------------------------------------

@pytest.mark.parametrize("table", list(EXPECTED_COUNTS))
def test_each_table_has_its_count_of_numbers(table):
    rows = paper_table(table)
    assert len(rows) == EXPECTED_COUNTS[table]
    assert all(isinstance(r["value"], float) and 0 <= r["value"] <= 100 for r in rows)
    assert Counter(r["column"] for r in rows) == {c: EXPECTED_COUNTS[table] // 3 for c in COLUMNS}


def test_tables_are_the_six_of_the_paper_with_their_datasets():
    assert set(TABLES) == set(EXPECTED_COUNTS)
    assert {t for t, meta in TABLES.items() if meta["dataset"] == "MNIST"} == {"Table 1", "Table 3"}
    assert {meta["dataset"] for meta in TABLES.values()} == {"MNIST", "CIFAR-10"}
    assert {r["setting"] for r in paper_table("Table 6")} == {"adversarial training"}
    for table in TABLES:
        rows = paper_table(table)
        assert {r["setting"] for r in rows} <= set(SETTINGS)
        assert all(r["table"] == table for r in rows)


def test_every_key_is_unique():
    keys = [(r["table"], r["setting"], r["row"], r["column"])
            for table in TABLES for r in paper_table(table)]
    assert len(keys) == sum(EXPECTED_COUNTS.values()) == 120
    assert [k for k, n in Counter(keys).items() if n > 1] == []
    # each row key stands for one printed label within a table
    for table in TABLES:
        labels = {}
        for r in paper_table(table):
            assert labels.setdefault(r["row"], r["source"]) == r["source"], (table, r["row"])


@pytest.mark.parametrize("table, setting, row, column, printed", SPOT_VALUES)
def test_spot_values(table, setting, row, column, printed):
    assert paper_value(table=table, setting=setting, row=row, column=column) == float(printed)


def test_unknown_keys_raise_with_what_exists():
    with pytest.raises(KeyError, match=r"Table 6 has settings \['adversarial training'\]"):
        paper_value(table="Table 6", setting="no defence", row="wrn", column="FGSM")
    with pytest.raises(KeyError, match=r"rows \['dfl', 'pcl', 'dfl_pcl'\]"):
        paper_value(table="Table 5", setting="no defence", row="resnet", column="FGSM")
    with pytest.raises(KeyError, match="columns"):
        paper_value(table="Table 1", setting="no defence", row="resnet", column="PGD")
    with pytest.raises(KeyError, match="Table 1"):
        paper_table("Table 7")
    with pytest.raises(KeyError, match="unknown table"):
        paper_value(table="table 1", setting="no defence", row="resnet", column="FGSM")


def test_tables_repeat_each_other_where_the_paper_does():
    """Rows the paper prints in more than one table agree, except Dynamic's no-defence MNIST
    FGSM (14.04 in Table 1, 17.04 in Table 3), kept as printed."""
    def values(table, row, setting=None):
        return [r["value"] for r in paper_table(table)
                if r["row"] == row and setting in (None, r["setting"])]

    for row in ("resnet", "mustafa"):
        assert values("Table 1", row) == values("Table 3", row)
        assert values("Table 2", row) == values("Table 4", row)
    assert values("Table 2", "dynamic") == values("Table 4", "dynamic")
    t1, t3 = values("Table 1", "dynamic"), values("Table 3", "dynamic")
    assert [(a, b) for a, b in zip(t1, t3) if a != b] == [(14.04, 17.04)]
    assert values("Table 5", "dfl") == values("Table 4", "dfl")
    assert values("Table 5", "dfl_pcl") == values("Table 2", "dfl_pcl")
    assert values("Table 6", "resnet_dfl_pcl") == \
        values("Table 2", "dfl_pcl", "adversarial training")


# --- against the paper's text ------------------------------------------------------------------

@pytest.mark.parametrize("table", list(EXPECTED_COUNTS))
def test_every_number_matches_the_printed_table(paper_lines, table):
    printed = _parse_block(_printed_block(paper_lines, table))
    assert sum(len(cells) for cells in printed.values()) == EXPECTED_COUNTS[table]
    assert _csv_rows(table) == printed  # same labels, settings and number texts, in order


@pytest.mark.parametrize("table, setting, row, column, printed", SPOT_VALUES)
def test_spot_values_are_on_their_printed_line(paper_lines, table, setting, row, column, printed):
    (source,) = {r["source"] for r in paper_table(table) if r["row"] == row}
    block = _printed_block(paper_lines, table)
    starts = [i for i, line in enumerate(block) if line.split("\t")[0].strip() == source]
    headers = [i for i, line in enumerate(block) if line.split("\t")[0] in PRINTED_SETTINGS]
    # the line of `source` under this setting's header
    setting_of = {i: PRINTED_SETTINGS[block[max(h for h in headers if h < i)].split("\t")[0]]
                  for i in starts}
    (line,) = [block[i] for i in starts if setting_of[i] == setting]
    numbers = [re.sub(r"</?b>", "", c).strip() for c in line.split("\t")[1:]]
    assert numbers[COLUMNS.index(column)] == printed


def test_captions_are_the_papers(paper_lines):
    for table, meta in TABLES.items():
        assert paper_lines[_caption_index(paper_lines, table)] == f"{table}: {meta['caption']}"


def test_claims_are_verbatim_quotes_with_their_numbers(paper_lines):
    text = " ".join(" ".join(paper_lines).split())
    claims = paper_claims()
    # one row per tested claim or part of one (a two-part sentence has two rows)
    assert len({(c["claim_id"], c["part"]) for c in claims}) == len(claims) >= 10
    for claim in claims:
        quote = " ".join(claim["text"].split())
        assert quote in text, f"{claim['claim_id']}: not found verbatim in the paper"
        for number in filter(None, claim["quantity"].split(";")):
            assert re.search(rf"(?<![\d.]){re.escape(number)}(?![\d])", quote), \
                f"{claim['claim_id']}: {number} is not in its quote"
    by_id = {c["claim_id"]: c for c in claims}
    assert by_id["fig5_resnet50_dfl_gain"]["quantity"] == "7.1;60.5;64.8"
    assert by_id["conclusion_margins_75_55"]["quantity"] == "75;55"
    assert by_id["table6_wrn_margin"]["quantity"] == "0.8;7.20"
