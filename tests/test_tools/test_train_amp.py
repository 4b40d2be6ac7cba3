"""tools/train.py --amp trains the demo NL-C2D on the CPU (bfloat16 autocast) with finite losses."""
import json
import math

import torch
from helpers.tool_modules import load_tool
from helpers.video_tools import TRAIN_BATCH, make_video_data, run_log, write_config
from mmengine.runner.checkpoint import CheckpointLoader

NUM_TRAIN = 4
ITERS = NUM_TRAIN // TRAIN_BATCH

train_tool = load_tool('train.py')


def test_amp_training_runs_on_the_cpu_with_finite_losses(tmp_path):
    data = make_video_data(tmp_path / 'demo', NUM_TRAIN, 1)
    config = write_config(tmp_path / 'nl_c2d_amp.py', data)
    work_dir = tmp_path / 'amp'
    train_tool.main([config, '--amp', '--no-validate', '--seed', '0', '--work-dir',
                     str(work_dir)])

    with open(next(work_dir.glob('*/vis_data/scalars.json'))) as handle:
        losses = [json.loads(line)['loss'] for line in handle if '"loss"' in line]
    assert len(losses) == ITERS and all(math.isfinite(loss) for loss in losses)
    checkpoint = CheckpointLoader.load_checkpoint(str(work_dir / f'iter_{ITERS}.pth'), 'cpu')
    assert "type='CPUAmpOptimWrapper'" in checkpoint['meta']['cfg'] or \
        torch.cuda.is_available()
    assert all(torch.isfinite(value).all() for value in checkpoint['state_dict'].values()
               if value.is_floating_point())
    assert f'Epoch(train) [1][{ITERS}/{ITERS}]' in run_log(work_dir)
