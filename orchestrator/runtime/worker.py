"""Run one worker process: check config, create topics, start Faust."""

from __future__ import annotations

import asyncio
import logging

import faust
from faust.exceptions import ConsistencyError

from orchestrator.core.rules import RuleSetError
from orchestrator.runtime.app import build_app
from orchestrator.runtime.local_state import LocalStateError, reset_local_state, stale_state_message
from orchestrator.runtime.rules_feed import RuleSetState, read_latest, rule_channels
from orchestrator.runtime.settings import Settings, SettingsError, load_intent_specs
from orchestrator.runtime.topics import ensure_action_topics, ensure_topics
from orchestrator.runtime.web_security import load_web_security


async def _prepare(settings: Settings) -> tuple[list[str], RuleSetState, int]:
    created = await ensure_topics(settings)
    try:
        state, follow_from = await read_latest(settings, settings.rules_dir,
                                               settings.journey_directory)
    except RuleSetError as exc:  # nothing published and rules/ itself is bad
        raise SettingsError(f"no rule set published on {settings.topic_rules}, and "
                            f"{settings.rules_dir} (or its journeys) is invalid:\n{exc}") from None
    created += await ensure_action_topics(settings, rule_channels(state.rule_set, state.journeys))
    return created, state, follow_from


def run_worker(settings: Settings, reset_state: bool = False) -> None:
    """Block until the worker is stopped (SIGINT/SIGTERM shut it down cleanly).

    ``reset_state``: delete the worker's data dir first (see :mod:`.local_state`), so that its
    tables are rebuilt from the broker. Raises :class:`LocalStateError` when the local state is
    ahead of the broker's changelog (Faust's ConsistencyError), with the command that fixes it.
    """
    # Bad intents or HTTP security settings stop the start before anything connects.
    load_intent_specs(settings.intents_file)
    security = load_web_security(settings)
    created, rules_state, follow_from = asyncio.run(_prepare(settings))
    logger = logging.getLogger("orchestrator")
    data_dir = settings.worker_data_dir
    if reset_state and reset_local_state(data_dir):
        logger.warning("local state deleted: %s (rebuilt from the broker's changelog topics)", data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = build_app(settings, rules_state.rule_set, rules=(rules_state, follow_from),
                       security=security)
    worker = faust.Worker(engine.app, loglevel=settings.log_level.upper(), quiet=True,
                          redirect_stdouts=False)
    # Faust's terminal spinner sets the root logger to DEBUG whenever the level is WARNING or
    # above, so that every debug record (one per produced message in Faust and aiokafka) is
    # built just to turn the spinner. A worker is not a terminal toy: no spinner.
    worker.spinner = None
    if created:
        logger.info("created topics: %s", ", ".join(created))
    logger.info("rule set %s from %s", rules_state.rule_set.version, rules_state.source)
    if settings.journeys:
        journeys = rules_state.journeys
        logger.info("journeys: %s", "none" if journeys is None else
                    f"{len(journeys.journeys)} ({journeys.version})")
    try:
        worker.execute_from_commandline()
    except SystemExit:
        stale = _consistency_error(worker)
        if stale is not None:
            raise LocalStateError(stale_state_message(data_dir, str(stale))) from None
        raise


def _consistency_error(worker: faust.Worker) -> ConsistencyError | None:
    """The ConsistencyError the worker crashed with, if that is why it stopped.

    Faust's table recovery raises it when a partition's persisted offset is past the end of its
    changelog; the crash reaches the worker (the root service), which exits with code 1."""
    reason: BaseException | None = worker.crash_reason
    seen = 0
    while reason is not None and seen < 10:  # the error itself, or what it was raised from
        if isinstance(reason, ConsistencyError):
            return reason
        reason, seen = reason.__cause__ or reason.__context__, seen + 1
    return None
