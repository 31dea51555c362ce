"""profiler_agent."""
