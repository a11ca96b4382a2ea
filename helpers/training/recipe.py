"""The recipe in a few words: what a trainer trains with, so that notebook 03's hand-built trainer and the
one ``finetune`` builds (``helpers.training.trainer.build_trainer``) can be compared side by side."""

from __future__ import annotations


def recipe_summary(trainer) -> dict[str, str]:
    """The settings that make the recipe: loss, Matryoshka dims, batches, query prompt, learning rate, batch
    size, epochs, warmup, and the dims the validation scores."""
    args, loss = trainer.args, trainer.loss
    inner = getattr(loss, "loss", None)
    prompt = args.prompts if isinstance(args.prompts, str) else (args.prompts or {}).get("anchor", "")
    evaluators = getattr(trainer.evaluator, "evaluators", [trainer.evaluator] if trainer.evaluator else [])
    return {
        "loss": type(loss).__name__ + (f" over {type(inner).__name__}" if inner is not None else ""),
        "matryoshka dims": ", ".join(map(str, getattr(loss, "matryoshka_dims", []))),
        "batch sampler": str(getattr(args.batch_sampler, "value", args.batch_sampler)),
        "query prompt": repr(prompt),
        "learning rate": f"{args.learning_rate:g}",
        "batch size": str(args.per_device_train_batch_size),
        "epochs": f"{args.num_train_epochs:g}",
        "warmup": f"{args.warmup_steps:g}",
        "validation dims": ", ".join(str(getattr(e, "truncate_dim", None)) for e in evaluators) or "none",
    }
