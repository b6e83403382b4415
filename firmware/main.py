# Hourglass main.py: starts the app (app.py). Ctrl-C stops it and leaves the board at its REPL.
try:
    import app

    app.main()
except KeyboardInterrupt:
    print("hourglass: stopped (Ctrl-C)")
