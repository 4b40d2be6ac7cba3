"""A real mmengine Runner around a two-layer model, for the unit tests of nlnet's hooks.

The hooks' methods are called directly with this runner: its logger, work dir, model,
loops and flags are mmengine's own, without data, videos or training steps.
"""
import itertools

import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import DataLoader

_names = itertools.count()


class TinyModel(BaseModel):
    """``backbone`` (2 -> 2) then ``cls_head.fc_cls`` (2 -> 3)."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(2, 2)
        self.cls_head = nn.Module()
        self.cls_head.fc_cls = nn.Linear(2, 3)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.cls_head.fc_cls(self.backbone(torch.stack(inputs)))
        return dict(loss=out.sum()) if mode == 'loss' else out


def _inputs(batch):
    return dict(inputs=batch)


def tiny_runner(work_dir, training=False, num_workers=0, **kwargs):
    """A Runner of :class:`TinyModel` writing to ``work_dir``.

    Args:
        training (bool): give it a one-epoch training loop (built) over two samples.
        num_workers (int): persistent dataloader workers of the training loop.
        **kwargs: further Runner arguments (``load_from``, ``resume``, ...).
    """
    if training:
        kwargs.update(train_dataloader=DataLoader([torch.zeros(2)] * 2, batch_size=1,
                                                  collate_fn=_inputs, num_workers=num_workers,
                                                  persistent_workers=num_workers > 0),
                      train_cfg=dict(by_epoch=True, max_epochs=1),
                      optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)))
    runner = Runner(model=TinyModel(), work_dir=str(work_dir),
                    experiment_name=f'tiny{next(_names)}', **kwargs)
    if training:
        runner.train_loop  # noqa: B018  (builds the loop, as Runner.train does before loading)
    return runner
