"""Which learning rate a model trains at when it is not tuned itself: the winner of the tuned model
it is a control or another size of. Torch-free."""

from __future__ import annotations

from msga.models import model_entry


def lr_sources(params: dict, tuned) -> dict[str, str]:
    """Each model of params that is not tuned itself -> the tuned model whose winning learning rate
    it trains at: the tuned model built from the same architecture file (msga for its ablation
    controls, convnext for convnext_flops; where several are, the one named after the file), and
    only where the two train with the same recipe but for the learning rate (an lr picked for one
    recipe says nothing about another: the anchor keeps its own).

    Why inherit rather than tune these models too: inheriting costs no run, where tuning the four
    ablation models and the four compute-matched ones would add 8 x the grid's learning rates; and
    for the ablation it is the fairer choice, since a control tuned on its own would differ from
    msga in two things, its component and its learning rate. For a compute-matched baseline it is
    an approximation: its winner at its larger size may differ from its Table 1 twin's."""

    def module(model: str) -> str | None:
        try:
            return model_entry(model).module
        except KeyError:
            return None

    def recipe(model: str) -> dict:
        train = {k: v for k, v in params["train"].items() if k != "per_model"}
        return {k: v for k, v in {**train, **params["train"]["per_model"].get(model, {})}.items() if k != "lr"}

    tuned = [t for t in tuned if t in params["models"]]
    out = {}
    for model in params["models"]:
        if model in tuned or module(model) is None:
            continue
        siblings = [t for t in tuned if module(t) == module(model)]
        source = siblings[0] if len(siblings) == 1 else next((t for t in siblings if t == module(model)), None)
        if source is not None and recipe(model) == recipe(source):
            out[model] = source
    return out
