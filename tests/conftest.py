"""Shared test set-up: per-test registry scope and a fixed thread count.

mmengine resolves every ``Registry.build`` through the *latest* ``DefaultScope``
instance, so a test that builds an mmseg model would otherwise make the next
test's mmaction builds look in mmseg's registry. Each test starts without a
default scope; a test module that builds from one package's registry sets
``DEFAULT_SCOPE`` and gets that scope.
"""
import pytest
import torch
from mmengine.registry import DefaultScope, init_default_scope

import nlnet.openmmlab  # noqa: F401  (registers nlnet and applies the stack fixes)

# Two CI cores: one intra-op thread per process keeps timings stable when
# pytest and the data loader / subprocess tools share the machine.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _fresh_default_scope(request):
    DefaultScope._instance_dict.clear()
    scope = getattr(request.module, 'DEFAULT_SCOPE', None)
    if scope is not None:
        init_default_scope(scope)
    yield
    DefaultScope._instance_dict.clear()
