"""tools/test.py --dump on videos with broken ones mixed in, then tools/analysis/dump_to_csv.py.

The dump carries its format, the counts and the list of broken videos; the CSV
has one row per listed video: the scored ones with the top-5 classes and
scores of the dump and the 10 clips x 3 crops they average, the broken ones
marked.
"""
import csv
import pickle

import numpy as np
import pytest
import torch
from helpers.tool_modules import load_tool
from helpers.video_tools import make_video_data, write_config
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmaction.registry import MODELS

DEFAULT_SCOPE = 'mmaction'
NUM_VAL = 3
TEST_VIEWS = 10 * 3



@pytest.fixture(scope='module')
def dumped(tmp_path_factory):
    """(data, dump path) of a test run of a randomly initialised NL-C2D on the broken list."""
    root = tmp_path_factory.mktemp('dump')
    data = make_video_data(root / 'demo', 2, NUM_VAL)
    config = write_config(root / 'nl_c2d_dump.py', data)
    init_default_scope(DEFAULT_SCOPE)  # module fixtures run before the per-test scope
    torch.manual_seed(0)
    checkpoint = root / 'random.pth'
    torch.save(dict(state_dict=MODELS.build(Config.fromfile(config).model).state_dict()),
               checkpoint)
    dump = root / 'result.pkl'
    load_tool('test.py').main([
        config, str(checkpoint), '--work-dir', str(root / 'test'), '--dump', str(dump),
        '--cfg-options', f'test_dataloader.dataset.ann_file={data.broken_val_ann}',
        'test_dataloader.dataset.strict=False', 'test_evaluator.type=ReadableAccMetric'])
    return data, dump


def test_dump_carries_format_counts_and_broken_videos(dumped):
    data, dump_path = dumped
    with open(dump_path, 'rb') as handle:
        dump = pickle.load(handle)
    assert dump['format'] == 'nlnet-dump/1'
    assert (dump['num_videos'], dump['num_broken']) == (NUM_VAL, 2)
    assert sorted(video['filename'] for video in dump['broken']) == sorted(
        [data.corrupt_val, data.missing_val])
    assert all(video['reason'] for video in dump['broken'])
    assert len(dump['samples']) == NUM_VAL
    assert [s['num_views'] for s in dump['samples']] == [TEST_VIEWS] * NUM_VAL


def test_csv_has_one_row_per_video_with_the_top5_of_the_dump(dumped, tmp_path):
    data, dump_path = dumped
    out = tmp_path / 'result.csv'
    load_tool('analysis/dump_to_csv.py').main([str(dump_path), str(out)])
    with open(dump_path, 'rb') as handle:
        samples = pickle.load(handle)['samples']
    with open(out, newline='') as handle:
        rows = list(csv.DictReader(handle))

    scored = [row for row in rows if row['status'] == 'scored']
    assert [row['filename'] for row in scored] == [s['filename'] for s in samples]
    num_classes = len(samples[0]['pred_score'])  # the demo has 4: top-5 holds all 4
    for row, sample in zip(scored, samples):
        assert row['label'] == str(sample['gt_label'])
        assert row['num_views'] == str(TEST_VIEWS)
        order = np.argsort(-sample['pred_score'], kind='stable')
        assert [int(row[f'top{k}_class']) for k in range(1, num_classes + 1)] == list(order)
        assert [float(row[f'top{k}_score']) for k in range(1, num_classes + 1)] == \
            pytest.approx(list(sample['pred_score'][order]), rel=1e-5)
        assert row.get(f'top{num_classes + 1}_class') is None
    broken = {row['filename']: row for row in rows if row['status'] == 'broken'}
    assert set(broken) == {data.corrupt_val, data.missing_val}
    assert all(row['top1_class'] == '' for row in broken.values())


def test_a_file_that_is_no_dump_is_named(tmp_path):
    path = tmp_path / 'old.pkl'
    with open(path, 'wb') as handle:
        pickle.dump(dict(metrics={}, samples=[]), handle)
    with pytest.raises(SystemExit, match=f"{path}: not a 'nlnet-dump/1' dump .*format: None"):
        load_tool('analysis/dump_to_csv.py').main([str(path), str(tmp_path / 'out.csv')])
