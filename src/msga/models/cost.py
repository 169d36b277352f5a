"""Cost figures: parameters and forward FLOPs per image.

Convention (torch.utils.flop_counter's): a multiply-add counts 2 FLOPs, and only matrix
products and convolutions are counted: linear layers, convolutions (2 * Cin/groups * Cout * k*k
per output pixel), attention's Q K^T and A V (2 * B * h * Nq * Nk * d each) and the gate
products of recurrent layers (2 * 4H * (I + H) per LSTM time step and direction, I being the
layer's input size). Elementwise work is not counted: biases, norms, activations, softmax,
pooling, the gate nonlinearities and cell updates of an LSTM.

FlopCounterMode counts the ops it has formulas for. It has none for the fused kernels that CPU
(and other non-CUDA) attention dispatches to, nor for any fused recurrent kernel, so a model
with attention or an LSTM was undercounted. The formulas below fill that gap; they are given to
one counter only (`custom_mapping`), so nothing global changes. When these kernels are not
used (e.g. the math attention backend, or an LSTM in float64 or with oneDNN off) PyTorch runs
the same products as mm/bmm ops, which the counter already counts, to the same total.
"""

from __future__ import annotations

from math import prod

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

aten = torch.ops.aten


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Each formula receives the op's arguments with tensors replaced by their shapes.

def _attention_flops(q, k, v, *args, out_shape=None, **kwargs) -> int:
    """Q K^T and A V of scaled dot-product attention; q (..., Nq, d), k (..., Nk, d), v (..., Nk, dv)."""
    *batch_heads, nq, d = q  # batch and query heads; k and v may have fewer (grouped) heads
    nk, dv = k[-2], v[-1]
    return 2 * prod(batch_heads) * nq * nk * (d + dv)


def _rnn_matmul_flops(input_shape, weight_shapes) -> int:
    """Gate products of a recurrent layer stack: every 2-D weight (w_ih (G*H, I), w_hh (G*H, H),
    and w_hr (P, H) with projections) multiplies one vector per time step and sequence, in every
    layer and direction; 1-D weights are biases, not counted."""
    steps = prod(input_shape[:-1])  # (T, B, I), (B, T, I) or packed (sum of lengths, I)
    return 2 * steps * sum(prod(s) for s in weight_shapes if len(s) == 2)


def _rnn_layer_flops(input_shape, w_ih, w_hh, *args, out_shape=None, **kwargs) -> int:
    """mkldnn_rnn_layer (CPU, oneDNN): one layer in one direction per call."""
    return _rnn_matmul_flops(input_shape, [w_ih, w_hh])


def _rnn_stack_flops(input_shape, weights, *args, out_shape=None, **kwargs) -> int:
    """_cudnn_rnn (CUDA), miopen_rnn (ROCm): the whole stack, all layers and directions, in one call."""
    return _rnn_matmul_flops(input_shape, weights)


def _lstm_mps_flops(input_shape, hx, params, *args, out_shape=None, **kwargs) -> int:
    """_lstm_mps (Apple): the whole stack in one call; its weights come after the states."""
    return _rnn_matmul_flops(input_shape, params)


_FUSED_KERNEL_FLOPS = {
    aten._scaled_dot_product_flash_attention_for_cpu: _attention_flops,
    aten._scaled_dot_product_fused_attention_overrideable: _attention_flops,
    aten._scaled_dot_product_attention_math_for_mps: _attention_flops,
    aten.mkldnn_rnn_layer: _rnn_layer_flops,
    aten._cudnn_rnn: _rnn_stack_flops,
    aten.miopen_rnn: _rnn_stack_flops,
    aten._lstm_mps: _lstm_mps_flops,
}


@torch.no_grad()
def forward_flops(model: nn.Module, image_size: int = 32) -> int:
    """FLOPs of one forward pass per image (a multiply-add counts 2), in eval mode."""
    modes = {m: m.training for m in model.modules()}  # restored per module, even if mixed
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    x = torch.zeros(1, 3, image_size, image_size, device=device)
    counter = FlopCounterMode(display=False, custom_mapping=_FUSED_KERNEL_FLOPS)
    try:
        model.eval()
        with counter:
            model(x)
    finally:
        for m, training in modes.items():
            m.training = training
    return int(counter.get_total_flops())
