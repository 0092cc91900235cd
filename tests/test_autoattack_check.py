"""AutoAttack's standard cascade on the headline models (studies/autoattack_check.py): each stage
attacks only the survivors and can only lower accuracy, the ball holds, chunks join into one
model's rows, an interrupted check resumes where it stopped without redoing a chunk, and the
summary pairs only the seeds both rows finished."""
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "studies"))
import autoattack_check as aa  # noqa: E402
import headline  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
REPORT = ROOT / "reports" / "quick" / "autoattack-check" / "check.json"
# small budgets: the cascade's logic, not AutoAttack's strength, is under test
SMALL = {"apgd_ce": {"steps": 5}, "apgd_t": {"steps": 3}, "fab": {"steps": 3},
         "square": {"n_queries": 30}}


@pytest.fixture(scope="module")
def tiny(tiny_task):
    model, x, y = tiny_task  # 24 images: the cascade's tests stay fast
    return model, x[:24], y[:24]


def _masks(chunk, n):
    return {s: headline.unhex(h, n=n) for s, h in chunk["masks"].items()}


def test_each_stage_attacks_the_survivors_and_only_lowers_accuracy(tiny):
    model, x, y = tiny
    weak = aa.attack_chunk(model, x, y, eps=0.05, overrides=SMALL)
    strong = aa.attack_chunk(model, x, y, eps=0.5, overrides=SMALL)
    for r in (weak, strong):
        m = _masks(r, len(y))
        assert list(m) == ["clean", *aa.STAGES]
        for before, after in zip(list(m.values()), list(m.values())[1:]):
            assert not (after & ~before).any()  # no example comes back to life
    assert all(v <= 0.5 + 1e-5 for v in strong["max_linf"].values())
    assert all(v <= 0.05 + 1e-5 for v in weak["max_linf"].values())
    # a ten times larger ball takes more examples (the quadrant task falls at 0.5)
    assert _masks(strong, len(y))["square"].sum() < _masks(weak, len(y))["square"].sum()
    assert strong["settings"]["apgd_ce"]["steps"] == 5  # the overrides reached the attack


def test_a_stage_with_no_survivors_is_skipped_and_recorded_as_such(tiny):
    model, x, y = tiny
    r = aa.attack_chunk(model, x, (y + 1) % 4, eps=0.3, overrides=SMALL)  # every label wrong
    assert not _masks(r, len(y))["clean"].any()
    assert all(r["settings"][s] is None and r["seconds"][s] == 0.0 for s in aa.STAGES)


def test_chunks_join_into_the_rows_of_their_concatenated_masks():
    rng = np.random.default_rng(0)
    sizes, chunks, full = [5, 5, 3], [], {s: [] for s in ("clean", *aa.STAGES)}
    for k in sizes:
        alive, masks = rng.random(k) < 0.9, {}
        for s in ("clean", *aa.STAGES):
            alive = alive & (rng.random(k) < 0.8)
            masks[s] = headline.hex_mask(alive)
            full[s].append(alive)
        chunks.append({"masks": masks, "max_linf": {s: 0.1 * k for s in aa.STAGES},
                       "seconds": {"clean": 1.0, **{s: 2.0 for s in aa.STAGES}},
                       "cpu_seconds": 3.0})
    got = aa.assemble(chunks, sizes=sizes)
    for s, parts in full.items():
        want = np.concatenate(parts)
        assert got["rows"][s]["n_correct"] == want.sum() and got["rows"][s]["n"] == 13
        assert (headline.unhex(got["masks"][s], n=13) == want).all()
    assert got["rows"]["autoattack"]["n_correct"] == got["rows"]["square"]["n_correct"]
    assert got["rows"]["autoattack"]["threat_model"] == {"norm": "Linf", "eps": aa.EPS}
    assert got["rows"]["square"]["max_linf"] == pytest.approx(0.5)
    assert got["seconds"] == 27.0 and got["cpu_seconds"] == 9.0


def _fake_runs(monkeypatch, tmp_path, *, model, x, y, finished=lambda rdir: True):
    """Every headline model is `model` in a finished run under tmp_path (run folder
    run-<row>-s<seed>), its test set x, y: the check's logic without the study's runs."""
    import dfl_lib.experiments.data as data_mod
    import dfl_lib.runs.folder as folder
    import dfl_lib.study.records as records
    monkeypatch.setattr(aa, "cell_config", lambda profile, **kw: SimpleNamespace(**kw))
    data = SimpleNamespace(x_test=(x * 255).to(torch.uint8), y_test=y)
    monkeypatch.setattr(data_mod, "load_data", lambda cfg, root=None: data)
    monkeypatch.setattr(folder, "run_path",
                        lambda cfg, data, runs_root: tmp_path / f"run-{cfg.row}-s{cfg.seed}")
    monkeypatch.setattr(aa.runio, "is_finished", finished)
    monkeypatch.setattr(records, "load_run", lambda cfg, runs_root, data_root: {"model": model})


def test_an_interrupted_check_resumes_without_redoing_a_chunk(tiny, tmp_path, monkeypatch):
    model, x, y = tiny
    _fake_runs(monkeypatch, tmp_path, model=model, x=x, y=y)
    monkeypatch.setattr(aa.headline, "models", lambda profile, rows, undefended: [
        ("resnet", headline.PGD, 0), ("dfl_pcl", headline.PGD, 0)])
    out = tmp_path / "aa.json"
    calls = []
    real = aa.attack_chunk

    def counted(*args, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # stopped in the middle of the second model
        return real(*args, **kw)
    monkeypatch.setattr(aa, "attack_chunk", counted)
    run = dict(runs_root=tmp_path, out=out, n=20, chunk=8, overrides=SMALL, progress=lambda s: 0)
    with pytest.raises(KeyboardInterrupt):
        aa.run_check("quick", **run)
    saved = json.loads(out.read_text())["models"]
    assert len(saved["resnet | adversarial training | s0"]["chunks"]) == 2
    monkeypatch.setattr(aa, "attack_chunk", real)
    report = aa.run_check("quick", **run)
    again = len(calls)
    assert again == 3  # nothing attacked again in the rerun: only the counted calls so far
    for m in report["models"].values():
        assert len(m["chunks"]) == 3 and m["rows"]["autoattack"]["n"] == 20
    with pytest.raises(Exception, match="other settings"):
        aa.run_check("quick", **{**run, "chunk": 10})
    # a fresh machine: no per-row file, the merged report's chunks of this row are kept
    merged = tmp_path / "merged.json"
    saved = json.loads(out.read_text())
    saved["models"]["resnet | adversarial training | s0"]["chunks"].pop()  # one chunk left
    for m in saved["models"].values():
        m.pop("rows", None)
    merged.write_text(json.dumps(saved))
    calls.clear()
    monkeypatch.setattr(aa, "attack_chunk", counted)
    monkeypatch.setattr(aa.headline, "models", lambda profile, rows, undefended: [
        ("resnet", headline.PGD, 0)])
    again = aa.run_check("quick", **{**run, "out": tmp_path / "fresh.json", "rows": ("resnet",),
                                     "resume_from": merged})
    assert len(calls) == 1 and set(again["models"]) == {"resnet | adversarial training | s0"}
    assert again["models"]["resnet | adversarial training | s0"]["rows"]["autoattack"]["n"] == 20


def test_the_summary_pairs_only_the_seeds_both_rows_finished():
    def model(row, seed, hits):
        mask = np.array(hits)
        return {"row": row, "setting": headline.PGD, "seed": seed, "chunks": [{}],
                "rows": {"clean": headline.row(torch.ones(len(hits), dtype=torch.bool)),
                         "autoattack": headline.row(torch.from_numpy(mask))},
                "masks": {"square": headline.hex_mask(mask)}}
    rng = np.random.default_rng(1)
    report = {"n": 300, "chunk": 100, "models": {}}
    for s in (0, 1, 2):
        base = rng.random(300) < 0.85
        report["models"][f"r{s}"] = model("resnet", s, base)
        report["models"][f"d{s}"] = model("dfl_pcl", s, base & (rng.random(300) < 0.9))
    del report["models"]["d2"]["rows"]  # seed 2 of DFL + PCL unfinished
    summary = aa.summarise(report)
    effect = summary["effect"]
    want = np.mean([report["models"][f"d{s}"]["rows"]["autoattack"]["accuracy"]
                    - report["models"][f"r{s}"]["rows"]["autoattack"]["accuracy"] for s in (0, 1)])
    assert effect["seeds"] == [0, 1] and effect["effect"] == pytest.approx(want) and want < 0
    assert effect["low"] < effect["effect"] < effect["high"]
    assert summary["pending"] == {"d2": "1 of 3 chunks"}
    assert summary["table"]["resnet | adversarial training"]["seeds"] == [0, 1, 2]
    # the page says an interval over 2 of the 3 seeds holds no effect
    assert "2 seeds of 3: too few seeds to state an effect" in aa.effect_text(effect)
    # a t interval over 2 seeds holds their spread too: only one seed's is image noise alone
    assert "image noise only" not in aa.effect_text(effect)
    full = aa.summarise({**report, "models": {**report["models"],
                                              "d2": model("dfl_pcl", 2, rng.random(300) < 0.8)}})
    assert full["effect"]["seeds"] == [0, 1, 2]
    assert "too few seeds" not in aa.effect_text(full["effect"])


def _finished(row, seed, accuracy, *, n=1000, rng):
    mask = rng.random(n) < accuracy / 100
    return {"row": row, "setting": headline.PGD, "seed": seed, "chunks": [{}],
            "rows": {"autoattack": headline.row(torch.from_numpy(mask))},
            "masks": {"square": headline.hex_mask(mask)}}


@pytest.mark.parametrize("dfl_pcl,resnet,seeds,want,why", [
    (88.0, 87.0, (0, 1, 2), "not reproduced", ""),          # below Gowal et al.'s 96.34%
    (99.5, 87.0, (0, 1, 2), "reproduced", ""),              # above it on every seed
    (88.0, 87.0, (0,), "not testable here", "finished on 1 of 3 seeds"),
    (88.0, 70.0, (0, 1, 2), "not testable here", "below regime"),
])
def test_the_benchmark_claim_is_judged_against_the_best_published_autoattack_number(
        dfl_pcl, resnet, seeds, want, why):
    rng = np.random.default_rng(0)
    report = {"eps": 0.3, "models": {}}
    for s in seeds:
        report["models"][f"d{s}"] = _finished("dfl_pcl", s, dfl_pcl, rng=rng)
        report["models"][f"r{s}"] = _finished("resnet", s, resnet, rng=rng)
    v = aa.benchmark_verdict(report)
    assert v["claim_id"] == "mnist_adversarial_benchmark" and v["verdict"] == want
    assert why in v["reason"]
    assert v["estimate"] == pytest.approx(dfl_pcl - aa.BEST_PUBLISHED[1], abs=2.0)
    assert v["seeds"] == len(seeds) and v["n"] == 1000 and v["low"] < v["estimate"] < v["high"]
    unfinished = {"models": {"d0": {"row": "dfl_pcl", "setting": headline.PGD, "seed": 0,
                                    "chunks": []}}}
    assert "not run yet" in aa.benchmark_verdict(unfinished)["reason"]


def test_merge_joins_the_rows_and_lists_every_model_still_pending(tmp_path):
    settings = {k: 1 for k in aa._SETTINGS} | {"profile": "quick", "dataset": "mnist",
                                               "undefended": "first seed"}
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    started = "resnet | adversarial training | s0"
    a.write_text(json.dumps({**settings, "n": 100, "chunk": 50, "models": {started: {
        "row": "resnet", "setting": headline.PGD, "seed": 0, "chunks": [{}]}}}))
    b.write_text(json.dumps({**settings, "n": 100, "chunk": 50, "models": {}}))
    report = aa.merge([a, b])
    assert set(report["models"]) == {started}
    pending = report["summary"]["pending"]
    assert pending.pop(started) == "1 of 2 chunks"
    # the rows a report holds: resnet's other PGD seeds and its first undefended one, untouched
    assert pending == {f"resnet | adversarial training | s{s}": "0 of 2 chunks" for s in (1, 2)
                       } | {"resnet | no defence | s0": "0 of 2 chunks"}
    assert "no seed is finished for both rows" in aa.markdown(report, summary=report["summary"])
    b.write_text(json.dumps({**settings, "n": 200, "chunk": 50, "models": {}}))
    with pytest.raises(Exception, match="different settings"):
        aa.merge([a, b])


@pytest.mark.skipif(not REPORT.exists(), reason="no committed AutoAttack check")
def test_the_committed_check_re_derives_from_its_masks():
    report = json.loads(REPORT.read_text())
    assert report["n"] >= 1000 and report["eps"] == 0.3
    for key, m in report["models"].items():
        if "rows" not in m:
            continue
        n = m["rows"]["clean"]["n"]
        masks = {s: headline.unhex(h, n=n) for s, h in m["masks"].items()}
        for s, mask in masks.items():
            assert 100.0 * mask.mean() == pytest.approx(m["rows"][s]["accuracy"]), key
        order = [masks[s] for s in ("clean", *aa.STAGES)]
        assert all(not (b & ~a).any() for a, b in zip(order, order[1:])), key
        assert all(m["rows"][s]["max_linf"] <= report["eps"] + 1e-5 for s in aa.STAGES), key
    again = aa.summarise(report)
    assert again["pending"] == report["summary"]["pending"]
    # the page and the verdict beside it are the ones its numbers make
    assert (REPORT.parent / "README.md").read_text() == aa.markdown(report, summary=again)
    saved = json.loads((REPORT.parent / "metrics.json").read_text())["verdicts"]
    assert saved == [json.loads(json.dumps(aa.benchmark_verdict(report)))]
    if report["summary"]["effect"]:
        for k in ("effect", "low", "high"):
            assert again["effect"][k] == pytest.approx(report["summary"]["effect"][k])


def test_a_users_mistake_is_one_line_and_no_page_overwrites_another(tmp_path, capsys):
    assert aa.main(["--merge", str(tmp_path / "absent.json"), "--out",
                    str(tmp_path / "aa" / "check.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no JSON file at") and "\n" not in err
    report = {"profile": "quick", "dataset": "mnist", "eps": 0.3, "n": 100, "chunk": 100,
              "undefended": "first seed", "models": {}}
    report["summary"] = aa.summarise(report)
    folder = tmp_path / "reports" / "quick"
    folder.mkdir(parents=True)
    (folder / "README.md").write_text("# The notebook study at the quick profile\n")
    with pytest.raises(Exception, match="not this check's page"):
        aa.write_page(report, folder=folder)
    assert (folder / "README.md").read_text().startswith("# The notebook study")
    aa.write_page(report, folder=tmp_path / "own")  # a folder of its own: written, and again
    aa.write_page(report, folder=tmp_path / "own")
    assert json.loads((tmp_path / "own" / "metrics.json").read_text())["verdicts"][0][
        "verdict"] == "not testable here"


def test_a_resumed_model_must_be_the_one_its_chunks_were_attacked_with(tiny, tmp_path,
                                                                      monkeypatch):
    model, x, y = tiny
    _fake_runs(monkeypatch, tmp_path, model=model, x=x, y=y)
    monkeypatch.setattr(aa.headline, "models", lambda profile, rows, undefended: [
        ("resnet", headline.PGD, 0)])
    out = tmp_path / "aa.json"
    real, calls = aa.attack_chunk, []

    def once(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kw)
    monkeypatch.setattr(aa, "attack_chunk", once)
    run = dict(runs_root=tmp_path, out=out, n=16, chunk=8, overrides=SMALL, progress=lambda s: 0)
    with pytest.raises(KeyboardInterrupt):
        aa.run_check("quick", **run)
    saved = json.loads(out.read_text())
    entry = saved["models"]["resnet | adversarial training | s0"]
    assert entry["weights_sha256"] == aa.weights_digest(model) and len(entry["chunks"]) == 1
    # another model in the run's place: refused before a chunk is added
    other = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(x[0].numel(), 4))
    with torch.no_grad():
        other[1].weight.zero_()
        other[1].bias.copy_(torch.tensor([9.0, 0, 0, 0]))  # always class 0
    _fake_runs(monkeypatch, tmp_path, model=other, x=x, y=y)
    with pytest.raises(aa.UsageError, match="not the one"):
        aa.run_check("quick", **run)
    # a report written before digests were kept: the clean classification decides
    entry.pop("weights_sha256")
    out.write_text(json.dumps(saved))
    with pytest.raises(aa.UsageError, match="classifies the images of finished chunk 1"):
        aa.run_check("quick", **run)
    assert json.loads(out.read_text())["models"]["resnet | adversarial training | s0"][
        "chunks"] == entry["chunks"]  # nothing written by a refused run
    # the same weights in another memory layout are the same model
    _fake_runs(monkeypatch, tmp_path, model=model.to(memory_format=torch.channels_last),
               x=x, y=y)
    done = aa.run_check("quick", **run)
    assert done["models"]["resnet | adversarial training | s0"]["rows"]["autoattack"]["n"] == 16


def test_a_model_missing_from_the_runs_comes_from_the_reports_weights(tiny, tmp_path,
                                                                     monkeypatch):
    model, x, y = tiny
    import dfl_lib.experiments.trained as trained
    _fake_runs(monkeypatch, tmp_path, model=None, x=x, y=y, finished=lambda rdir: False)
    monkeypatch.setattr(aa.headline, "models", lambda profile, rows, undefended: [
        ("resnet", headline.PGD, 0), ("resnet", headline.PGD, 1)])
    weights = tmp_path / "report" / "record" / "weights"
    weights.mkdir(parents=True)
    (weights / "run-resnet-s0.pt").write_bytes(b"")
    loaded = []
    monkeypatch.setattr(trained, "load_model", lambda path: loaded.append(path) or model)
    run = dict(runs_root=tmp_path, out=tmp_path / "aa.json", n=8, chunk=8, overrides=SMALL,
               progress=lambda s: 0, record=tmp_path / "report")
    # seed 1 has neither a run nor weights: refused before any work, naming both places
    with pytest.raises(aa.UsageError, match="no finished run at .*run-resnet-s1 and no weights "
                                            "at .*run-resnet-s1.pt"):
        aa.run_check("quick", **run)
    assert loaded == [] and not (tmp_path / "aa.json").exists()
    report = aa.run_check("quick", **run, seeds=[0])
    assert loaded == [weights / "run-resnet-s0.pt"]
    assert set(report["models"]) == {"resnet | adversarial training | s0"}
    assert report["models"]["resnet | adversarial training | s0"]["run"] == "run-resnet-s0"
    with pytest.raises(aa.UsageError, match=r"seeds \[7\] are not among the profile's \[0, 1\]"):
        aa.run_check("quick", **run, seeds=[0, 7])


def test_merge_keeps_the_entry_further_on_and_refuses_two_that_disagree(tmp_path):
    settings = {k: 1 for k in aa._SETTINGS} | {"profile": "quick", "dataset": "mnist",
                                               "undefended": "first seed", "n": 100, "chunk": 50}
    key = "resnet | adversarial training | s0"

    def write(name, chunks, **extra):
        path = tmp_path / name
        path.write_text(json.dumps({**settings, "models": {key: {
            "row": "resnet", "setting": headline.PGD, "seed": 0, "chunks": chunks, **extra}}}))
        return path

    old = write("old.json", [{"masks": "a"}])
    new = write("new.json", [{"masks": "a"}, {"masks": "b"}], weights_sha256="f00")
    for path, commit in ((old, "aaa"), (new, "bbb")):
        report = json.loads(path.read_text())
        path.write_text(json.dumps({**report, "provenance": {"git_commit": commit,
                                                             "git_dirty": False}}))
    for order in ([old, new], [new, old]):
        merged = aa.merge(order)
        assert merged["models"][key]["chunks"] == [{"masks": "a"}, {"masks": "b"}]
        assert {p["git_commit"] for p in merged["parts_provenance"]} == {"aaa", "bbb"}
    again = tmp_path / "merged.json"  # a merged report merged again keeps its parts' commits
    again.write_text(json.dumps(merged))
    assert {p["git_commit"] for p in aa.merge([again])["parts_provenance"]} == {"aaa", "bbb"}
    other = write("other.json", [{"masks": "c"}])
    with pytest.raises(aa.UsageError, match=f"disagree on {key}"):
        aa.merge([new, other])
    # the same chunks: what either adds is kept (here the digest); two digests disagree
    bare = write("bare.json", [{"masks": "a"}, {"masks": "b"}])
    for order in ([bare, new], [new, bare], [old, new], [new, old]):
        assert aa.merge(order)["models"][key]["weights_sha256"] == "f00"
    longer = write("longer.json", [{"masks": "a"}, {"masks": "b"}, {"masks": "c"}])
    assert aa.merge([new, longer])["models"][key]["weights_sha256"] == "f00"  # kept from `new`
    foreign = write("foreign.json", [{"masks": "a"}, {"masks": "b"}], weights_sha256="bad")
    with pytest.raises(aa.UsageError, match=f"disagree on {key}"):
        aa.merge([new, foreign])
    # writing over a report whose work no part holds is refused; with it among the parts, fine
    done = tmp_path / "done.json"
    done.write_text(new.read_text())
    seed1 = tmp_path / "seed1.json"
    seed1.write_text(json.dumps({**settings, "models": {}}))
    with pytest.raises(aa.UsageError, match=f"would lose its work on {key}"):
        aa.merge([seed1], out=done)
    with pytest.raises(aa.UsageError, match="would lose"):
        aa.merge([old, seed1], out=done)  # fewer chunks than the report holds
    assert aa.merge([done, seed1], out=done)["models"][key]["chunks"] == [{"masks": "a"},
                                                                         {"masks": "b"}]


def test_the_undefended_models_are_attacked_first(tiny, tmp_path, monkeypatch):
    model, x, y = tiny
    import dfl_lib.study.records as records
    _fake_runs(monkeypatch, tmp_path, model=model, x=x, y=y)
    order = []
    monkeypatch.setattr(records, "load_run", lambda cfg, runs_root, data_root:
                        order.append((cfg.row, cfg.setting)) or {"model": model})
    monkeypatch.setattr(aa.headline, "models", lambda profile, rows, undefended: [
        ("resnet", headline.PGD, 0), ("resnet", headline.UNDEFENDED, 0),
        ("dfl_pcl", headline.PGD, 0), ("dfl_pcl", headline.UNDEFENDED, 0)])
    aa.run_check("quick", runs_root=tmp_path, out=tmp_path / "aa.json", n=4, chunk=4,
                 overrides=SMALL, progress=lambda s: 0)
    assert order == [("resnet", headline.UNDEFENDED), ("dfl_pcl", headline.UNDEFENDED),
                     ("resnet", headline.PGD), ("dfl_pcl", headline.PGD)]
    order.clear()  # one setting only: the others are neither loaded nor written
    report = aa.run_check("quick", runs_root=tmp_path, out=tmp_path / "pgd.json", n=4, chunk=4,
                          overrides=SMALL, progress=lambda s: 0, settings_only=[headline.PGD])
    assert order == [("resnet", headline.PGD), ("dfl_pcl", headline.PGD)]
    assert {m["setting"] for m in report["models"].values()} == {headline.PGD}


def test_the_regime_line_judges_each_finished_seed_of_the_plain_resnet():
    rng = np.random.default_rng(3)
    report = {"models": {"r0": _finished("resnet", 0, 90.0, rng=rng),
                         "r1": _finished("resnet", 1, 70.0, rng=rng),
                         "d0": _finished("dfl_pcl", 0, 99.0, rng=rng)}}
    text = aa.regime_text(report)
    assert "seed 0 " in text and "seed 1 " in text and "99" not in text.split("):")[-1]
    assert text.split("; ")[0].endswith("in the regime") and text.endswith("below.")
    assert aa.regime_text({"models": {}}).endswith("no seed finished yet.")
