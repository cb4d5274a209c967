"""A faithful stand-in for the Mailchimp Marketing API v3.0, for tests, the demo and benchmarks.

Behaviour follows the project's Mailchimp reference (status rules, compliance states, error bodies,
paging caps, the 10-connection limit); where the reference says real behaviour is disputed, the choice is
a switch in :class:`MailchimpSimConfig`.
"""

from simulators.mailchimp.config import DEMO_API_KEY, FakeEmailPatterns, MailchimpFaults, MailchimpSimConfig
from simulators.mailchimp.model import subscriber_hash
from simulators.mailchimp.simulator import MailchimpSimulator
from simulators.mailchimp.stats import SimStats, credential_label

__all__ = [
    "DEMO_API_KEY",
    "FakeEmailPatterns",
    "MailchimpFaults",
    "MailchimpSimConfig",
    "MailchimpSimulator",
    "SimStats",
    "credential_label",
    "subscriber_hash",
]
