# SUIT (draft-ietf-suit-manifest-37) on the device: authenticate an envelope against provisioned trust anchors,
# run its command sequences through a platform driver, stream payloads into staged slots while hashing (and
# decrypting) them, and make them active only when every check passed.
#
#   from suit.processor import Processor        the processor (suit.processor)
#   from suit.bundle import BundleDriver        files of the Python bundle, committed through a journal
#   from suit.slots import SlotDriver           A/B slot files (and suit.esp32ota for esp32.Partition)
#   from suit.envelope import authenticate      an envelope (one buffer, or a file's path) authenticated in
#                                               place, its Manifest returned: what an update trigger checks
#
# Every failure raises SuitError with a draft-ietf-suit-report reason code and a message naming what failed.
# The codes' names (suit.reasons.REASONS) and the messages' texts (suit._text) load on first use: an install that
# succeeds needs neither. The fault injector (suit.faults: FaultyFs, PowerCut) is for tests.
try:
    from micropython import const
except ImportError:  # CPython: every const() here is an int
    const = int


class SuitError(Exception):
    """A manifest was refused or a command failed. reason: a REASONS index; record: where it happened
    ([manifest-id], section, offset, component index, {parameters}) or None before any command ran. message:
    the text, or a suit._text number (or a (number, values...) tuple), made into the text here."""

    def __init__(self, reason, message, record=None):
        if type(message) is not str:
            from suit._text import text
            message = text(message)
        super().__init__(message)
        self.reason = reason
        self.record = record

    def __str__(self):
        from suit._text import describe
        return describe(self)

