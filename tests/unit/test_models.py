"""Every registered model, tested by being registered."""

from __future__ import annotations

import csv

import pytest
import torch
import yaml

from msga.grid.codedeps import PACKAGE, code_hash, run_files
from msga.models import build_model, list_models, model_entry
from msga.models.cost import count_params, forward_flops
from tests.conftest import REPO

PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
DEMO = yaml.safe_load((REPO / "workflow" / "demo.yaml").read_text())
SIZES = {"params.yaml": PARAMS["models"], "demo.yaml": DEMO["models"]}
MODELS = list_models()
HEAD_SWEEP = PARAMS["experiments"]["heads"]["values"]
# The rows of the paper's Table 1, matched to msga in parameters; the same architectures under
# other names (another builder's entry: same code, other sizes) are matched in compute instead
with open(REPO / "workflow" / "resources" / "paper_table1.csv", newline="") as f:
    TABLE1 = [row["model"] for row in csv.DictReader(f)]
COMPUTE_MATCHED = [m for m in MODELS if m not in TABLE1 and model_entry(m).builder in TABLE1]
FLOPS_TOLERANCE = 0.15  # a compute-matched model's forward FLOPs within 15% of msga's


def cost(name: str, source: str = "params.yaml") -> tuple[int, int]:
    """(params, forward FLOPs per image) of a model at the sizes of params.yaml or demo.yaml."""
    torch.manual_seed(0)
    model = build_model(name, **SIZES[source][name])
    return count_params(model), forward_flops(model)


def tiny(name: str, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, num_classes=100, **{**DEMO["models"][name], **kw})


def test_registry_holds_table1_and_the_ablations():
    assert set(PARAMS["experiments"]["table1"]["models"]) <= set(MODELS)
    assert {"msga", "msga_local", "msga_global"} <= set(MODELS)
    assert set(PARAMS["models"]) == set(MODELS) == set(DEMO["models"])


@pytest.mark.parametrize("name", MODELS)
def test_shape_and_finite_gradients(name):
    model = tiny(name)
    x = torch.randn(2, 3, 32, 32)
    logits = model(x)
    assert logits.shape == (2, 100) and torch.isfinite(logits).all()
    logits.logsumexp(-1).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", MODELS)
def test_channels_last_bf16_autocast_forward(name):
    model = tiny(name).to(memory_format=torch.channels_last).eval()
    x = torch.randn(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
    assert logits.shape == (2, 100) and torch.isfinite(logits.float()).all()


@pytest.mark.parametrize("name", TABLE1)
def test_table1_parameter_budget_within_2x_of_msga(name):
    reference = count_params(build_model("msga", **PARAMS["models"]["msga"]))
    n = count_params(build_model(name, **PARAMS["models"][name]))
    assert reference / 2 <= n <= reference * 2, f"{name}: {n / 1e6:.2f}M vs msga {reference / 1e6:.2f}M"


def test_every_table1_baseline_has_a_compute_matched_twin():
    twins = {model_entry(m).builder for m in COMPUTE_MATCHED}
    assert twins == set(TABLE1) - {"msga"}, "each baseline of Table 1 at msga's compute, once"
    assert all(model_entry(m).module == model_entry(model_entry(m).builder).module for m in COMPUTE_MATCHED)


@pytest.mark.parametrize("source", SIZES)
@pytest.mark.parametrize("name", COMPUTE_MATCHED)
def test_compute_matched_flops_within_15_percent_of_msga(name, source):
    """Same architecture as its Table 1 row, sized to msga's compute; its parameters may then
    differ from msga's by any factor (params.yaml states them beside the FLOPs)."""
    (p, flops), (p_ref, reference) = cost(name, source), cost("msga", source)
    ratio = flops / reference
    assert abs(ratio - 1) <= FLOPS_TOLERANCE, (
        f"{name} ({source}): {flops / 1e6:.1f} MFLOPs, {ratio:.2f}x msga's {reference / 1e6:.1f}; "
        f"params {p / 1e6:.2f}M vs {p_ref / 1e6:.2f}M")


@pytest.mark.parametrize("name", [m for m in MODELS if "heads" in PARAMS["models"][m] and PARAMS["models"][m]["attn_depth"]])
@pytest.mark.parametrize("heads", HEAD_SWEEP)
def test_every_head_count_of_the_sweep_builds_and_runs(name, heads):
    # the real attention width (240) with small convolutional stages, so it stays fast
    model = tiny(name, widths=[16, 32, PARAMS["models"][name]["widths"][-1]], heads=heads)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)


def test_resnet18_has_the_parameter_count_of_the_literature():
    # 11.22M for 100 classes (weiaicunzai/pytorch-cifar100's ResNet-18), within 1%
    n = count_params(build_model("resnet18", **PARAMS["models"]["resnet18"]))
    assert abs(n / 11.2e6 - 1) <= 0.01, f"{n / 1e6:.3f}M"


def test_heads_that_do_not_divide_the_width_fail_clearly():
    with pytest.raises(ValueError, match="not divisible by heads=7"):
        build_model("msga", heads=7)


def test_ablations_differ_in_one_component():
    full, local, global_ = (count_params(build_model(n, **PARAMS["models"][n])) for n in ("msga", "msga_local", "msga_global"))
    assert local < full and global_ < full  # the paper-style halves: a component removed, and its cost
    with pytest.raises(ValueError, match="attn_depth must be 0"):
        build_model("msga_local", attn_depth=2)
    with pytest.raises(ValueError, match="kernels must be"):
        build_model("msga_global", kernels=[3, 5])
    with pytest.raises(ValueError, match="ONE kernel size"):
        build_model("msga_single", kernels=[3, 5, 5])
    with pytest.raises(ValueError, match="ONE kernel size"):
        build_model("msga_single", kernels=[5])
    with pytest.raises(ValueError, match="distinct kernel sizes"):
        build_model("msga", kernels=[3, 3, 5])
    with pytest.raises(ValueError, match="attn_depth must be at least 1"):
        build_model("msga_noattn", attn_depth=0)


# Controls: each differs from msga in ONE thing, (the params.yaml key that differs, the part
# of the network whose parameters differ, what differs), at near-equal params and FLOPs
CONTROLS = {
    "msga_single": ("kernels", ".ms.branches.", "one kernel size (5x5) in all three depthwise branches, not 3/5/7"),
    "msga_noattn": (None, ".attn.", "token mixing over 3x3 grid neighbours, not global attention"),
}
CONTROL_TOLERANCE = 0.02  # params and FLOPs within 2% of msga's (three 3x3 branches: -1.9%, -3.7%)


@pytest.mark.parametrize("name", CONTROLS)
def test_each_ablation_control_differs_from_msga_in_one_thing(name):
    key, part, what = CONTROLS[name]
    sizes, reference = PARAMS["models"][name], PARAMS["models"]["msga"]
    assert {k for k in reference if sizes.get(k) != reference[k]} == ({key} if key else set()), what
    assert len(sizes["kernels"]) == len(reference["kernels"]), "as many branches as msga"
    torch.manual_seed(0)
    ours, theirs = build_model("msga", **reference).state_dict(), build_model(name, **sizes).state_dict()
    differ = {k for k in ours.keys() | theirs.keys() if k not in ours or k not in theirs or ours[k].shape != theirs[k].shape}
    assert differ and all(part in k for k in differ), f"{name} should differ in {what} only: {sorted(differ)}"


@pytest.mark.parametrize("name", CONTROLS)
def test_each_ablation_control_costs_within_2_percent_of_msga(name):
    (p, flops), (p_ref, reference) = cost(name), cost("msga")
    assert abs(p / p_ref - 1) <= CONTROL_TOLERANCE, f"{name}: {p / 1e6:.3f}M params vs msga {p_ref / 1e6:.3f}M"
    assert abs(flops / reference - 1) <= CONTROL_TOLERANCE, (
        f"{name}: {flops / 1e6:.1f} MFLOPs vs msga {reference / 1e6:.1f}")


class OnTokens(torch.nn.Module):
    """Runs one token block on a (1, N, C) input of zeros, whatever image forward_flops passes."""

    def __init__(self, block, tokens: int, width: int):
        super().__init__()
        self.block, self.shape = block, (1, tokens, width)

    def forward(self, x):
        return self.block(x.new_zeros(self.shape))


def test_local_mixing_blocks_cost_what_the_attention_blocks_they_replace_cost():
    sizes = PARAMS["models"]["msga"]
    torch.manual_seed(0)
    attention = build_model("msga", **sizes).attn_blocks[0]
    local = build_model("msga_noattn", **PARAMS["models"]["msga_noattn"]).attn_blocks[0]
    width, tokens = sizes["widths"][-1], 8 * 8
    (p_attn, p_local) = count_params(attention), count_params(local)
    f_attn, f_local = (forward_flops(OnTokens(b, tokens, width)) for b in (attention, local))
    assert abs(p_local / p_attn - 1) <= 0.10 and abs(f_local / f_attn - 1) <= 0.10, (p_local / p_attn, f_local / f_attn)
    assert type(local.attn).__name__ == "LocalMixer" and type(attention.attn).__name__ == "Attention"


def test_cost_figures_are_positive_and_scale():
    small, big = tiny("msga"), build_model("msga", **PARAMS["models"]["msga"])
    assert 0 < forward_flops(small) < forward_flops(big)
    assert 0 < count_params(small) < count_params(big)


@pytest.mark.parametrize("name", MODELS)
def test_a_models_declared_code_files_cover_what_its_module_imports(name):
    """A run reruns when a file in run_files(model) changes: every msga module its model file
    imports must be among them, or an edit to it would leave stale runs behind."""
    import ast

    source = PACKAGE / "models" / f"{model_entry(name).module}.py"
    imported = {node.module for node in ast.walk(ast.parse(source.read_text()))
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("msga.")}
    files = set(run_files(name))
    for module in imported:
        rel = module.removeprefix("msga.").replace(".", "/")
        assert f"{rel}.py" in files or f"{rel}/__init__.py" in files, (name, module)


def test_editing_one_model_file_changes_only_the_code_hash_of_its_runs(tmp_path, monkeypatch):
    import shutil

    import msga.grid.codedeps as codedeps

    copy = tmp_path / "msga"
    shutil.copytree(PACKAGE, copy)
    before = {m: code_hash(run_files(m)) for m in MODELS}
    with open(copy / "models" / "crossvit.py", "a") as f:
        f.write("\n# an edit\n")
    monkeypatch.setattr(codedeps, "PACKAGE", copy)
    after = {m: code_hash(run_files(m)) for m in MODELS}
    assert [m for m in MODELS if before[m] != after[m]] == ["crossvit", "crossvit_flops"]  # the file's entries
