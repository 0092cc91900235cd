"""Training: the loop that reads top to bottom (`trainer.train`: set-up, epochs, validation,
checkpoint), the inner epoch (`loop.train_epoch`), and multi-process training under torchrun
(`distributed.py`: shards, global BatchNorm, all-reduced sums).

    model, loss = build_components(cfg, data)
    history = train(model, loss, data, cfg, runs_root="runs")   # resumes from its checkpoint

May import: the core modules, data, models, losses, attacks, defences and runs (the run folder);
never evaluation or the study.
"""
