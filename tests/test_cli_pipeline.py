import json
from pathlib import Path

import pytest

from hybrid_scorer.cli import build_parser, main
from hybrid_scorer.tracking import log_run


def test_help_explains_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("extract", "evaluate", "train", "ablate", "predict", "monitor"):
        assert command in out
    with pytest.raises(SystemExit):
        main(["extract", "--help"])
    assert "resumes" in capsys.readouterr().out


def test_bad_data_path_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["evaluate", "--data", str(tmp_path / "missing.csv"), "-q"]) == 2
    assert "file not found" in capsys.readouterr().err


def test_expected_failures_are_one_line_and_bugs_keep_their_traceback(
    csv_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A HybridScorerError (here: no trained model) is one "error:" line and exit 2; a bug in the code
    (here: a numpy-style ValueError from inside training) raises with its traceback, even without -v."""
    assert main(["predict", "--model-dir", str(tmp_path / "nothing"), "--title", "Why?"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no trained model in") and err.count("\n") == 1

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("operands could not be broadcast together with shapes (3,) (4,)")

    monkeypatch.setattr("hybrid_scorer.fits.cross_validate", broken)
    with pytest.raises(ValueError, match="could not be broadcast"):
        main(["train", "--data", str(csv_path), "--llm", "none", "-q", "--out", str(tmp_path / "m"), "--no-register"])


def test_evaluate_prints_the_table(csv_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--data", str(csv_path), "-q"]) == 0
    out = capsys.readouterr().out
    for row in (
        "median baseline",
        "TF-IDF + RandomForest baseline",
        "content (text_stats+tfidf+meta)",
        "content + time_trend",
    ):
        assert row in out


def test_extract_train_predict_smoke(csv_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["extract", "--data", str(csv_path), "--llm", "mock", "--limit", "20", "--out", "ex", "-q"]) == 0
    ledger = json.loads((tmp_path / "ex" / "ledger.json").read_text())
    assert ledger["total"]["calls"] == 40 and set(ledger["by_kind"]) == {"assess", "embed"}
    assert main(["train", "--data", str(csv_path), "--llm", "mock", "-q"]) == 0
    assert (tmp_path / "models/current/hybrid/manifest.json").is_file()
    capsys.readouterr()
    assert main(["predict", "--title", "Why is the sky blue?", "--json"]) == 0
    prediction = json.loads(capsys.readouterr().out)
    assert prediction["score"] >= 0 and prediction["fallback"] is False
    assert main(["predict", "--title", "Why is the sky blue?"]) == 0
    said = capsys.readouterr().out
    assert said.startswith(f"Predicted score: {prediction['score']:,.0f}\n") and "Chance of reaching 1,000" in said
    assert main(["predict", "--title", "   "]) == 2
    assert "'title'" in capsys.readouterr().err


def test_ablate_writes_report_and_plots(csv_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hybrid_scorer.report import MARKERS, Results

    doc = tmp_path / "README.md"
    doc.write_text(f"# Title\n\n{MARKERS[0]}\nstale numbers\n{MARKERS[1]}\n\nmore text\n")
    args = ["ablate", "--data", str(csv_path), "--llm", "mock", "--out", "rep", "--n-boot", "20", "-q"]
    assert main([*args, "--docs", str(doc)]) == 0
    report = (tmp_path / "rep" / "ablation.md").read_text()
    results = Results.model_validate_json((tmp_path / "rep" / "ablation.json").read_text())
    content = next(r for r in results.rows if r.key == "content")
    text = doc.read_text()
    assert "stale numbers" not in text and text.endswith("more text\n")
    assert f"| {content.name} | {content.intervals['spearman'][0]:.3f} [" in text
    for needle in (
        "full hybrid",
        "LLM ratings alone",
        "content + time_trend",
        "Δ Spearman",
        "data file sha256",
        "git commit",
        "mock:mock-v1",
    ):
        assert needle in report
    for plot in ("ablation.png", "pred_vs_actual.png", "importance.png", "residuals_by_flair.png"):
        assert (tmp_path / "rep" / plot).stat().st_size > 1000
    # `train` after `ablate` (as in `make run`) reads both served cross-fits the ablation stored: the
    # served rows are the saved models' own cross-validation
    capsys.readouterr()
    assert main(["train", "--data", str(csv_path), "--llm", "mock", "--no-register", "-q"]) == 0
    assert capsys.readouterr().out.count("read from the fit cache") == 2
    for role, key in (("content", "content"), ("hybrid", "full_hybrid_stack")):
        manifest = json.loads((tmp_path / "models/current" / role / "manifest.json").read_text())
        row = next(r for r in results.rows if r.key == key)
        assert manifest["metrics"]["cv_spearman"] == pytest.approx(row.fold_spearman_mean, abs=1e-12)


def test_mlflow_run_is_logged_with_metrics(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    run_id = log_run("unit", params={"a": 1}, metrics={"evaluate.content.spearman": 0.4}, text_artifacts={"t.md": "hi"})
    assert run_id is not None
    run = MlflowClient().get_run(run_id)
    assert run.data.metrics["evaluate.content.spearman"] == 0.4 and run.data.params["a"] == "1"


def test_the_llm_comes_from_settings_when_no_flag_names_it(
    csv_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYBRID_SCORER_LLM", "mock")
    assert main(["extract", "--data", str(csv_path), "--limit", "3", "--out", "ex", "-q"]) == 0
    table = (tmp_path / "ex" / "assessments.csv").read_text()
    assert "mock,mock-v1" in table  # the backend the extraction really used
    assert build_parser().parse_args(["evaluate"]).llm == "none"  # evaluate is content-only unless asked
