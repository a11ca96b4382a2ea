"""scripts/readme_figure.py copies a finished run's plot (gold questions first), refuses an unfinished run."""

import importlib.util

from helpers.core import config
from helpers.core.io import write_json

SCRIPT = config.REPO_ROOT / "scripts" / "readme_figure.py"
spec = importlib.util.spec_from_file_location("readme_figure", SCRIPT)
readme_figure = importlib.util.module_from_spec(spec)
spec.loader.exec_module(readme_figure)


def test_copies_the_gold_plot(tmp_path, capsys):
    run = tmp_path / "workshop"
    (run / "plots").mkdir(parents=True)
    (run / "plots" / "ndcg_at_10_vs_dim_test.png").write_bytes(b"test")
    (run / "plots" / "ndcg_at_10_vs_dim_gold.png").write_bytes(b"gold")
    write_json(run / "eval.json", {"profile": "workshop", "systems": {"base": {"loaded": "arctic"}}})
    out = tmp_path / "docs" / "ndcg_vs_dim.png"
    assert readme_figure.main([str(run), "--out", str(out)]) == 0
    assert out.read_bytes() == b"gold"
    assert "profile workshop; base: arctic" in capsys.readouterr().out


def test_an_unfinished_run_is_an_error(tmp_path, capsys):
    assert readme_figure.main([str(tmp_path), "--out", str(tmp_path / "x.png")]) == 2
    assert "finish the run's evaluate stage" in capsys.readouterr().out
    assert not (tmp_path / "x.png").exists()
