"""``--amp``: float16 autocast with loss scaling on a GPU, bfloat16 autocast on the CPU.

mmengine's ``AmpOptimWrapper`` refuses to be built without a GPU (its loss
scaler is CUDA's). bfloat16 has float32's exponent range, so it needs no loss
scaling: :class:`CPUAmpOptimWrapper` is a plain ``OptimWrapper`` whose forward
and loss run under CPU autocast.
"""
from contextlib import contextmanager

import torch
from mmaction.models.heads import BaseHead
from mmengine.device import is_cuda_available, is_mlu_available, is_npu_available
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

__all__ = ['CPUAmpOptimWrapper', 'amp_optim_wrapper']

# torch's CPU autocast casts to these; float16 on the CPU would need loss scaling.
CPU_AUTOCAST_DTYPES = ('bfloat16', )


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` running the model's forward and loss under ``torch.autocast('cpu')``.

    Args:
        dtype (str): the autocast dtype; ``'bfloat16'`` only.
        **kwargs: the arguments of :class:`mmengine.optim.OptimWrapper`.
    """

    def __init__(self, dtype='bfloat16', **kwargs):
        if dtype not in CPU_AUTOCAST_DTYPES:
            raise ValueError(f'CPUAmpOptimWrapper: dtype must be one of {CPU_AUTOCAST_DTYPES}, '
                             f'got {dtype!r}')
        super().__init__(**kwargs)
        self.cast_dtype = getattr(torch, dtype)

    @contextmanager
    def optim_context(self, model):
        handles = [module.register_forward_hook(_scores_in_float32)
                   for module in model.modules() if isinstance(module, BaseHead)]
        try:
            with super().optim_context(model), torch.autocast('cpu', dtype=self.cast_dtype):
                yield
        finally:
            for handle in handles:
                handle.remove()


def _scores_in_float32(module, inputs, output):
    """A video head's class scores in float32: MMAction2's losses compute top-k accuracy
    with ``Tensor.numpy()``, which has no bfloat16 (float16, on the GPU, has one)."""
    if torch.is_tensor(output) and output.dtype == torch.bfloat16:
        return output.float()
    return None


def amp_optim_wrapper(optim_wrapper_cfg):
    """Switch the config's ``optim_wrapper`` (in place) to mixed precision for this machine.

    With a GPU (or NPU/MLU): mmengine's ``AmpOptimWrapper``, float16 with
    dynamic loss scaling. Without: :class:`CPUAmpOptimWrapper`, bfloat16.

    Args:
        optim_wrapper_cfg (dict): the config's ``optim_wrapper``; its ``type``
            must be ``OptimWrapper`` (the default) or already an AMP wrapper.

    Returns:
        str: the chosen wrapper type.
    """
    wrapper = optim_wrapper_cfg.get('type', 'OptimWrapper')
    if wrapper not in ('OptimWrapper', 'AmpOptimWrapper', 'CPUAmpOptimWrapper'):
        raise ValueError(f'--amp: optim_wrapper.type is {wrapper!r}; only OptimWrapper can be '
                         'switched to mixed precision')
    if is_cuda_available() or is_npu_available() or is_mlu_available():
        optim_wrapper_cfg.update(type='AmpOptimWrapper')
        optim_wrapper_cfg.setdefault('loss_scale', 'dynamic')
    else:
        optim_wrapper_cfg.pop('loss_scale', None)
        optim_wrapper_cfg.update(type='CPUAmpOptimWrapper', dtype='bfloat16')
    return optim_wrapper_cfg['type']
