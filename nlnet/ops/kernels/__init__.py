"""The non-local block's kernels: custom autograd Functions, all but one keeping no N x M matrix.

One module per idea: :mod:`.softmax_attention` (softmax attention, Eq. 2 and 3),
:mod:`.stored_weights` (the same, keeping the weights where that is cheaper: the
plain Gaussian), :mod:`.projection` (theta/phi/g as one GEMM), :mod:`.dot_product`
(Eq. 4), :mod:`.concatenation` (Eq. 5), :mod:`.output_norm` (W_z with its
BatchNorm); :mod:`.common` holds what they share.
"""
