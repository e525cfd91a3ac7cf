"""The one table of job functions, and the limits every runner applies to them.

arq (`workers.main`) and the in-process runner (`workers.inprocess`) both register exactly
this table; a test holds its keys equal to `domain.jobs.Job`.
"""

from collections.abc import Mapping
from types import MappingProxyType

from domain.jobs import Job
from kizuki.jobs import JobFunction
from workers.context import WorkerContext
from workers.diagnostics import ping, publish_event
from workers.risk import recompute_shop_risk, rescore_customers, schedule_risk_recomputes
from workers.sync import reconcile_connection, schedule_syncs, sync_connection
from workers.webhooks import process_webhook

JOB_FUNCTIONS: Mapping[Job, JobFunction[WorkerContext]] = MappingProxyType(
    {
        Job.PING: ping,
        Job.PUBLISH_EVENT: publish_event,
        Job.RECOMPUTE_SHOP_RISK: recompute_shop_risk,
        Job.RESCORE_CUSTOMERS: rescore_customers,
        Job.SCHEDULE_RISK_RECOMPUTES: schedule_risk_recomputes,
        Job.SYNC_CONNECTION: sync_connection,
        Job.RECONCILE_CONNECTION: reconcile_connection,
        Job.SCHEDULE_SYNCS: schedule_syncs,
        Job.PROCESS_WEBHOOK: process_webhook,
    }
)

# A job still running after this long is cancelled and counts as failed.
JOB_TIMEOUT_SECONDS = 300
# Tries in all for a job that keeps raising `arq.Retry`.
MAX_TRIES = 5
