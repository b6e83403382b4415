# Hourglass main.py: reads the configuration and installs an update that waits for this boot (agent_config.py:
# before the agent and its CoAP endpoint are imported, so the install has the heap to itself), then starts the
# device agent (agent.py). Ctrl-C stops it and leaves the board at its REPL.
try:
    import agent_config

    cfg, root = agent_config.boot()
    agent_config = None
    import agent

    agent.main(cfg, root)
except KeyboardInterrupt:
    print("hourglass: stopped (Ctrl-C)")
