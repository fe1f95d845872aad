"""Oversight in the admin: validation reports and findings (closing a finding goes through
the service, with a comment), monitoring per version with a chart per metric and its
thresholds, alerts, threshold rules and policies (risk officers; every edit audited), and
periodic reviews with the list of overdue ones."""

from oversight.admin import monitoring, reviews, validation  # noqa: F401 - registrations
