# Console logs with levels: "hg <L> <message>" lines between whatever else the console carries (on the nRF52840
# they are the diagnostic text between slipmux frames). Callers never pass key material, OOB secrets or Wi-Fi
# passwords: the log names states and peers only.
LEVELS = ("debug", "info", "warn", "error")
threshold = 1


def set_level(name):
    global threshold
    threshold = LEVELS.index(name) if name in LEVELS else 1


def log(level, *parts):
    if level >= threshold:
        print("hg", "DIWE"[level], *parts)


def debug(*parts):
    log(0, *parts)


def info(*parts):
    log(1, *parts)


def warn(*parts):
    log(2, *parts)


def error(*parts):
    log(3, *parts)
