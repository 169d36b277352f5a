"""forward_flops against counts written out by hand from each model's configuration.

The expected counts follow the convention of msga.models.cost: a multiply-add is 2 FLOPs;
convolutions, linear layers, attention's Q K^T and A V, and LSTM gate products count;
elementwise work (biases, norms, activations, softmax, pooling) does not. They are derived
from the architectures (src/msga/models and timm's ConvNeXt, MlpMixer and CrossVit), not from
the counter, so the two agree exactly or something is miscounted.
"""

from __future__ import annotations

import functools
from contextlib import nullcontext

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.modules import module as nn_module
from torch.utils._python_dispatch import _get_current_dispatch_mode
from torch.utils.flop_counter import flop_registry

from msga.models import build_model, list_models
from msga.models.cost import _FUSED_KERNEL_FLOPS, forward_flops
from tests.conftest import REPO

aten = torch.ops.aten
CLASSES, SIDE = 100, 32  # every registered model reads 32x32 images
SIZES = {
    "params.yaml": yaml.safe_load((REPO / "params.yaml").read_text())["models"],
    "demo.yaml": yaml.safe_load((REPO / "workflow" / "demo.yaml").read_text())["models"],
}


# -- building blocks; hw / n are output pixels / tokens ------------------------------------

def conv(c_in: int, c_out: int, k: int, hw: int, groups: int = 1) -> int:
    return 2 * (c_in // groups) * c_out * k * k * hw


def linear(n: int, f_in: int, f_out: int) -> int:
    return 2 * n * f_in * f_out


def attention(n_q: int, n_k: int, width: int) -> int:
    """Q K^T and A V summed over heads (heads * head_dim = width): the head count cancels."""
    return 2 * n_q * n_k * width + 2 * n_q * n_k * width


def lstm(steps: int, inputs: int, hidden: int, layers: int, dirs: int) -> int:
    """Input and recurrent gate products, 4 gates, per step, direction and layer."""
    return sum(
        dirs * steps * 2 * 4 * hidden * ((inputs if layer == 0 else dirs * hidden) + hidden)
        for layer in range(layers)
    )


# -- the registered models ------------------------------------------------------------------

def msga_flops(stem, widths, depths, kernels, attn_depth, mlp_ratio, heads, drop_path, token_mixer="attention") -> int:
    side = SIDE
    flops = conv(3, stem, 3, side * side)
    c_in = stem
    for i, (c, depth) in enumerate(zip(widths, depths)):
        k = 1 if i == 0 else 2  # stage 0: 1x1 projection; later stages: 2x2 stride 2
        side //= k
        hw, hidden = side * side, int(c * mlp_ratio)
        flops += conv(c_in, c, k, hw)
        block = (sum(conv(c, c, kk, hw, groups=c) for kk in kernels)  # depthwise scales
                 + conv(len(kernels) * c, hidden, 1, hw) + conv(hidden, c, 1, hw))  # fuse, proj
        flops += depth * block
        c_in = c
    width, tokens = widths[-1], side * side
    if attn_depth:
        hidden = int(width * mlp_ratio)
        if token_mixer == "attention":  # qkv, Q K^T and A V, output projection
            mix = linear(tokens, width, 3 * width) + attention(tokens, tokens, width) + linear(tokens, width, width)
        else:  # local: expand to 2C, depthwise 3x3 over the token grid, project back
            wide = 2 * width
            mix = linear(tokens, width, wide) + conv(wide, wide, 3, tokens, groups=wide) + linear(tokens, wide, width)
        block = mix + linear(tokens, width, hidden) + linear(tokens, hidden, width)
        flops += attn_depth * block + linear(tokens, 2 * width, width)  # blocks, local/global fusion
    return flops + linear(1, width, CLASSES)


def cnn_lstm_flops(widths, hidden, layers, bidirectional) -> int:
    c1, c2, c3 = widths
    dirs = 2 if bidirectional else 1
    return (conv(3, c1, 3, 32 * 32) + conv(c1, c1, 3, 32 * 32)
            + conv(c1, c2, 3, 16 * 16) + conv(c2, c2, 3, 16 * 16)
            + conv(c2, c3, 3, 8 * 8) + conv(c3, c3, 3, 8 * 8)
            + lstm(8 * 8, c3, hidden, layers, dirs)  # the 8x8 grid as a sequence of 64 steps
            + linear(1, dirs * hidden, CLASSES))


def mlp_mixer_flops(patch_size, embed_dim, depth, mlp_ratio, drop_path) -> int:
    n, c = (SIDE // patch_size) ** 2, embed_dim
    tokens_hidden, channels_hidden = int(mlp_ratio[0] * c), int(mlp_ratio[1] * c)
    block = (linear(c, n, tokens_hidden) + linear(c, tokens_hidden, n)  # token MLP, once per channel
             + linear(n, c, channels_hidden) + linear(n, channels_hidden, c))  # channel MLP, per token
    return conv(3, c, patch_size, n) + depth * block + linear(1, c, CLASSES)


def convnext_flops(patch_size, depths, dims, drop_path) -> int:
    side = SIDE // patch_size
    flops = conv(3, dims[0], patch_size, side * side)  # patch stem
    stride, c_in = patch_size, dims[0]
    for i, (depth, c) in enumerate(zip(depths, dims)):
        # timm's ConvNeXt halves the resolution in every stage but the first, and in the
        # first too when the stem's stride is 2; a 2x2 stride-2 conv (after a norm) does it
        s = 2 if i > 0 or stride == 2 else 1
        assert not (s == 2 and stride >= 32), "timm would dilate instead of striding: not modelled here"
        if s == 2 or c_in != c:
            side //= s
            flops += conv(c_in, c, s, side * side)
        stride *= s
        hw = side * side
        flops += depth * (conv(c, c, 7, hw, groups=c) + linear(hw, c, 4 * c) + linear(hw, 4 * c, c))
        c_in = c
    return flops + linear(1, dims[-1], CLASSES)


def crossvit_flops(patch_size, embed_dim, depth, num_heads, mlp_ratio, drop_path) -> int:
    branches = range(len(embed_dim))
    n = [(SIDE // p) ** 2 + 1 for p in patch_size]  # patches + the class token, per branch
    flops = sum(conv(3, d, p, (SIDE // p) ** 2) for p, d in zip(patch_size, embed_dim))
    for *branch_depths, cross_depth in depth:
        for b in branches:  # transformer blocks of each branch
            t, d, hidden = n[b], embed_dim[b], int(embed_dim[b] * mlp_ratio[b])
            flops += branch_depths[b] * (linear(t, d, 3 * d) + attention(t, t, d) + linear(t, d, d)
                                         + linear(t, d, hidden) + linear(t, hidden, d))
        for b in branches:  # branch b's class token visits the next branch o and comes back
            o = (b + 1) % len(embed_dim)
            d, do = embed_dim[b], embed_dim[o]
            flops += linear(1, d, do)  # project the class token to the other width
            for j in range(cross_depth):
                t = n[o] if j == 0 else 1  # a cross block outputs the class token alone
                flops += (linear(1, do, do) + 2 * linear(t, do, do)  # q from the class token; k, v
                          + attention(1, t, do) + linear(1, do, do))  # one query; proj
            flops += linear(1, do, d)  # and back
    return flops + sum(linear(1, d, CLASSES) for d in embed_dim)  # one head per branch, averaged


def resnet18_flops(widths) -> int:
    side, c_in = SIDE, widths[0]
    flops = conv(3, c_in, 3, side * side)  # stem
    for i, c in enumerate(widths):
        stride = 1 if i == 0 else 2
        side //= stride
        hw = side * side
        flops += conv(c_in, c, 3, hw) + conv(c, c, 3, hw)  # first block, strided
        if stride != 1 or c_in != c:
            flops += conv(c_in, c, 1, hw)  # its projection shortcut
        flops += conv(c, c, 3, hw) + conv(c, c, 3, hw)  # second block
        c_in = c
    return flops + linear(1, widths[-1], CLASSES)


EXPECTED = {
    "msga": msga_flops, "msga_local": msga_flops, "msga_global": msga_flops, "msga_single": msga_flops,
    "msga_noattn": functools.partial(msga_flops, token_mixer="local"),
    "cnn_lstm": cnn_lstm_flops, "mlp_mixer": mlp_mixer_flops,
    "convnext": convnext_flops, "crossvit": crossvit_flops,
    "mlp_mixer_flops": mlp_mixer_flops, "convnext_flops": convnext_flops,
    "cnn_lstm_flops": cnn_lstm_flops, "crossvit_flops": crossvit_flops,
    "resnet18": resnet18_flops,
}


@pytest.mark.parametrize("source", SIZES)
@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_is_counted_exactly(name, source):
    assert name in EXPECTED, f"{name} is registered but has no hand count in tests/unit/test_cost.py"
    sizes = SIZES[source][name]
    torch.manual_seed(0)
    model = build_model(name, num_classes=CLASSES, **sizes)
    assert forward_flops(model) == EXPECTED[name](**sizes)


# -- the two layers FlopCounterMode alone does not count ------------------------------------

class AsSequence(nn.Module):
    """Reads the (1, 3, H, W) image as a sequence of H*W pixel vectors, through one layer."""

    def __init__(self, layer: nn.Module, dtype=torch.float32):
        super().__init__()
        self.layer, self.dtype = layer.to(dtype), dtype

    def forward(self, x):
        return self.layer(x.flatten(2).transpose(1, 2).to(self.dtype))  # (1, H*W, 3)


LSTM_CASES = {  # name: (nn.LSTM kwargs, dtype); float64 and proj_size bypass oneDNN's fused kernel
    "one layer": (dict(hidden_size=5), torch.float32),
    "stacked bidirectional": (dict(hidden_size=5, num_layers=3, bidirectional=True), torch.float32),
    "float64": (dict(hidden_size=5, num_layers=2, bidirectional=True), torch.float64),
}


@pytest.mark.parametrize("onednn", [True, False], ids=["onednn", "no-onednn"])
@pytest.mark.parametrize("case", LSTM_CASES)
def test_lstm_alone_is_counted_by_the_gate_formula(case, onednn):
    kwargs, dtype = LSTM_CASES[case]
    model = AsSequence(nn.LSTM(3, batch_first=True, **kwargs), dtype)
    dirs = 2 if kwargs.get("bidirectional") else 1
    with torch.backends.mkldnn.flags(enabled=onednn):  # fused kernel, or PyTorch's own mm loop
        flops = forward_flops(model, image_size=4)
    assert flops == lstm(4 * 4, 3, kwargs["hidden_size"], kwargs.get("num_layers", 1), dirs)


def test_lstm_with_projection_counts_the_projection():
    model = AsSequence(nn.LSTM(3, 6, proj_size=2, batch_first=True))
    # per step: gates from the input (3) and the projected state (2), then the 6 -> 2 projection
    assert forward_flops(model, image_size=4) == 16 * 2 * (4 * 6 * (3 + 2) + 6 * 2)


def test_whole_stack_kernels_count_every_layer_and_direction():
    # cuDNN, MIOpen and MPS get every layer's weights in one call (this CPU cannot run them):
    # check the formulas on the arguments such a call receives, shapes in place of tensors
    stack = nn.LSTM(3, 5, num_layers=3, bidirectional=True)
    weights = [w.shape for w in stack._flat_weights]  # w_ih, w_hh, b_ih, b_hh per layer and direction
    steps, batch = 16, 2
    expected = batch * lstm(steps, 3, 5, 3, 2)
    for op in (aten._cudnn_rnn, aten.miopen_rnn):
        assert _FUSED_KERNEL_FLOPS[op]((steps, batch, 3), weights, 4) == expected
    hx = [(6, batch, 5), (6, batch, 5)]
    assert _FUSED_KERNEL_FLOPS[aten._lstm_mps]((steps, batch, 3), hx, weights, True, 3) == expected


class Attend(nn.Module):
    """Scaled dot-product attention of q (1, 4, 8, 2) over n_k keys, all cut from the values of
    the (1, 3, 8, 8) image. CPU runs it in its fused kernel, or decomposed (math) when dv != d."""

    def __init__(self, n_k=8, kv_heads=4, dv=2, mask=False, causal=False):
        super().__init__()
        self.n_k, self.kv_heads, self.dv, self.mask, self.causal = n_k, kv_heads, dv, mask, causal

    def forward(self, x):
        flat = x.flatten()  # (192,)
        q = flat[:64].view(1, 4, 8, 2)  # (B, h, Nq, d)
        k = flat[64:64 + self.kv_heads * self.n_k * 2].view(1, self.kv_heads, self.n_k, 2)  # (B, h_kv, Nk, d)
        v = k.repeat(1, 1, 1, self.dv // 2)  # (B, h_kv, Nk, dv)
        mask = torch.ones(8, self.n_k, dtype=torch.bool) if self.mask else None
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=self.causal,
                                              enable_gqa=self.kv_heads != 4)


ATTENTION_CASES = {  # causal attention is counted in full, as torch's own formulas do
    "self": Attend(),
    "cross": Attend(n_k=6),
    "grouped heads": Attend(kv_heads=2),
    "masked": Attend(n_k=6, mask=True),
    "causal": Attend(causal=True),
    "value width": Attend(dv=4),
}


@pytest.mark.parametrize("math", [False, True], ids=["default-backend", "math-backend"])
@pytest.mark.parametrize("case", ATTENTION_CASES)
def test_attention_alone_is_counted_by_the_formula(case, math):
    model = ATTENTION_CASES[case]
    with sdpa_kernel(SDPBackend.MATH) if math else nullcontext():
        flops = forward_flops(model, image_size=8)
    b, h, n_q, d = 1, 4, 8, 2
    assert flops == 2 * b * h * n_q * model.n_k * d + 2 * b * h * n_q * model.n_k * model.dv


# -- no state left behind -------------------------------------------------------------------

class Fails(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 4)

    def forward(self, x):
        raise RuntimeError("forward failed")


def global_state():
    return (len(nn_module._global_forward_pre_hooks), len(nn_module._global_forward_hooks),
            _get_current_dispatch_mode(), len(flop_registry), torch.is_grad_enabled())


def test_train_flags_and_global_state_survive_success_and_failure():
    model = build_model("cnn_lstm", **SIZES["demo.yaml"]["cnn_lstm"])
    model.train()
    model.features.eval()  # mixed modes come back as they were, not all train()
    before = global_state()
    forward_flops(model)
    assert model.training and not model.features.training and model.lstm.training
    assert global_state() == before

    failing = Fails().train()
    with pytest.raises(RuntimeError, match="forward failed"):
        forward_flops(failing)
    assert failing.training and failing.lstm.training
    assert global_state() == before
