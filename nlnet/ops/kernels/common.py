"""Helpers shared by the kernels: whether a backward is needed, the compute dtype, and where
softmax weights are flushed to zero."""
import torch


def records_grad(*tensors):
    """Whether autograd records an op on ``tensors`` (else no backward is needed);
    None entries (absent biases) are skipped."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def autocast_dtype(*tensors):
    """The tensors' common dtype, or autocast's where it would cast float32 for a GEMM."""
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    device = tensors[0].device.type
    if dtype == torch.float32 and torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return dtype


def flush_threshold(dtype):
    """Softmax weights below this are zeroed. Weights far below float resolution (a peaked
    softmax, e.g. the plain Gaussian on raw features) would be subnormal numbers, which
    x86 CPUs produce and multiply in slow microcode assists; 2**26 times the smallest normal
    number keeps the products with factors down to 2**-26 normal, and what is dropped is
    below 2**-100 (float32) per weight, far under rounding."""
    return torch.finfo(dtype).tiny * 2**26
