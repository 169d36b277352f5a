"""The trainer: learns, reports honest metrics, repeats itself, and fails loudly. (Resuming after a kill
or a full disk: tests/faults/.)"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, precision_score, recall_score, roc_auc_score

from msga.grid.paths import CHECKPOINT
from msga.train.device import pick_device
from msga.train.epoch import NonFiniteLoss
from msga.train.evaluate import compute_metrics
from msga.train.loop import WrongData, train_run
from msga.train.schedule import lr_at
from tests.conftest import run_config

HEADLINE = ("acc", "auc", "precision", "recall", "top5")
QUICK = {"train.epochs": 4, "train.lr": 8.0e-3, "train.batch_size": 64}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, demo_params, packed):
    out = tmp_path_factory.mktemp("run")
    config = run_config(demo_params, "msga", QUICK, name="quick")
    return train_run(config, packed, out, pick_device("cpu")), out, config


def test_tiny_msga_beats_chance_clearly(trained):
    metrics, _, _ = trained
    assert metrics["acc"] > 0.05, metrics["acc"]  # 100 classes: chance is 0.01
    assert metrics["auc"] > 0.75


def test_metrics_equal_scikit_learn_on_the_saved_predictions(trained):
    metrics, out, _ = trained
    saved = np.load(out / "predictions.npz")
    probs, labels = saved["probs"], saved["labels"]
    assert probs.dtype == np.float32 and probs.shape == (400, 100)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-4)
    pred = probs.argmax(1)
    assert metrics["acc"] == pytest.approx(accuracy_score(labels, pred), abs=1e-6)
    assert metrics["auc"] == pytest.approx(roc_auc_score(labels, probs, multi_class="ovr", average="macro"), abs=1e-5)
    assert metrics["precision"] == pytest.approx(precision_score(labels, pred, average="macro", zero_division=0), abs=1e-6)
    assert metrics["recall"] == pytest.approx(recall_score(labels, pred, average="macro", zero_division=0), abs=1e-6)


def test_outputs_history_and_provenance(trained, packed):
    metrics, out, config = trained
    assert not (out / CHECKPOINT).exists()
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert {"train_loss", "train_acc", "test_acc", "lr", "seconds", "images_per_s"} <= set(history[0])
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["config"] == config and on_disk["config"]["train"]["epochs"] == 4
    for key in ("git_commit", "versions", "device", "wall_seconds", "train_images_per_s", "params", "flops_per_image"):
        assert on_disk[key], key
    assert {"python", "torch", "torchvision", "timm", "torchmetrics"} <= set(on_disk["versions"])
    assert on_disk["data"] == packed["dataset"] and on_disk["run"] == "msga/quick/seed0"
    assert history[-1]["test_acc"] == pytest.approx(metrics["acc"], abs=1e-6)


def test_non_finite_loss_names_the_run_and_writes_no_metrics(tmp_path, demo_params, packed):
    config = run_config(demo_params, "msga", {"train.epochs": 1, "train.optimizer": "sgd", "train.lr": 100.0,
                                              "train.grad_clip": 0, "train.warmup_epochs": 0}, name="absurd-lr")
    with pytest.raises(NonFiniteLoss, match=r"msga/absurd-lr/seed0: non-finite training loss at epoch 1, step \d+"):
        train_run(config, packed, tmp_path, pick_device("cpu"))
    assert not (tmp_path / "metrics.json").exists()


@pytest.mark.parametrize("seed", range(5))
def test_macro_recall_equals_accuracy_on_a_balanced_set(seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(20).repeat_interleave(7)[torch.randperm(140, generator=g)]
    probs = torch.rand(140, 20, generator=g).softmax(-1)
    m = compute_metrics(probs, labels)
    assert m["recall"] == pytest.approx(m["acc"], abs=1e-6)
    # and the identity needs the balance: keep one image of class 0 and six of the rest
    keep = torch.ones(140, dtype=torch.bool)
    keep[(labels == 0).nonzero().flatten()[1:]] = False
    imbalanced = compute_metrics(probs[keep], labels[keep])
    assert imbalanced["recall"] != pytest.approx(imbalanced["acc"], abs=1e-9)


def test_step_schedule_warms_up_then_multiplies_by_gamma_at_each_milestone():
    from msga.train.schedule import schedule

    lr = schedule({"epochs": 10, "warmup_epochs": 1, "schedule": "step", "milestones": [4, 8], "gamma": 0.2,
                   "min_lr": 0.0}, steps_per_epoch=10, peak=0.1)
    assert lr(0) == pytest.approx(0.01) and lr(9) == pytest.approx(0.1)
    assert [lr(s) for s in (10, 39, 40, 79, 80, 99)] == pytest.approx([0.1, 0.1, 0.02, 0.02, 0.004, 0.004])


@pytest.mark.parametrize("everything", [False, True])
def test_weight_decay_skips_norms_and_biases_unless_told_to_decay_every_parameter(everything):
    from msga.train.schedule import make_optimizer

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(4, 2))
    train = {"optimizer": "sgd", "nesterov": False, "weight_decay": 5e-4, "weight_decay_all": everything}
    decay_of = {id(p): g["weight_decay"] for g in make_optimizer(model, train, 0.1).param_groups for p in g["params"]}
    for name, p in model.named_parameters():
        expected = 5e-4 if everything or p.ndim > 1 else 0.0  # biases and the norm's scale and shift are 1-D
        assert decay_of[id(p)] == expected, name


def test_the_validation_split_holds_out_a_tenth_of_each_class_the_same_for_every_run(packed):
    from msga.train.loop import split_validation

    images, labels = packed["train_images"], packed["train_labels"]
    (fit_x, fit_y), (val_x, val_y) = split_validation(images, labels)
    (_, _), (again_x, _) = split_validation(images, labels)
    assert torch.equal(val_x, again_x) and len(fit_y) + len(val_y) == len(labels)
    per_class = torch.bincount(labels, minlength=100)
    assert torch.equal(torch.bincount(val_y, minlength=100), torch.clamp(per_class // 10, min=1))
    fit_rows = {tuple(r) for r in fit_x.flatten(1)[:, :64].tolist()}
    assert not any(tuple(r) in fit_rows for r in val_x.flatten(1)[:, :64].tolist())  # disjoint


def test_a_validation_run_is_evaluated_on_the_held_out_split(tmp_path, demo_params, packed):
    config = run_config(demo_params, "convnext", {"train.epochs": 1, "train.validation": True}, name="val")
    metrics = train_run(config, packed, tmp_path, pick_device("cpu"))
    held_out = int(torch.clamp(torch.bincount(packed["train_labels"], minlength=100) // 10, min=1).sum())
    assert metrics["evaluated_on"] == f"validation split ({held_out} of the training images)"
    assert sum(map(sum, metrics["confusion_matrix"])) == held_out


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    lrs = [lr_at(s, 100, 10, 1.0, 0.01) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[-1] == pytest.approx(0.01, abs=1e-3)


def test_corrupt_checkpoint_is_reported_and_the_run_restarts_cleanly(tmp_path, demo_params, packed, caplog):
    from msga.train.checkpoint import CHECKPOINT_MAGIC

    config = run_config(demo_params, "msga", {"train.epochs": 1}, name="corrupt")
    (tmp_path / CHECKPOINT).write_bytes(CHECKPOINT_MAGIC + b"PK\x03\x04 truncated checkpoint")
    with caplog.at_level("WARNING", logger="msga.train"):
        metrics = train_run(config, packed, tmp_path, pick_device("cpu"))
    assert "unreadable" in caplog.text and "starting from scratch" in caplog.text
    assert metrics["resumed_from_epoch"] == 0 and (tmp_path / "metrics.json").exists()


FOREIGN = [
    (CHECKPOINT, b""), (CHECKPOINT, b"PK\x03\x04 someone's zip"), (CHECKPOINT, b"my notes"),
    ("metrics.json", b'{"acc": 0.9}'), ("metrics.json", b"my notes"),
    ("progress.json", b'{"epoch": 3}'), ("history.jsonl", b""), ("history.jsonl", b'{"loss": 1}\n'),
    ("predictions.npz", b"PK\x03\x04 someone's zip"), (".training.lock", b"my notes"),
]


@pytest.mark.parametrize(("name", "content"), FOREIGN, ids=[f"{n}: {c[:12]!r}" for n, c in FOREIGN])
def test_a_file_named_like_ours_that_this_project_did_not_write_is_left_alone(tmp_path, demo_params, packed, name,
                                                                              content):
    from msga.train.checkpoint import ForeignFile

    (tmp_path / name).write_bytes(content)
    config = run_config(demo_params, "msga", {"train.epochs": 1})
    with pytest.raises(ForeignFile, match=f"{name} is not a file this project wrote, so it was left as it is"):
        train_run(config, packed, tmp_path, pick_device("cpu"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # nothing written beside it
    assert (tmp_path / name).read_bytes() == content


def test_the_files_of_an_earlier_run_are_replaced(trained, tmp_path, demo_params, packed):
    _, folder, _ = trained
    config = run_config(demo_params, "msga", {"train.epochs": 1})
    for name in ("metrics.json", "history.jsonl", "predictions.npz"):
        shutil.copy(folder / name, tmp_path / name)
    (tmp_path / ".training.lock").write_bytes(b"pid 1 on elsewhere since 10:00:00")
    metrics = train_run(config, packed, tmp_path, pick_device("cpu"))
    assert json.loads((tmp_path / "metrics.json").read_text())["wall_seconds"] == metrics["wall_seconds"]


def test_a_run_refuses_data_other_than_its_configuration_names(tmp_path, demo_params, packed):
    config = run_config(demo_params, "msga", {"train.epochs": 1})
    other = {**packed, "dataset": {"id": "cifar100-eb9058c3a382", "archive_md5": "eb9058c3a382ffc7106e4002c42a8d85"}}
    with pytest.raises(WrongData, match=r"msga/test/seed0: .* holds dataset cifar100-eb9058c3a382 .* names synthetic-12x4"):
        train_run(config, other, tmp_path, pick_device("cpu"), "cifar100.pt")
    assert list(tmp_path.iterdir()) == []  # nothing trained, nothing written


def test_a_checkpoint_made_on_other_data_is_not_resumed(tmp_path, demo_params, packed, caplog):
    from msga.grid.keys import config_hash
    from msga.train.checkpoint import load_checkpoint, save_checkpoint

    config = run_config(demo_params, "msga", {"train.epochs": 1})
    save_checkpoint(tmp_path / CHECKPOINT, {"epoch": 1, "config_hash": config_hash(config), "archive_md5": "0" * 32})
    with caplog.at_level("WARNING", logger="msga.train"):
        assert load_checkpoint(tmp_path / CHECKPOINT, config_hash(config), "run", packed["dataset"]["archive_md5"]) is None
    assert "trained on other data" in caplog.text


def test_a_second_process_training_the_same_run_folder_is_refused(tmp_path, demo_params, packed):
    import subprocess
    import sys

    from msga.grid.paths import TRAINING_LOCK
    from msga.infra.folderlock import FolderBusy

    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from msga.infra.folderlock import exclusive\n"
        f"with exclusive({str(tmp_path / TRAINING_LOCK)!r}, 'training'):\n"
        "    print('held', flush=True); time.sleep(60)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        config = run_config(demo_params, "msga", {"train.epochs": 1})
        with pytest.raises(FolderBusy, match=rf"training msga/test/seed0 in {tmp_path} is already under way in pid {holder.pid}"):
            train_run(config, packed, tmp_path, pick_device("cpu"))
        assert not (tmp_path / CHECKPOINT).exists() and not (tmp_path / "metrics.json").exists()
    finally:
        holder.kill()
        holder.wait()
