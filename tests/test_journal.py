"""The journal of finished sweep rows: exact round trip, durable appends, torn lines skipped, clearing."""
import math

import numpy as np

from diffviz.journal import Journal, encode_row, journal_path, read_journal


def test_journal_sits_next_to_the_table(tmp_path):
    assert journal_path(tmp_path / "res.parquet") == tmp_path / "res.parquet.journal.jsonl"


def test_rows_round_trip_exactly_in_column_order(tmp_path):
    row = {"x": 0.1 + 0.2, "n": 2**70, "tiny": 5e-324, "neg0": -0.0, "flag": True, "none": None,
           "name": 'a "quoted"\nline, ünïcode', "lst": "[1, 2.5]", "nan": math.nan, "inf": -math.inf,
           "np_f": np.float32(0.5), "np_i": np.int64(7), "elapsed_s": 0.25, "error": None, "status": "ok",
           "key": "0123456789abcdef"}
    path = tmp_path / "j.jsonl"
    journal = Journal(path)
    journal.append(row)
    journal.append({**row, "key": "fedcba9876543210", "flag": False})
    journal.close()
    first, second = read_journal(path)
    assert list(first) == list(row)  # column order kept
    assert first["x"] == 0.1 + 0.2 and first["n"] == 2**70 and first["tiny"] == 5e-324
    assert math.copysign(1, first["neg0"]) == -1 and first["inf"] == -math.inf and math.isnan(first["nan"])
    assert first["flag"] is True and second["flag"] is False and first["none"] is None
    assert first["name"] == row["name"] and first["lst"] == "[1, 2.5]"
    assert first["np_f"] == 0.5 and type(first["np_f"]) is float and first["np_i"] == 7 and type(first["np_i"]) is int
    assert type(first["n"]) is int and type(first["x"]) is float
    assert encode_row(row).count(b"\n") == 1  # one line per row, whatever the strings hold


def test_each_append_is_on_disk_before_the_next(tmp_path):
    path = tmp_path / "j.jsonl"
    journal = Journal(path)
    for i in range(3):
        journal.append({"i": i, "key": f"k{i}"})
        assert [r["i"] for r in read_journal(path)] == list(range(i + 1))  # read while still open
    journal.close()


def test_torn_lines_are_skipped_and_never_swallow_a_new_row(tmp_path):
    path = tmp_path / "j.jsonl"
    assert read_journal(path) == []  # no journal: no rows
    path.write_bytes(encode_row({"i": 0, "key": "k0"}) + b"not json\n" + b'["no", "key"]\n' + b'{"i": 1, "ke')
    assert read_journal(path) == [{"i": 0, "key": "k0"}]
    journal = Journal(path)  # a resumed run appending after a write cut short by a kill
    journal.append({"i": 2, "key": "k2"})
    journal.close()
    assert read_journal(path) == [{"i": 0, "key": "k0"}, {"i": 2, "key": "k2"}]
    path.write_bytes(encode_row({"i": 0, "key": "k0"})[:-1] + b"\xff\xfe")  # torn inside a multibyte char
    assert read_journal(path) == []


def test_clear_removes_the_file_and_appending_starts_afresh(tmp_path):
    path = tmp_path / "j.jsonl"
    journal = Journal(path)
    journal.append({"i": 0, "key": "k0"})
    journal.clear()
    assert not path.exists()
    journal.clear()  # nothing to remove: fine
    journal.append({"i": 1, "key": "k1"})
    journal.close()
    assert read_journal(path) == [{"i": 1, "key": "k1"}]
