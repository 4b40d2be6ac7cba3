"""FLOPs of a non-local block written from the paper, for the FLOP-counting tests."""


def block_closed_form(mode, channels, queries, keys, projected, batch=1):
    """Multiply-adds of one block (Eq. 1-6) on ``queries`` positions with ``keys`` keys.

    theta on the queries; phi and g on ``projected`` positions (the keys when pooled
    before the convolution, the queries when after); f(x_i, x_j) per pair: x_i^T x_j on
    C channels (Gaussian), theta^T phi on C' (embedded Gaussian, dot product), w_f on
    the 2C' concatenation (concatenation); the weighted sum of g (C' per pair); W_z
    (C' -> C) and its eval-mode BN (a multiply and an add per output). The softmax,
    the 1/C(x) and the ReLU are element-wise and not counted, as by mmengine.
    """
    inner = channels // 2
    projections = projected * channels * inner  # g
    if mode != 'gaussian':
        projections += queries * channels * inner + projected * channels * inner  # theta, phi
    pairwise = {'gaussian': channels, 'embedded_gaussian': inner, 'dot_product': inner,
                'concatenation': 2 * inner}[mode]
    pairs = queries * keys * (pairwise + inner)
    output = queries * inner * channels + 2 * queries * channels
    return batch * (projections + pairs + output)
