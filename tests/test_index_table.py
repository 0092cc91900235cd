"""The index's compute table renders: plan keys hold "|" ("mnist | resnet18 | no defence"), which
split every row into extra cells, so no seconds showed (issue 19's review, found by the
before-stop check)."""
from dfl_lib.study.index import write_index


def _rows_fit_their_header(text: str) -> list[str]:
    bad, lines = [], text.splitlines()
    for i, line in enumerate(lines[:-1]):
        if line.startswith("|") and set(lines[i + 1].replace("|", "").strip()) <= set("-: "):
            cells = line.count("|")
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                if row.replace("\\|", "").count("|") != cells:
                    bad.append(row)
    return bad


def test_plan_items_with_pipes_stay_in_one_cell(tmp_path):
    index = write_index("smoke", out_dir=tmp_path, command="pytest",
                        plan_seconds={"mnist | resnet18 | no defence": 15.0,
                                      "mnist | dfl_pcl | adversarial training | s0": 47.0},
                        notebook_seconds={"01-depth": 3.0})
    text = index.read_text()
    assert "| mnist \\| resnet18 \\| no defence | 15 |" in text
    assert not _rows_fit_their_header(text)
