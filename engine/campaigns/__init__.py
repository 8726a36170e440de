"""Scheduled audience sends (``campaigns:``): the schedule, the fan-out over every known
customer, its checkpoints and its progress. The decision itself is the pipeline's
(:mod:`engine.pipeline.campaign`). Design: docs/campaigns.md."""
