# Hourglass boot.py: runs first on every boot and soft reset. Kept empty of work on purpose: a failure here
# must never keep the board from reaching its REPL. The app starts from main.py.
import gc

gc.collect()
