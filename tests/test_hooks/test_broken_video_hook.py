"""BrokenVideoHook on a real Runner: per-epoch naming, the epoch summary, the list file
(kept across a resumed run) and the report of the videos left out of testing."""
import torch
from helpers.tiny_runner import tiny_runner
from helpers.video_tools import run_log
from mmaction.registry import METRICS
from mmaction.structures import ActionDataSample
from mmengine.evaluator import Evaluator
from mmengine.structures import BaseDataElement
from torch.utils.data import DataLoader

import nlnet.openmmlab  # noqa: F401
from nlnet.hooks import BrokenVideoHook
from nlnet.hooks.broken_video_hook import read_broken_list

MISSING = dict(filename='v/missing.mp4', reason='file not found')
EMPTY = dict(filename='v/empty.mp4', reason='empty file (0 bytes)')


def batch(*replaced):
    """A training batch: one sample per entry, replacing the broken videos it lists."""
    return dict(data_samples=[BaseDataElement(metainfo=dict(replaced_videos=list(videos)))
                              for videos in replaced])


def test_each_broken_video_is_named_once_an_epoch_and_listed(tmp_path):
    runner = tiny_runner(tmp_path)
    hook = BrokenVideoHook()
    hook.before_run(runner)
    hook.before_train_epoch(runner)
    hook.after_train_iter(runner, 0, batch([MISSING], []))
    hook.after_train_iter(runner, 1, batch([MISSING, EMPTY]))
    hook.after_train_epoch(runner)

    log = run_log(tmp_path)
    for video in (MISSING, EMPTY):
        assert log.count(f'epoch 1: broken video {video["filename"]} ({video["reason"]}); '
                         'replaced by another sample') == 1
    list_file = tmp_path / 'broken_videos.txt'
    assert (f'epoch 1: 2 broken videos replaced by other samples (rank 0: 2); list in '
            f'{list_file}') in log
    assert read_broken_list(list_file) == {video['filename']: video['reason']
                                           for video in (MISSING, EMPTY)}

    hook.before_train_epoch(runner)  # a new epoch names them again; none here
    hook.after_train_epoch(runner)
    assert 'epoch 1: no broken videos replaced' in run_log(tmp_path)


def test_a_resumed_run_adds_to_the_list(tmp_path):
    (tmp_path / 'broken_videos.txt').write_text('v/earlier.mp4\tcannot open: x\n')
    runner = tiny_runner(tmp_path)
    hook = BrokenVideoHook()
    hook.before_run(runner)
    hook.before_train_epoch(runner)
    hook.after_train_iter(runner, 0, batch([EMPTY]))
    hook.after_train_epoch(runner)
    assert read_broken_list(tmp_path / 'broken_videos.txt') == {
        'v/earlier.mp4': 'cannot open: x', EMPTY['filename']: EMPTY['reason']}


class SkippingList(list):
    """A test set of readable samples that had left one listed video out when it was built."""

    skipped = [dict(filename='v/skipped.mp4', label=0, reason='cannot open: moov atom')]
    strict = False


def scored(label, broken=None):
    sample = ActionDataSample().set_gt_label(label).set_pred_score(torch.eye(4)[label])
    if broken is not None:
        sample.set_metainfo(dict(broken_video=broken))
    return sample


def test_testing_reports_each_video_left_out_of_the_metrics(tmp_path):
    metric = METRICS.build(dict(type='ReadableAccMetric'))
    runner = tiny_runner(tmp_path, test_dataloader=DataLoader(SkippingList([0, 1, 2])),
                         test_cfg=dict(), test_evaluator=Evaluator([metric]))
    hook = BrokenVideoHook()
    hook.before_run(runner)
    hook.before_test_epoch(runner)  # a lenient dataset with a metric that leaves stand-ins out
    stand_in = dict(MISSING, label=2)
    metric.process(None, [scored(0).to_dict(), scored(1).to_dict(),
                          scored(3, stand_in).to_dict()])
    metric.evaluate(3)
    hook.after_test_epoch(runner)

    log = run_log(tmp_path)
    assert ('testing: broken video v/skipped.mp4 (cannot open: moov atom) left out of the '
            'metrics') in log
    assert 'testing: broken video v/missing.mp4 (file not found) left out of the metrics' in log
    assert (f'testing: 2 of 4 videos are broken and left out of the metrics; list in '
            f'{tmp_path / "broken_videos.txt"}') in log
    assert set(read_broken_list(tmp_path / 'broken_videos.txt')) == {'v/skipped.mp4',
                                                                     'v/missing.mp4'}
