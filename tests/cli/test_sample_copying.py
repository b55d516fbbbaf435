"""`kafkarnn sample` says what its text shares with the training text: a stderr line, marks on
a terminal, the stretches in --json; and one line, no marks, when that text is gone or changed."""

import json

import pytest
from conftest import TINY

from kafkarnn.cli.runs import marked_for_terminal
from kafkarnn.main import main
from kafkarnn.seam import Copied


def train_tiny(book, *extra):
    return main(["--headless", "--corpus", str(book), *TINY, *extra])


def test_json_gives_the_stretches_and_their_place_in_the_text(home, book, capsys):
    assert train_tiny(book, "--max-iters", "3") == 0
    capsys.readouterr()
    assert main(["sample", "--length", "60", "--seed", "1", "--json", "--copy-min", "3"]) == 0
    out, err = capsys.readouterr()
    got = json.loads(out)
    text, copied = got["text"], got["copied"]
    assert len(text) == 60 and copied["min_len"] == 3
    train = book.read_text()[:round(len(book.read_text()) * 0.9)]
    assert copied["stretches"], "the porter text repeats: 3-character stretches are everywhere"
    for s in copied["stretches"]:
        piece = text[s["start"]:s["start"] + s["length"]]
        assert len(piece) >= 3 and train[s["corpus_start"]:s["corpus_start"] + s["length"]] == piece
    assert copied["longest"] == max(s["length"] for s in copied["stretches"])
    assert f"longest stretch shared with the training text: {copied['longest']} characters" in err


def test_the_cache_is_made_once_then_the_text_is_not_read_again(home, book, capsys, monkeypatch):
    assert train_tiny(book, "--max-iters", "3") == 0
    assert main(["sample", "--length", "10"]) == 0
    assert "indexing the training text" in capsys.readouterr().err
    files = sorted((home / "copying").iterdir())
    assert [f.name.split(".", 1)[1] for f in files] == ["ids.npy", "json", "npy"]
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)
    import kafkarnn.train.launch as launch

    def unread(*a, **k):
        raise AssertionError("the unchanged text was read again")
    monkeypatch.setattr(launch, "load_corpus", unread)
    assert main(["sample", "--length", "40", "--json", "--copy-min", "1"]) == 0
    out, err = capsys.readouterr()
    assert "indexing" not in err and sorted((home / "copying").iterdir()) == files
    assert json.loads(out)["copied"]["stretches"]


@pytest.mark.parametrize("change", ["edited", "touched"])
def test_a_file_changed_after_the_ids_were_kept_is_read_again(home, book, capsys, change):
    assert train_tiny(book, "--max-iters", "3") == 0
    assert main(["sample", "--length", "10"]) == 0
    text = book.read_text()
    book.write_text(text.replace("porter", "keeper") if change == "edited" else text)
    capsys.readouterr()
    assert main(["sample", "--length", "30", "--json", "--copy-min", "1"]) == 0
    out, err = capsys.readouterr()
    if change == "edited":
        assert json.loads(out)["copied"] is None and "gone or changed" in err
    else:                                         # same text, new time: hashed, still marked
        assert json.loads(out)["copied"]["stretches"] and "gone or changed" not in err


@pytest.mark.parametrize("change", ["gone", "changed"])
def test_a_gone_or_changed_text_gives_one_line_and_no_marks(home, book, capsys, change):
    assert train_tiny(book, "--max-iters", "3") == 0
    if change == "gone":
        book.unlink()
    else:
        book.write_text(book.read_text().replace("porter", "keeper"))
    capsys.readouterr()
    assert main(["sample", "--length", "30", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["copied"] is None and len(json.loads(out)["text"]) == 30
    notes = [line for line in err.splitlines() if "copy check" in line]
    assert len(notes) == 1 and "gone or changed" in notes[0]


def test_terminal_marks_are_reverse_video_around_each_stretch():
    copied = Copied(longest=3, stretches=((1, 3, 0), (2, 3, 9)), min_len=3)
    assert marked_for_terminal("abcdefg", copied) == "a\x1b[7mbcde\x1b[27mfg"
    assert marked_for_terminal("abcd", Copied(stretches=((1, 3, 0),))) == "a\x1b[7mbcd\x1b[27m"
