# SUIT (draft-ietf-suit-manifest-37) on the device: authenticate an envelope against provisioned trust anchors,
# run its command sequences through a platform driver, stream payloads into staged slots while hashing (and
# decrypting) them, and make them active only when every check passed.
#
#   from suit.processor import Processor        the processor (suit.processor)
#   from suit.bundle import BundleDriver        files of the Python bundle, committed through a journal
#   from suit.slots import SlotDriver           A/B slot files (and suit.esp32ota for esp32.Partition)
#
# Every failure raises SuitError with a draft-ietf-suit-report reason code and a message naming what failed.
try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

# reason codes (draft-ietf-suit-report-18) are indexes into REASONS; the modules keep them as private consts
REASONS = ("ok", "cbor-parse", "cose-unsupported", "alg-unsupported", "unauthorised", "command-unsupported",
           "component-unsupported", "component-unauthorised", "parameter-unsupported", "severing-unsupported",
           "condition-failed", "operation-failed", "invoke-pending")


class SuitError(Exception):
    """A manifest was refused or a command failed. reason: a REASONS index; record: where it happened
    ([manifest-id], section, offset, component index, {parameters}) or None before any command ran."""

    def __init__(self, reason, message, record=None):
        super().__init__(message)
        self.reason = reason
        self.record = record

    @property
    def reason_name(self):
        return REASONS[self.reason]

    def __str__(self):
        return "%s: %s" % (REASONS[self.reason], self.args[0])


class PowerCut(Exception):
    """Raised by a fault injector where the device loses power; nothing after it may run."""
