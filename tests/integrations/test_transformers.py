"""RegimeTrainerCallback in real Trainer.train runs on CPU with a tiny BERT built from a config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip(
    "transformers", reason="the `transformers` extra is not installed (pip install -e '.[transformers]')"
)
pytest.importorskip("accelerate", reason="the `transformers` extra is not installed (pip install -e '.[transformers]')")
from regimescope.integrations.transformers import STATE_ATTRIBUTE, RegimeTrainerCallback, logging_dir  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from tests.integrations._resume import assert_resumed_like  # noqa: E402
from tests.robustness._attach_models import LoRA  # noqa: E402

SCORE = "regimescope/regime/score"
VOCAB, LENGTH = 40, 8


class Tokens(torch.utils.data.Dataset):
    """Seeded token sequences labelled by whether their first token is in the upper half of the vocabulary."""

    def __init__(self, n: int = 32) -> None:
        generator = torch.Generator().manual_seed(0)
        self.ids = torch.randint(0, VOCAB, (n, LENGTH), generator=generator)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ids = self.ids[i]
        label = torch.tensor(int(ids[0] >= VOCAB // 2))
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": label}


def _bert() -> torch.nn.Module:
    config = transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=LENGTH, num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    torch.manual_seed(0)
    return transformers.BertForSequenceClassification(config)


def _zero_initialised_bert() -> torch.nn.Module:
    """:func:`_bert` with a zero classification head (weight and bias), a zero feed-forward output bias and its query
    projection behind a LoRA-style update whose factor starts at zero."""
    model = _bert()
    layer = model.bert.encoder.layer[0]
    for zero in (model.classifier.weight, model.classifier.bias, layer.output.dense.bias):
        torch.nn.init.zeros_(zero)
    adapted = LoRA(16)
    adapted.base.load_state_dict(layer.attention.self.query.state_dict())
    layer.attention.self.query = adapted
    return model


def _train(
    output_dir: Path, callbacks: list, resume: Path | None = None, model: torch.nn.Module | None = None, **arguments
) -> transformers.Trainer:
    settings = dict(
        output_dir=str(output_dir), per_device_train_batch_size=8, learning_rate=5e-3, report_to=[], use_cpu=True,
        disable_tqdm=True, save_strategy="no", seed=0,
    )
    settings.update(arguments)
    trainer = transformers.Trainer(
        model=_bert() if model is None else model, args=transformers.TrainingArguments(**settings),
        train_dataset=Tokens(), callbacks=callbacks,
    )
    trainer.train(resume_from_checkpoint=None if resume is None else str(resume))
    return trainer


def test_train_writes_the_tags_to_logging_dir_regimescope(tmp_path: Path) -> None:
    callback = RegimeTrainerCallback(every=2, probe_size=16, max_overhead=None, distributed="split_layers")  # one process: as "rank0"
    trainer = _train(tmp_path, [callback], max_steps=4)
    assert callback.logdir == logging_dir(trainer.args) / "regimescope"
    events = EventAccumulator(str(callback.logdir), size_guidance={"scalars": 0})
    events.Reload()
    assert [e.step for e in events.Scalars(SCORE)] == [0, 1, 2, 4]
    assert any(t.startswith("regimescope/kernel/distance_from_init/bert.") for t in events.Tags()["scalars"])
    probe = callback.monitor.probe
    assert sorted(probe.inputs) == ["attention_mask", "input_ids"]
    assert probe.targets.shape == (16,)
    assert callback.monitor.distributed.value == "split_layers"


class StopAt(transformers.TrainerCallback):
    """Interrupts a run after ``step`` optimizer steps (its checkpoint at that step is saved first)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        control.should_training_stop = state.global_step >= self.step


def test_resumed_train_keeps_step0_references_and_continues_the_same_curves(tmp_path: Path) -> None:
    run = dict(max_steps=8, save_strategy="steps", save_steps=4)
    uninterrupted = RegimeTrainerCallback(every=2, probe_size=16, max_overhead=None)
    _train(tmp_path / "a", [uninterrupted], **run)
    _train(tmp_path / "b", [RegimeTrainerCallback(every=2, probe_size=16, max_overhead=None), StopAt(4)], **run)
    saved = json.loads((tmp_path / "b" / "checkpoint-4" / "trainer_state.json").read_text())
    assert saved["stateful_callbacks"]["RegimeTrainerCallback"]["attributes"][STATE_ATTRIBUTE]
    resumed = RegimeTrainerCallback(every=2, probe_size=16, max_overhead=None)
    _train(tmp_path / "b", [resumed], resume=tmp_path / "b" / "checkpoint-4", **run)

    assert_resumed_like(uninterrupted.monitor, resumed.monitor, [0, 1, 2, 4, 6, 8], rel=1e-4, abs=1e-6)


def test_stop_on_sets_should_training_stop(tmp_path: Path) -> None:
    callback = RegimeTrainerCallback(every=2, probe_size=16, max_overhead=None, stop_on="lazy")
    trainer = _train(tmp_path, [callback], max_steps=20)
    assert callback.monitor.regime.label == "lazy"
    assert trainer.state.global_step == 1


def test_stop_on_non_finite_never_stops_a_zero_initialised_model(tmp_path: Path) -> None:
    callback = RegimeTrainerCallback(every=2, probe_size=16, max_overhead=None, stop_on="non_finite")
    trainer = _train(tmp_path, [callback], model=_zero_initialised_bert(), max_steps=4)
    assert trainer.state.global_step == 4 and not callback.monitor.stop_requested
    assert [r.step for r in callback.monitor.history] == [0, 1, 2, 4] and not callback.monitor.paused


def test_unknown_stop_on_or_distributed_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="neither regime labels"):
        RegimeTrainerCallback(stop_on="lazzy")
    with pytest.raises(ValueError, match="`distributed` must be one of 'rank0', 'split_layers'; received 'split'"):
        RegimeTrainerCallback(distributed="split")


class Sequences(torch.utils.data.Dataset):
    """Seeded arithmetic token sequences for a causal language model; ``labels`` are the ``input_ids``, as the
    causal-LM collators give them (the model shifts them inside)."""

    def __init__(self, n: int = 32, vocabulary: int = 64) -> None:
        generator = torch.Generator().manual_seed(0)
        start = torch.randint(0, vocabulary, (n, 1), generator=generator)
        self.ids = (start + 3 * torch.arange(LENGTH)) % vocabulary

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def _gpt2() -> torch.nn.Module:
    config = transformers.GPT2Config(
        vocab_size=64, n_positions=LENGTH, n_embd=16, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0,
    )
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(config)


def _train_lm(output_dir: Path, callbacks: list) -> transformers.Trainer:
    arguments = transformers.TrainingArguments(
        output_dir=str(output_dir), per_device_train_batch_size=8, learning_rate=1e-2, report_to=[], use_cpu=True,
        disable_tqdm=True, save_strategy="no", seed=0, max_steps=4,
    )
    trainer = transformers.Trainer(model=_gpt2(), args=arguments, train_dataset=Sequences(), callbacks=callbacks)
    trainer.train()
    return trainer


def test_a_causal_lm_gets_next_token_targets_a_verdict_and_trains_bit_identically(tmp_path: Path) -> None:
    callback = RegimeTrainerCallback(
        probe_size=8, output_projection=8, schedule=lambda step: step in (0, 4), max_overhead=None
    )
    watched = _train_lm(tmp_path / "watched", [callback])
    plain = _train_lm(tmp_path / "plain", [])
    monitor = callback.monitor
    assert not monitor.paused and monitor.regime is not None
    assert [r.step for r in monitor.history] == [0, 4]
    assert monitor.config.output_projection == 8
    ids = monitor.probe.inputs["input_ids"]
    assert torch.equal(monitor.probe.targets[:, :-1], ids[:, 1:])  # the target of position t is the token at t + 1
    assert (monitor.probe.targets[:, -1] == -100).all()
    assert "regimescope/kernel/target_alignment" in monitor.history[-1].scalars
    plain_state, watched_state = plain.model.state_dict(), watched.model.state_dict()
    assert all(torch.equal(plain_state[name], watched_state[name]) for name in plain_state)


def test_kernel_options_travel_in_the_json_arguments() -> None:
    callback = RegimeTrainerCallback(output_projection=8, sketch=256, mode="eval")
    arguments = callback.state()["args"]
    assert {k: arguments[k] for k in ("mode", "implementation", "output_projection", "sketch")} == {
        "mode": "eval", "implementation": "auto", "output_projection": 8, "sketch": 256,
    }
    rebuilt = RegimeTrainerCallback(**arguments)  # what restore_callback_states_from_checkpoint does
    assert rebuilt.state()["args"] == arguments
    with pytest.raises(ValueError, match=r"`output_projection` must be 'auto', None .* >= 1; received 0"):
        RegimeTrainerCallback(output_projection=0)
    with pytest.raises(ValueError, match="`mode` must be one of"):
        RegimeTrainerCallback(mode="inference")
