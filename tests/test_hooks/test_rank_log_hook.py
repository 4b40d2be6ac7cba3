"""RankLogHook on a real Runner: warnings tagged with their rank in the run's log file."""
import logging

import pytest
from helpers.tiny_runner import tiny_runner
from helpers.video_tools import run_log

from nlnet.hooks import RankLogHook
from nlnet.hooks.rank_log_hook import RankTag


def test_warnings_and_errors_are_tagged_with_the_rank_once(tmp_path):
    runner = tiny_runner(tmp_path)
    hook = RankLogHook()
    hook.before_run(runner)
    hook.before_run(runner)  # a second run of the same logger adds no second tag
    assert sum(isinstance(f, RankTag) for f in runner.logger.filters) == 1
    runner.logger.warning('a warning')
    runner.logger.error('an error')
    runner.logger.info('progress')
    lines = run_log(tmp_path).splitlines()
    (warning, ) = [line for line in lines if line.endswith('a warning')]
    (error, ) = [line for line in lines if line.endswith('an error')]
    assert ' - WARNING - ' in warning and warning.endswith(' - [rank 0] a warning')
    assert ' - ERROR - ' in error and error.endswith(' - [rank 0] an error')
    assert any(line.endswith(' - INFO - progress') for line in lines)


def test_level_is_checked():
    with pytest.raises(ValueError, match="level must be 'DEBUG', 'INFO', 'WARNING' or 'ERROR', "
                                         "got 'LOUD'"):
        RankLogHook(level='LOUD')


def test_tag_names_the_rank():
    record = logging.LogRecord('x', logging.WARNING, __file__, 1, 'slow disk', None, None)
    RankTag(3).filter(record)
    assert record.getMessage() == '[rank 3] slow disk'
