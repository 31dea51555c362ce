"""What the agent does, step by step, whoever asks: the CLI's commands and the daemon's jobs call these."""
