"""The tools' ``__main__``: a refused run ends as argparse ends a bad command line."""
import sys

import pytest

from nlnet.engine import run_tool_main
from nlnet.utils import PreflightError


def test_refused_run_exits_with_status_2_naming_the_tool(monkeypatch, capsys):
    monkeypatch.setattr(sys, 'argv', ['/somewhere/tools/train.py', 'config.py'])

    def refused():
        raise PreflightError("load_from: checkpoint 'x.pth' does not exist")

    with pytest.raises(SystemExit) as end:
        run_tool_main(refused)
    assert end.value.code == 2
    assert capsys.readouterr().err == \
        "train.py: error: load_from: checkpoint 'x.pth' does not exist\n"


def test_finished_run_returns_and_other_errors_keep_their_traceback(monkeypatch):
    monkeypatch.delenv('WORLD_SIZE', raising=False)
    ran = []
    assert run_tool_main(lambda: ran.append(True)) is None and ran == [True]

    def broken():
        raise ValueError('a bug, not a refused run')

    with pytest.raises(ValueError, match='a bug, not a refused run'):
        run_tool_main(broken)
