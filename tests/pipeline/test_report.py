import base64

import matplotlib.pyplot as plt

from helpers.core import config
from helpers.pipeline.report import Section, key_value_table, write_report


def test_report_writes_markdown_and_self_contained_html(tmp_path):
    paths = config.run_paths("r", tmp_path)
    paths.plots.mkdir()
    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 4])
    fig.savefig(paths.plots / "ndcg.png")
    plt.close(fig)
    sections = [Section("Retrieval", "Fine-tuned <beats> base.", [key_value_table({"ndcg@10": 0.81234})],
                        [paths.plots / "ndcg.png"])]
    md, html = write_report(paths, "Run report", sections)
    text = md.read_text()
    assert "## Retrieval" in text and "| ndcg@10 | 0.8123 |" in text and "](plots/ndcg.png)" in text
    page = html.read_text()
    embedded = base64.b64encode((paths.plots / "ndcg.png").read_bytes()).decode()
    assert f"data:image/png;base64,{embedded}" in page
    assert "Fine-tuned &lt;beats&gt; base." in page and "<td>0.8123</td>" in page
