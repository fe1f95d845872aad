"""Date and time formats of the admin and templates: ISO-like, to the second, with the zone
(every time is shown in UTC, TIME_ZONE), so an auditor reads `2026-11-29 17:02:36 UTC`."""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
