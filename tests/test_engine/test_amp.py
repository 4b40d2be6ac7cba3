"""--amp on the CPU: bfloat16 autocast around the forward and loss, float32 normalisation."""
import pytest
import torch
import torch.nn.functional as F
from helpers.video_tools import DEMO_CONFIG
from mmengine.config import Config
from mmengine.device import is_cuda_available
from mmengine.optim import build_optim_wrapper

from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from nlnet.engine import CPUAmpOptimWrapper, amp_optim_wrapper
from nlnet.ops.kernels import softmax_attention as softmax_kernels

DEFAULT_SCOPE = 'mmaction'
FUSED_ATTENTION = softmax_kernels.fused_softmax_attention


def demo_batch(num_classes=4, batch=2):
    generator = torch.Generator().manual_seed(0)
    inputs = [torch.randint(0, 256, (1, 3, 8, 32, 32), generator=generator, dtype=torch.uint8)
              for _ in range(batch)]
    samples = [ActionDataSample().set_gt_label(torch.tensor(i % num_classes))
               for i in range(batch)]
    return dict(inputs=inputs, data_samples=samples)


def test_a_training_step_autocasts_the_non_local_block_and_normalises_in_float32(monkeypatch):
    torch.manual_seed(0)
    attention_calls = []

    def recorded(function):
        def call(query, key, value, scale):
            result = function(query, key, value, scale)
            output = result[0] if isinstance(result, tuple) else result
            inputs = tuple(t.detach().clone() for t in (query, key, value))
            attention_calls.append((inputs, scale, output.detach().clone()))
            return result
        return call

    # The block's softmax runs inside PyTorch's fused attention kernels (the weights are never
    # formed): the kernels module calls them through these two functions.
    for name in ('fused_softmax_attention', 'fused_softmax_attention_with_lse'):
        monkeypatch.setattr(softmax_kernels, name, recorded(getattr(softmax_kernels, name)))
    model = MODELS.build(Config.fromfile(DEMO_CONFIG).model)
    optim_wrapper = build_optim_wrapper(
        model, dict(type='CPUAmpOptimWrapper', optimizer=dict(type='AdamW', lr=1e-3)))
    blocks = [m for m in model.modules() if type(m).__name__ == 'NonLocalBlock']
    assert len(blocks) == 1
    norm = blocks[0].conv_out.norm
    seen = {}

    def record_block(module, inputs, output):
        seen.update(block_input=inputs[0].dtype)

    def record_norm(module, inputs, output):
        # Copies: the block adds the residual into the norm's output in place.
        seen.update(norm_input=inputs[0].detach().clone(), norm_output=output.detach().clone())

    handles = [blocks[0].register_forward_hook(record_block),
               norm.register_forward_hook(record_norm)]
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    losses = model.train_step(demo_batch(), optim_wrapper)
    for handle in handles:
        handle.remove()

    assert torch.isfinite(losses['loss'])
    # The block runs under autocast (its input is the bfloat16 output of an autocast conv) ...
    assert seen['block_input'] == torch.bfloat16
    # ... its BatchNorm keeps float32 weights and statistics and normalises in float32: the
    # output is the float32 normalisation of its input up to bfloat16's rounding of the result
    # (8 significant bits).
    assert {norm.weight.dtype, norm.bias.dtype, norm.running_mean.dtype,
            norm.running_var.dtype} == {torch.float32}
    expected = F.batch_norm(seen['norm_input'].float(), None, None, norm.weight.detach(),
                            norm.bias.detach(), True, 0.0, norm.eps)
    torch.testing.assert_close(seen['norm_output'].float(), expected, rtol=2**-8, atol=2**-9)
    # The softmax attention takes bfloat16 q, k, v and accumulates in float32: its output is the
    # float32 attention of those inputs up to the rounding of the result (a softmax in bfloat16
    # is several times further off).
    assert attention_calls
    for inputs, scale, output in attention_calls:
        assert {t.dtype for t in inputs} == {torch.bfloat16} and output.dtype == torch.bfloat16
        with torch.autocast('cpu', enabled=False):
            expected = FUSED_ATTENTION(*(t.float() for t in inputs), scale)
        torch.testing.assert_close(output.float(), expected, rtol=2**-8,
                                   atol=2**-9 * expected.abs().max().item())
    # The optimizer steps float32 parameters.
    changed = [name for name, p in model.named_parameters()
               if p.dtype == torch.float32 and not torch.equal(p.detach(), before[name])]
    assert changed and all(p.dtype == torch.float32 for p in model.parameters())


def test_amp_picks_the_wrapper_of_the_machine():
    cfg = dict(optimizer=dict(type='SGD', lr=0.1), loss_scale='dynamic')
    chosen = amp_optim_wrapper(cfg)
    if is_cuda_available():
        assert chosen == 'AmpOptimWrapper' and cfg['loss_scale'] == 'dynamic'
    else:
        assert cfg == dict(type='CPUAmpOptimWrapper', dtype='bfloat16',
                           optimizer=dict(type='SGD', lr=0.1))


def test_bad_wrapper_and_dtype_are_named():
    with pytest.raises(ValueError, match="optim_wrapper.type is 'ApexOptimWrapper'"):
        amp_optim_wrapper(dict(type='ApexOptimWrapper', optimizer=dict(type='SGD', lr=0.1)))
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"dtype must be one of \('bfloat16',\), got 'float16'"):
        CPUAmpOptimWrapper(dtype='float16', optimizer=torch.optim.SGD(model.parameters(), 0.1))
