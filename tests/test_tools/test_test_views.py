"""tools/test.py on a video config: how the test views of a video reach the backbone.

The demo NL-C2D config tests 10 clips x 3 crops per video, as the Kinetics configs do.
MMAction2's Recognizer3D, which every nlnet video config uses, folds the views into the
batch: one backbone call per video sees all 30. ``model.test_cfg.max_testing_views=N``
(MMAction2's option) splits them into calls of at most N views, bounding the memory of
one call; the scores stay those of the single batch. tools/test.py's ``main`` runs in
this process on two generated demo videos; a global forward pre-hook records the input
of every call of nlnet's VideoResNet.
"""
import contextlib
import pickle

import numpy as np
import pytest
import torch
from helpers.tool_modules import load_tool, own_instances
from helpers.video_tools import DEMO_CONFIG, make_demo
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmaction.registry import MODELS
from nlnet.models.backbones import VideoResNet

DEFAULT_SCOPE = 'mmaction'
NUM_VIDEOS = 2
CLIPS, CROPS = 10, 3
VIEW_SHAPE = (3, 8, 32, 32)  # the demo config's test clip: C, T, H, W
CHUNK = 7

test_tool = load_tool('test.py')


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """(config, checkpoint, workspace): the demo config on two generated videos, random weights."""
    root = tmp_path_factory.mktemp('views')
    ann = make_demo.make_demo_dataset(str(root / 'data'), num_train=0, num_val=NUM_VIDEOS)
    videos = str(root / 'data' / 'videos_val')
    config = root / 'nl_c2d_views.py'
    config.write_text(f"""_base_ = [{DEMO_CONFIG!r}]
test_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(ann_file={ann['val']!r}, data_prefix=dict(video={videos!r})))
""")
    init_default_scope(DEFAULT_SCOPE)  # module fixtures run before conftest's per-test scope
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(config).model)
    checkpoint = root / 'random_init.pth'
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    return config, checkpoint, root


@contextlib.contextmanager
def backbone_batches():
    """The (N, C, T, H, W) input shape of every VideoResNet call inside the block."""
    shapes = []

    def record(module, args):
        if isinstance(module, VideoResNet):
            shapes.append(tuple(args[0].shape))

    handle = torch.nn.modules.module.register_module_forward_pre_hook(record)
    try:
        yield shapes
    finally:
        handle.remove()


def run_test(setup, name, *options):
    """tools/test.py in this process; returns (backbone input shapes, dumped samples)."""
    config, checkpoint, root = setup
    dump = root / f'{name}.pkl'
    with backbone_batches() as shapes:
        test_tool.main([str(config), str(checkpoint), '--work-dir', str(root / name), '--dump',
                        str(dump), '--cfg-options', *options, *own_instances(name)])
    with open(dump, 'rb') as handle:
        return shapes, pickle.load(handle)['samples']


@pytest.fixture(scope='module')
def one_batch(setup):
    return run_test(setup, 'one_batch')


def test_views_of_a_video_reach_the_backbone_as_one_batch(one_batch):
    shapes, samples = one_batch
    assert len(samples) == NUM_VIDEOS
    assert shapes == [(CLIPS * CROPS, *VIEW_SHAPE)] * NUM_VIDEOS


def test_max_testing_views_splits_the_views_and_keeps_the_scores(setup, one_batch):
    shapes, samples = run_test(setup, 'chunked', f'model.test_cfg.max_testing_views={CHUNK}')
    views = CLIPS * CROPS
    per_video = [(CHUNK, *VIEW_SHAPE)] * (views // CHUNK) + [(views % CHUNK, *VIEW_SHAPE)]
    assert shapes == per_video * NUM_VIDEOS

    _, whole = one_batch
    assert [s['filename'] for s in samples] == [s['filename'] for s in whole]
    for chunked, single in zip(samples, whole):
        # Float rounding only: the convolutions of a smaller batch may sum in another order.
        np.testing.assert_allclose(chunked['pred_score'], single['pred_score'],
                                   rtol=1e-5, atol=1e-7)
