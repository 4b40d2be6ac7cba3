"""Comparison of a fast kernel with its explicit reference, values and gradients."""
import torch


def assert_same_value_and_grads(fast, explicit, inputs, rtol=1e-10, atol=1e-10):
    """``fast`` equals ``explicit``, and so do their gradients w.r.t. ``inputs`` for one
    random upstream gradient."""
    grad_out = torch.randn_like(explicit)
    torch.testing.assert_close(fast, explicit, rtol=rtol, atol=atol)
    for got, want in zip(torch.autograd.grad(fast, inputs, grad_out),
                         torch.autograd.grad(explicit, inputs, grad_out)):
        torch.testing.assert_close(got, want, rtol=rtol, atol=atol)
