"""Online learning: event store, model registry, fold-in and incremental fine-tuning."""
