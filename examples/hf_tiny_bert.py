"""Watch the regime of a Hugging Face Trainer run: a tiny BERT built from a config (no download).

One line adds the monitor: ``Trainer(callbacks=[RegimeTrainerCallback()])``. The probe is drawn from the train
dataset through the Trainer's collator (dict inputs, ``labels`` as targets), the kernel is taken on the logits, and
the panels go to ``<logging_dir>/regimescope``. The task: tell whether a key token occurs in a random sequence.

Run::

    python examples/hf_tiny_bert.py [--output-dir runs/hf_tiny_bert] [--quick]
    tensorboard --logdir runs/hf_tiny_bert
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch
from regimescope.integrations.transformers import RegimeTrainerCallback
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

from regimescope.verdict import Verdict

VOCAB = 64
LENGTH = 16
KEY_TOKEN = 7


class KeyTokenTask(torch.utils.data.Dataset):
    """Seeded random token sequences; label 1 when ``KEY_TOKEN`` occurs (about half of them)."""

    def __init__(self, size: int, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(8, VOCAB, (size, LENGTH), generator=generator)
        self.labels = torch.randint(0, 2, (size,), generator=generator)
        positions = torch.randint(0, LENGTH, (size,), generator=generator)
        self.ids[self.labels == 1, positions[self.labels == 1]] = KEY_TOKEN

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ids = self.ids[i]
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": self.labels[i]}


QUICK_BUDGET = {"max_overhead": None}
"""``--quick`` runs a few steps of milliseconds each, too short for the default overhead budget to earn a second
measurement: they keep the fixed schedule so the tests see the curves. Full runs keep the default budget."""


def tiny_bert() -> BertForSequenceClassification:
    """Two layers, width 32, randomly initialised from the config alone."""
    config = BertConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=LENGTH, num_labels=2,
    )
    return BertForSequenceClassification(config)


def main(argv: Sequence[str] | None = None) -> Verdict | None:
    """Train, print the verdict and the TensorBoard command, and return the verdict."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", default="runs/hf_tiny_bert")
    parser.add_argument("--quick", action="store_true", help="a few steps only (used by the tests)")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    callback = RegimeTrainerCallback(
        every=2 if args.quick else 25, probe_size=16 if args.quick else 64, **QUICK_BUDGET if args.quick else {}
    )
    training = TrainingArguments(
        output_dir=args.output_dir,
        max_steps=4 if args.quick else 300,
        per_device_train_batch_size=32,
        learning_rate=1e-3,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    trainer = Trainer(model=tiny_bert(), args=training, train_dataset=KeyTokenTask(512), callbacks=[callback])
    trainer.train()
    verdict = callback.monitor.regime
    print(f"regime after {trainer.state.global_step} steps: {verdict}")
    print(f"see the curves with: tensorboard --logdir {args.output_dir}")
    return verdict


if __name__ == "__main__":
    main()
