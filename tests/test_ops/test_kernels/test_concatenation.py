"""The separable concatenation aggregation against the explicit (B, N, M) ReLU weights."""
import torch
import torch.nn.functional as F
from helpers.autograd_checks import assert_same_value_and_grads

from nlnet.ops.kernels.concatenation import concatenation_attention


def _explicit(a, b, v):
    """1/M sum_j ReLU(a_i + b_j) v_j with the (B, N, M) weights formed."""
    return F.relu(a.unsqueeze(-1) + b.unsqueeze(-2)) / b.shape[-1] @ v


def test_concatenation_attention_matches_explicit():
    torch.manual_seed(0)
    a, b, v = (torch.randn(*s, dtype=torch.float64, requires_grad=True)
               for s in ((2, 13), (2, 8), (2, 8, 3)))
    assert_same_value_and_grads(concatenation_attention(a, b, v), _explicit(a, b, v), [a, b, v])


def test_concatenation_attention_ties_and_unreached_queries():
    # Integer values make a_i + b_j == 0 exactly (ReLU'(0) = 0 on both sides), give
    # duplicate keys, and leave query 0 (a = -9) with no key: its output must be 0.
    a = torch.tensor([[-9., -2., 0., 1., 3.]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([[2., -1., 2., 0., -3., 1.]], dtype=torch.float64, requires_grad=True)
    v = torch.randn(1, 6, 4, dtype=torch.float64, requires_grad=True)
    fast = concatenation_attention(a, b, v)
    assert torch.equal(fast[0, 0], torch.zeros(4, dtype=torch.float64))
    assert_same_value_and_grads(fast, _explicit(a, b, v), [a, b, v])
