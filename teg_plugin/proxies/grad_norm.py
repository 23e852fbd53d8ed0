"""``grad_norm``: the sum over layers of the L2 norm of each layer's loss gradient.

Definition: with L the mean cross-entropy on the training batch (BatchNorm in train mode), the score
is the sum over the convolution and linear layers l of ||dL/dW_l||_2 (Frobenius norm of the
gradient of the layer's weight tensor), NAS-Bench-Suite-Zero's ``grad_norm``. A layer no path
reaches has a zero gradient.

Reference: Abdelfattah et al., *Zero-Cost Proxies for Lightweight NAS*, ICLR 2021.
"""

from __future__ import annotations

import torch

from teg_plugin.proxies._base import Proxy, ProxyInputs, cross_entropy_gradients, finite, layer_weights


def compute(inputs: ProxyInputs) -> float:
    """Sum of the layers' gradient norms of ``inputs``' network on its training batch."""
    net = inputs.network()
    grads = cross_entropy_gradients(net, inputs.x, inputs.y, layer_weights(net))
    return finite(sum(float(torch.linalg.vector_norm(g)) for g in grads), "grad_norm")


PROXY = Proxy("grad_norm", compute, needs_data=True, summary="sum over layers of ||dL/dW||")
