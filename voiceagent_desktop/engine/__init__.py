"""The real-time core: asyncio only, no Qt. Runs headless (CLI, benchmarks, tests) or under the GUI."""
