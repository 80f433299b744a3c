"""Run one worker process: check config, create topics, start Faust."""

from __future__ import annotations

import asyncio
import logging

import faust

from orchestrator.core.rules import RuleSetError
from orchestrator.runtime.app import build_app
from orchestrator.runtime.rules_feed import RuleSetState, read_latest, rule_channels
from orchestrator.runtime.settings import Settings, SettingsError, load_intent_specs
from orchestrator.runtime.topics import ensure_action_topics, ensure_topics
from orchestrator.runtime.web_security import load_web_security


async def _prepare(settings: Settings) -> tuple[list[str], RuleSetState, int]:
    created = await ensure_topics(settings)
    try:
        state, follow_from = await read_latest(settings, settings.rules_dir)
    except RuleSetError as exc:  # nothing published and rules/ itself is bad
        raise SettingsError(f"no rule set published on {settings.topic_rules}, and "
                            f"{settings.rules_dir} is invalid:\n{exc}") from None
    created += await ensure_action_topics(settings, rule_channels(state.rule_set))
    return created, state, follow_from


def run_worker(settings: Settings) -> None:
    """Block until the worker is stopped (SIGINT/SIGTERM shut it down cleanly)."""
    # Bad intents or HTTP security settings stop the start before anything connects.
    load_intent_specs(settings.intents_file)
    security = load_web_security(settings)
    created, rules_state, follow_from = asyncio.run(_prepare(settings))
    settings.worker_data_dir.mkdir(parents=True, exist_ok=True)
    engine = build_app(settings, rules_state.rule_set, rules=(rules_state, follow_from),
                       security=security)
    worker = faust.Worker(engine.app, loglevel=settings.log_level.upper(), quiet=True,
                          redirect_stdouts=False)
    # Faust's terminal spinner sets the root logger to DEBUG whenever the level is WARNING or
    # above, so that every debug record (one per produced message in Faust and aiokafka) is
    # built just to turn the spinner. A worker is not a terminal toy: no spinner.
    worker.spinner = None
    logger = logging.getLogger("orchestrator")
    if created:
        logger.info("created topics: %s", ", ".join(created))
    logger.info("rule set %s from %s", rules_state.rule_set.version, rules_state.source)
    worker.execute_from_commandline()
