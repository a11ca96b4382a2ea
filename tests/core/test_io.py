import pytest

from helpers.core.io import read_jsonl, write_json, write_jsonl


def test_jsonl_round_trip(tmp_path):
    rows = [{"id": "a", "text": "ﬁrst “quote”"}, {"id": "b", "text": "second"}]
    assert write_jsonl(tmp_path / "x.jsonl", rows) == 2
    assert read_jsonl(tmp_path / "x.jsonl") == rows


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "x.jsonl"
    write_jsonl(target, [{"ok": 1}])

    def rows():
        yield {"ok": 2}
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_jsonl(target, rows())
    assert read_jsonl(target) == [{"ok": 1}]
    assert [p.name for p in tmp_path.iterdir()] == ["x.jsonl"]


def test_write_json_creates_parents(tmp_path):
    write_json(tmp_path / "a" / "b.json", {"k": [1, 2]})
    assert (tmp_path / "a" / "b.json").read_text().startswith("{")


def test_artifacts_get_the_permissions_of_any_new_file(tmp_path):
    import os

    from helpers.core.io import UMASK, write_json

    write_json(tmp_path / "a.json", {"a": 1})
    (tmp_path / "plain.txt").write_text("")
    mode = (tmp_path / "a.json").stat().st_mode & 0o777
    assert mode == 0o666 & ~UMASK == (tmp_path / "plain.txt").stat().st_mode & 0o777
    assert os.umask(UMASK) == UMASK  # reading it left it as it was
