"""Why a run ended the way it did, in words.

A run that could not be started or checked carries the error catalogue's kind
(`Run.last_error_kind`) and is explained by the catalogue. A run the provider itself ended as
failed, expired, incomplete or cancelled carries the provider's `last_error.code` /
`incomplete_details.reason` (`Run.last_error_code`): the codes the catalogue knows map to it,
the others are explained here. The shape matches `connections.explanations.Explanation`, so
both render through the same template.
"""

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.timesince import timesince
from django.utils.translation import gettext_lazy as _

from assistants.models import Run, RunStatus
from assistants.services.runs import START_LOST_CODE, THREAD_BUSY_CODE
from connections.explanations import explain
from connections.models import RunApi
from lib.severity import Severity
from provider.errors import ErrorKind

RUNS_HELP = "https://platform.openai.com/docs/api-reference/runs/object"
RESPONSES_HELP = "https://platform.openai.com/docs/api-reference/responses/object"

# Run failure codes the error catalogue already explains.
CODE_KINDS = {
    "rate_limit_exceeded": ErrorKind.RATE_LIMITED,
    "server_error": ErrorKind.SERVER_ERROR,
}


@dataclass(frozen=True)
class RunExplanation:
    title: str | Promise
    cause: str | Promise
    next_step: str | Promise
    help_url: str
    severity: Severity  # DANGER, WARN, or INFO
    kind: str = ""  # the catalogue's error kind, when the explanation is the catalogue's
    operator_doc: str | Promise = ""  # a section of Tablero's README (see connections')


@dataclass(frozen=True)
class _Words:
    title: str | Promise
    cause: str | Promise
    next_step: str | Promise
    severity: Severity = Severity.DANGER


def _own(words: _Words, run: Run) -> RunExplanation:
    help_url = RESPONSES_HELP if run.backend == RunApi.RESPONSES else RUNS_HELP
    return RunExplanation(words.title, words.cause, words.next_step, help_url, words.severity)


def _from_catalogue(kind: ErrorKind | str) -> RunExplanation:
    entry = explain(kind)
    return RunExplanation(
        entry.title,
        entry.cause,
        entry.next_step,
        entry.help_url,
        entry.severity,
        str(kind),
        entry.operator_doc,
    )


_SHORTER = _("Ask for a shorter answer, or split the question into smaller ones.")

# How the provider ended a run, by (status, code): the code is the provider's
# `last_error.code` or `incomplete_details.reason`; None stands for any code not listed.
ENDINGS: dict[tuple[RunStatus, str | None], _Words] = {
    (RunStatus.FAILED, "invalid_prompt"): _Words(
        _("The provider refused the prompt"),
        _(
            "The message or the assistant's instructions were refused, for example "
            "by the provider's usage policies."
        ),
        _("Rephrase the message or review the instructions, then run it again."),
    ),
    (RunStatus.FAILED, START_LOST_CODE): _Words(
        _("Tablero lost this run's start"),
        _(
            "Tablero sent the start to the provider, but the background worker that sent it "
            "stopped before it read the answer. The provider may or may not have started the "
            "run, and it offers no way to look it up, so Tablero did not send it again."
        ),
        _(
            "Start it again from the assistant's page. The provider may have run it once "
            "already: its usage page shows whether it did."
        ),
        Severity.WARN,
    ),
    (RunStatus.FAILED, THREAD_BUSY_CODE): _Words(
        _("The provider is still busy with the previous turn"),
        _(
            "On the Assistants API a conversation takes no new message while one of its runs "
            "is still going on at the provider, and the previous turn still was, even if "
            "Tablero had stopped waiting for it. Tablero asks the provider to cancel a turn it "
            "stopped waiting for before it sends the next one, but cancelling can take a moment."
        ),
        _(
            "Wait a minute, then use “Retry this message” below. If it keeps failing, start a "
            "new conversation from the assistant's page."
        ),
        Severity.WARN,
    ),
    (RunStatus.FAILED, None): _Words(
        _("The run failed"),
        _("The provider ended the run with an error."),
        _(
            "Read the provider's message below, then run it again. If it keeps failing, "
            "check the assistant's model and tools."
        ),
    ),
    (RunStatus.EXPIRED, None): _Words(
        _("The run expired"),
        _(
            "The provider ends a run that does not finish in time (10 minutes on the "
            "Assistants API), or that waits too long for the results of function tools, "
            "which Tablero does not send."
        ),
        _(
            "Run it again. If it keeps expiring, shorten the message or remove the "
            "function tools the assistant waits on."
        ),
    ),
    (RunStatus.INCOMPLETE, "max_output_tokens"): _Words(
        _("The answer hit the output token limit"),
        _("The model stopped because the answer reached the maximum number of output tokens."),
        _SHORTER,
        Severity.WARN,
    ),
    (RunStatus.INCOMPLETE, "max_completion_tokens"): _Words(
        _("The answer hit the completion token limit"),
        _("The run stopped because the answer reached the maximum number of completion tokens."),
        _SHORTER,
        Severity.WARN,
    ),
    (RunStatus.INCOMPLETE, "max_prompt_tokens"): _Words(
        _("The conversation is too long"),
        _("The run stopped because the prompt reached the maximum number of prompt tokens."),
        _("Shorten the assistant's instructions or the message, then run it again."),
        Severity.WARN,
    ),
    (RunStatus.INCOMPLETE, "content_filter"): _Words(
        _("The answer was stopped by the content filter"),
        _("The provider's content filter stopped the answer part-way."),
        _("Rephrase the message, then run it again."),
        Severity.WARN,
    ),
    (RunStatus.INCOMPLETE, None): _Words(
        _("The answer is incomplete"),
        _("The provider ended the run before the answer was complete."),
        _("Run it again, perhaps with a shorter message."),
        Severity.WARN,
    ),
    (RunStatus.CANCELLED, None): _Words(
        _("The run was cancelled"),
        _("Someone cancelled this run before it finished (or the provider did)."),
        _("Start a new run from the assistant's page if you still need an answer."),
        Severity.INFO,
    ),
    (RunStatus.REQUIRES_ACTION, None): _Words(
        _("The assistant is waiting for a function result"),
        _(
            "The assistant called one of its function tools and waits for the result. "
            "Tablero does not run functions, so the run will expire."
        ),
        _("Cancel the run, or remove the function tools from the assistant."),
        Severity.WARN,
    ),
}


def _stopped_checking(run: Run) -> RunExplanation:
    """Tablero gave up on a run that had not ended by its deadline (`Run.poll_deadline`)."""
    limit = timesince(run.created_at, run.poll_deadline)
    if run.remote_run_id or run.response_id:
        cause = _(
            "Tablero stopped checking this run %(limit)s after it started; the provider still "
            "said “%(status)s”. It may have stalled."
        ) % {"limit": limit, "status": RunStatus(run.remote_status).label}
    else:
        cause = _(
            "Tablero stopped checking this run %(limit)s after it started; the provider never "
            "confirmed that it had started."
        ) % {"limit": limit}
    words = _Words(
        _("Tablero stopped checking this run"),
        cause,
        _(
            "Start it again from the assistant's page. If you still want this run's answer, "
            "look it up by its ID later: the provider may finish it after all."
        ),
        Severity.WARN,
    )
    return _own(words, run)


def run_explanation(run: Run) -> RunExplanation | None:
    """What to tell the user about this run's outcome, or None when there is nothing to say
    (it is going well or completed)."""
    if run.last_error_kind and (run.status == RunStatus.FAILED or not run.is_terminal):
        # The provider could not be asked (to start it, or about its status).
        return _from_catalogue(run.last_error_kind)
    code = run.last_error_code
    failed = run.status == RunStatus.FAILED
    if failed and code in CODE_KINDS:
        return _from_catalogue(CODE_KINDS[code])
    if run.stopped_checking and not failed:
        return _stopped_checking(run)
    words = ENDINGS.get((run.status, code)) or ENDINGS.get((run.status, None))
    return _own(words, run) if words else None
