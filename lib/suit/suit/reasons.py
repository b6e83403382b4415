# The names of the reason codes (draft-ietf-suit-report-18): SuitError.reason and Result.reason index REASONS;
# the modules keep the numbers as private consts.
REASONS = ("ok", "cbor-parse", "cose-unsupported", "alg-unsupported", "unauthorised", "command-unsupported",
           "component-unsupported", "component-unauthorised", "parameter-unsupported", "severing-unsupported",
           "condition-failed", "operation-failed", "invoke-pending")
