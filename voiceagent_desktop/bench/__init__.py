"""``voiceagent bench``: latency, barge-in, CPU, memory and start-up, measured through sound devices."""
