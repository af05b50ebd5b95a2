"""Errors a user can cause by what they feed the pipeline. Each names the file, table or column."""


class IngestionError(RuntimeError):
    """Base class: the landing of one source table failed and nothing was published."""


class SourceUnavailableError(IngestionError):
    """The source could not be reached or read (database down, export root missing)."""


class ContractError(IngestionError):
    """The source breaks the contract as a whole: a required column is missing, or a file
    cannot be parsed at all."""


class TooManyBadRowsError(IngestionError):
    """The share of quarantined rows passed the configured threshold."""


class ValidationFailedError(IngestionError):
    """The Great Expectations suite at the boundary failed."""


class NoDataError(IngestionError):
    """No enabled source holds a dated record, so there is no day to run for."""
