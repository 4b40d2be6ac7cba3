"""Checkpoints saved before the block moved to nlnet.ops load unchanged, strictly.

``tests/data/pre_ops/`` was written by ``tests/helpers/state_dict_layouts.py`` at commit
a52cc4f (the block built on mmcv's ConvModule): the state-dict layout of shipped models of
every task, and non-local blocks of every mode, dimension and sub-sampling with their
weights, an input and their output.
"""
import json
import os.path as osp

import pytest
import torch

from helpers.state_dict_layouts import (BLOCK_CASES, LAYOUT_CONFIGS, block_case_name, build_model,
                                        layout)
from nlnet import ops
from nlnet.models.layers import NonLocalBlock

DATA = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'data', 'pre_ops')


@pytest.fixture(scope='module')
def saved_blocks():
    return torch.load(osp.join(DATA, 'blocks.pth'), weights_only=True)


@pytest.mark.parametrize('config', LAYOUT_CONFIGS)
def test_model_loads_a_checkpoint_of_the_old_layout_strictly(config):
    with open(osp.join(DATA, 'layouts.json')) as handle:
        saved = json.load(handle)[config]
    model = build_model(config)
    assert layout(model) == saved
    model.load_state_dict({key: torch.zeros(shape) for key, shape in saved.items()}, strict=True)


@pytest.mark.parametrize('block_class', [NonLocalBlock, ops.NonLocalBlock],
                         ids=['registered', 'ops'])
@pytest.mark.parametrize('case', BLOCK_CASES, ids=block_case_name)
def test_block_loads_an_old_checkpoint_and_gives_its_output(saved_blocks, block_class, case):
    saved = saved_blocks[block_case_name(case)]
    block = block_class(8, **saved['kwargs']).double().eval()
    block.load_state_dict(saved['state_dict'], strict=True)
    with torch.no_grad():
        torch.testing.assert_close(block(saved['input']), saved['output'])
