"""tools/train.py --amp trains the demo NL-C2D with the mixed-precision wrapper of the machine:
on the CPU nlnet's CPUAmpOptimWrapper under bfloat16 autocast, on a GPU mmengine's
AmpOptimWrapper under float16 autocast."""
import json
import math

import torch
from helpers.amp_probe import RECORDS
from helpers.tool_modules import load_tool, own_instances
from helpers.video_tools import TRAIN_BATCH, make_video_data, run_log, write_config
from mmengine.runner.checkpoint import CheckpointLoader

NUM_TRAIN = 4
ITERS = NUM_TRAIN // TRAIN_BATCH

train_tool = load_tool('train.py')


def test_amp_training_runs_the_machines_wrapper_and_autocast_dtype(tmp_path):
    wrapper, dtype = (('AmpOptimWrapper', torch.float16) if torch.cuda.is_available() else
                      ('CPUAmpOptimWrapper', torch.bfloat16))
    data = make_video_data(tmp_path / 'demo', NUM_TRAIN, 1)
    config = write_config(tmp_path / 'nl_c2d_amp.py', data,
                          extra="custom_hooks = [dict(type='AmpProbeHook')]\n")
    work_dir = tmp_path / 'amp'
    RECORDS.clear()
    train_tool.main([config, '--amp', '--no-validate', '--seed', '0', '--work-dir',
                     str(work_dir), '--cfg-options', *own_instances('amp')])

    (record, ) = RECORDS
    assert record['wrapper'] == wrapper
    # The non-local block computes in the autocast dtype at every training step (its input
    # is the output of an autocast convolution); the parameters stay float32.
    assert record['block_inputs'] == [dtype] * ITERS
    assert record['parameters'] == {torch.float32}
    with open(next(work_dir.glob('*/vis_data/scalars.json'))) as handle:
        losses = [json.loads(line)['loss'] for line in handle if '"loss"' in line]
    assert len(losses) == ITERS and all(math.isfinite(loss) for loss in losses)
    checkpoint = CheckpointLoader.load_checkpoint(str(work_dir / f'iter_{ITERS}.pth'), 'cpu')
    assert f"type='{wrapper}'" in checkpoint['meta']['cfg']
    assert all(torch.isfinite(value).all() for value in checkpoint['state_dict'].values()
               if value.is_floating_point())
    assert f'Epoch(train) [1][{ITERS}/{ITERS}]' in run_log(work_dir)
