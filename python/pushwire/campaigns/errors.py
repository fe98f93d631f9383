"""The campaigns' exceptions, all under :class:`pushwire.PushwireError` (through the store's
:class:`~pushwire.store.StoreError`)::

    StoreError
    └── CampaignError                      anything about campaigns
        ├── UnknownCampaignError           no campaign with that id or name (a LookupError)
        ├── CampaignStateError             the transition is not allowed from the current state
        └── CampaignInputError (ValueError) bad input: ``field`` names it
            ├── UnknownSegmentAttributeError   the segment names an attribute no endpoint has
            ├── InvalidScheduleError           a cron expression that never fires, end before start
            ├── UnknownTimeZoneError           not an IANA time zone
            ├── TreatmentSplitError            treatment percents that do not add up to 100
            └── EngagementInputError           a malformed engagement event (``index`` = its row)

Every check runs before anything is written: when one of these is raised, nothing was
scheduled or recorded.
"""

from __future__ import annotations

from ..store.errors import StoreError

__all__ = [
    "CampaignError",
    "CampaignInputError",
    "CampaignStateError",
    "EngagementInputError",
    "InvalidScheduleError",
    "TreatmentSplitError",
    "UnknownCampaignError",
    "UnknownSegmentAttributeError",
    "UnknownTimeZoneError",
]


class CampaignError(StoreError):
    """Base of every campaign error."""


class UnknownCampaignError(CampaignError, LookupError):
    """No campaign with that id or name."""


class CampaignStateError(CampaignError):
    """The lifecycle does not allow that transition (e.g. resuming a completed campaign)."""


class CampaignInputError(CampaignError, ValueError):
    """An argument is invalid; ``field`` names it."""


class UnknownSegmentAttributeError(CampaignInputError):
    """The segment filters on an attribute that no endpoint of its applications has."""


class InvalidScheduleError(CampaignInputError):
    """The schedule cannot fire (bad cron expression, none between start and end...)."""


class UnknownTimeZoneError(CampaignInputError):
    """Not a time zone of the IANA database (``Europe/Paris``, ``America/New_York``...)."""


class TreatmentSplitError(CampaignInputError):
    """Treatment percents must add up to 100 (the holdout is taken off first)."""


class EngagementInputError(CampaignInputError):
    """An engagement event is malformed; ``index`` is its position in the batch."""
