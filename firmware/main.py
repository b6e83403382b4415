# Hourglass main.py: starts the device agent (agent.py). Ctrl-C stops it and leaves the board at its REPL.
try:
    import agent

    agent.main()
except KeyboardInterrupt:
    print("hourglass: stopped (Ctrl-C)")
