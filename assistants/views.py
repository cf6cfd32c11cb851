"""Pages for a team's assistants and runs.

Everyone in the team sees assistants and runs; members and up create, change and delete
assistants and start and cancel runs. Provider failures are stored on the assistant or run and
explained on its page, never shown as a server error. Views never build HTTP requests: they
call the services (writes) and selectors (reads), which call the backends.

A GET writes nothing: a run's page shows its status as last checked, and its live part asks
for news with a POST (htmx every two seconds, or the "Check now" button), which makes sure a
background task follows the run and answers at once with what Tablero knows. No run view waits
on the provider: starting and cancelling a run are tasks too (assistants/tasks.py).

A run's page is its whole conversation (every turn, whichever turn's address it is opened at);
the live part follows the newest turn, and a member continues the conversation there with a
follow-up (or retries a failed turn), each a new run started by the same task.
"""

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts.access import TeamAccess, get_team_for_user
from accounts.models import Role
from assistants import selectors, services, tasks
from assistants.backends import responses_drops_file_search, run_api_for
from assistants.forms import (
    AssistantCreateForm,
    AssistantFilterForm,
    AssistantForm,
    ConnectionPickForm,
    FollowUpForm,
    RetryForm,
    RunFilterForm,
    RunForm,
    RunLookupForm,
)
from assistants.models import Assistant, Run, SyncState
from connections import tasks as connection_tasks
from connections.explanations import explain
from connections.models import Connection, ErrorOperation
from connections.selectors import model_warning
from lib.forms import posted
from lib.pagination import paginate
from lib.progress import progress_active, progress_active_many
from lib.urls import row_query, row_url
from provider.errors import TRANSIENT_KINDS, ErrorKind, ProviderError
from provider.runapi import RESPONSES


def _sync_message(request: HttpRequest, assistant: Assistant, done: str) -> None:
    if assistant.sync_in_progress:  # another request is syncing it: this change waits
        messages.info(
            request,
            _(
                "Saved in Tablero. A sync with the provider is already in progress, so this "
                "change has not been sent yet; retry the sync once it has finished."
            ),
        )
    elif assistant.sync_state == SyncState.SYNCED:
        messages.success(request, done)
    else:
        problem = explain(assistant.last_error_kind or ErrorKind.BAD_RESPONSE).title
        messages.error(
            request,
            _("Saved in Tablero, but not on the provider: %(problem)s. See below.")
            % {"problem": problem},
        )


def _push(request: HttpRequest, assistant: Assistant, operation: str, done: str) -> None:
    """Queue the push of a change just saved locally and say where it stands: "syncing…"
    while the task waits for a consumer, its outcome when it has already run."""
    tasks.assistant_push_queue(assistant=assistant, user=request.user, operation=operation)
    if progress_active(tasks.push_key(assistant.pk)):
        messages.info(
            request,
            _("%(done)s Syncing with the provider; this page shows how it went.") % {"done": done},
        )
        return
    try:
        assistant.refresh_from_db()
    except Assistant.DoesNotExist:
        return
    _sync_message(request, assistant, done)


# --- assistants ------------------------------------------------------------------------------


IMPORT_SHOWN = 20  # connections offered for an import at once; a search finds the others


def _list_context(
    request: HttpRequest, access: TeamAccess, *, form=None, connection=None, query="", **extra
) -> dict:
    """The list page: one page of assistants, and what tasks are doing to them (reads only)."""
    pages = paginate(
        request,
        selectors.assistant_list(
            team=access.team, connection_id=connection.pk if connection else None, query=query
        ),
    )
    assistants = list(pages.page)
    detail = row_url("assistants:detail", access.team.pk)
    only_connection = row_query(request, "connection")
    # What tasks are doing to the page's assistants: one read of the queue for all of them.
    marked = progress_active_many(
        [key for a in assistants for key in (tasks.delete_key(a.pk), tasks.push_key(a.pk))]
    )
    for assistant in assistants:
        assistant.url = detail(assistant.pk)
        assistant.connection_url = only_connection(assistant.connection_id)
        assistant.deleting = tasks.delete_key(assistant.pk) in marked
        assistant.syncing = not assistant.deleting and tasks.push_key(assistant.pk) in marked
    import_query = request.GET.get("import_q", "").strip()[:100]
    connections = list(
        selectors.team_connections(team=access.team, query=import_query)[: IMPORT_SHOWN + 1]
    )
    more_connections = len(connections) > IMPORT_SHOWN
    connections = connections[:IMPORT_SHOWN]
    import_url = row_url("assistants:import", access.team.pk)
    for c in connections:
        c.import_url = import_url(c.pk)
    imports = progress_active_many(tasks.import_key(c.pk) for c in connections)
    importing = [c for c in connections if tasks.import_key(c.pk) in imports]
    import_failed = []
    for c in connections:
        found = tasks.import_result(c.pk)
        if found and "error" in found and c not in importing:
            import_failed.append((c, found["error"]))
    return dict(
        form=form or AssistantFilterForm(team=access.team),
        assistants=assistants,
        pages=pages,
        connections=connections,
        has_connections=bool(connections) or selectors.team_connections(team=access.team).exists(),
        import_query=import_query,
        more_connections=more_connections,
        filtered=bool(connection or query),
        importing=importing,
        import_failed=import_failed,
        busy=bool(importing) or any(a.deleting or a.syncing for a in assistants),
        **extra,
    )


@login_required
@require_safe
def assistant_list(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id)
    form = AssistantFilterForm(request.GET or None, team=access.team)
    connection, query = None, ""
    if form.is_valid():
        connection, query = form.cleaned_data["connection"], form.cleaned_data["q"]
    return render(
        request,
        "assistants/list.html",
        _list_context(request, access, form=form, connection=connection, query=query),
    )


def _chosen_connection(request: HttpRequest, connections: list[Connection]) -> Connection:
    wanted = request.POST.get("connection") or request.GET.get("connection") or ""
    for connection in connections:
        if str(connection.pk) == wanted:
            return connection
    return (
        selectors.connection_default(connections=connections, user=request.user) or connections[0]
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def assistant_create(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.MEMBER)
    connections = list(selectors.team_connections(team=access.team))
    if not connections:
        return render(request, "assistants/create.html", dict(form=None))
    connection = _chosen_connection(request, connections)
    choices = selectors.model_choices(connection=connection)
    form = AssistantCreateForm(
        posted(request),
        team=access.team,
        models=choices.ids,
        never_fetched=choices.never_fetched,
        initial={"connection": connection.pk},
    )
    if form.is_bound and form.is_valid():
        try:
            assistant = services.assistant_create(
                team=access.team,
                user=request.user,
                connection=form.cleaned_data["connection"],
                data=form.assistant_data(),
                submission_token=form.cleaned_data["submission_token"],
                push=False,
            ).value
        except ValidationError as invalid:
            form.add_error(None, invalid)
        except services.AlreadySubmitted as submitted:
            messages.info(
                request, _("This was already submitted; here is the assistant it created.")
            )
            return redirect(
                "assistants:detail", team_id=access.team.pk, assistant_id=submitted.target.pk
            )
        else:
            _push(request, assistant, ErrorOperation.ASSISTANT_CREATE, _("Assistant created."))
            return redirect("assistants:detail", team_id=access.team.pk, assistant_id=assistant.pk)
    return render(
        request,
        "assistants/create.html",
        dict(
            form=form,
            connection=connection,
            pick_form=ConnectionPickForm(team=access.team, initial={"connection": connection}),
            several_connections=len(connections) > 1,
            run_api=run_api_for(connection),
            **_model_context(connection, choices),
        ),
    )


def _model_context(connection: Connection, choices: selectors.ModelChoices) -> dict:
    """What a form page says about the model list it offers: what Tablero last fetched and
    when, its failure, or that none was fetched yet (then a fetch is queued: the page never
    asks the provider itself)."""
    fetching = choices.never_fetched and connection_tasks.models_fetch_soon(connection=connection)
    return dict(
        model_error=choices.error if choices.ids is None else None,
        models_never_fetched=choices.never_fetched,
        models_fetching=fetching,
        models_fetched_at=choices.fetched_at,
    )


def _link_runs(runs: Iterable[Run], team_id: UUID, request: HttpRequest | None = None) -> None:
    """The links of each row of a table of conversations (partials/run_table.html), made once
    per table rather than reversed per row; with `request`, the row's "only these" filter."""
    detail = row_url("assistants:run_detail", team_id)
    assistant_detail = row_url("assistants:detail", team_id)
    only_assistant = row_query(request, "assistant") if request is not None else None
    for run in runs:
        run.url = detail(run.pk)
        if run.assistant_id is not None:
            run.assistant_url = assistant_detail(run.assistant_id)
            if only_assistant is not None:
                run.only_assistant_url = only_assistant(run.assistant_id)
                # The template's own msgid, filled here: a {% blocktranslate %} per row costs
                # more than the rest of the cell.
                run.only_assistant_label = _("Only the runs of %(name)s") % {
                    "name": run.assistant.name
                }


def _detail_context(access: TeamAccess, assistant: Assistant, run_form: RunForm | None) -> dict:
    run_api = run_api_for(assistant.connection)
    runs = selectors.run_recent(assistant=assistant)
    _link_runs(runs, access.team.pk)
    return dict(
        assistant=assistant,
        runs=runs,
        run_form=run_form,
        run_api=run_api,
        deleting=progress_active(tasks.delete_key(assistant.pk)),
        syncing=progress_active(tasks.push_key(assistant.pk)),
        delete_failed=progress_active(tasks.delete_failed_key(assistant.pk)),
        file_search_left_out=run_api == RESPONSES and responses_drops_file_search(assistant.tools),
        model_warning=model_warning(connection=assistant.connection, model_id=assistant.model),
    )


@login_required
@require_safe
def assistant_detail(request: HttpRequest, team_id: UUID, assistant_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id)
    assistant = selectors.assistant_get(team=access.team, pk=assistant_id)
    run_form = RunForm() if access.is_member else None
    return render(request, "assistants/detail.html", _detail_context(access, assistant, run_form))


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def assistant_edit(request: HttpRequest, team_id: UUID, assistant_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.MEMBER)
    assistant = selectors.assistant_get(team=access.team, pk=assistant_id)
    choices = selectors.model_choices(connection=assistant.connection)
    form = AssistantForm(
        posted(request),
        models=choices.ids,
        never_fetched=choices.never_fetched,
        initial=AssistantForm.initial_for(assistant),
    )
    if form.is_bound and form.is_valid():
        try:
            services.assistant_update(
                assistant=assistant, user=request.user, data=form.assistant_data(), push=False
            )
        except ValidationError as invalid:
            form.add_error(None, invalid)
        else:
            _push(request, assistant, ErrorOperation.ASSISTANT_UPDATE, _("Assistant saved."))
            return redirect("assistants:detail", team_id=access.team.pk, assistant_id=assistant.pk)
    return render(
        request,
        "assistants/edit.html",
        dict(
            assistant=assistant,
            form=form,
            model_warning=model_warning(connection=assistant.connection, model_id=assistant.model),
            run_api=run_api_for(assistant.connection),
            **_model_context(assistant.connection, choices),
        ),
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def assistant_delete(request: HttpRequest, team_id: UUID, assistant_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.MEMBER)
    assistant = selectors.assistant_get(team=access.team, pk=assistant_id)
    if request.method == "POST":
        name = assistant.name
        tasks.assistant_delete_queue(assistant=assistant, user=request.user)
        if progress_active(tasks.delete_key(assistant.pk)):
            messages.info(
                request,
                _(
                    "Deleting “%(name)s” on the provider; it goes from this list once it is "
                    "gone there."
                )
                % {"name": name},
            )
            return redirect("assistants:list", team_id=access.team.pk)
        if not Assistant.objects.filter(pk=assistant.pk).exists():
            messages.success(request, _("Assistant “%(name)s” deleted.") % {"name": name})
            return redirect("assistants:list", team_id=access.team.pk)
        assistant.refresh_from_db()
        messages.error(
            request,
            _(
                "The assistant could not be deleted on the provider, so it was kept here: "
                "%(problem)s."
            )
            % {"problem": explain(assistant.last_error_kind or ErrorKind.BAD_RESPONSE).title},
        )
        return redirect("assistants:detail", team_id=access.team.pk, assistant_id=assistant.pk)
    return render(request, "assistants/delete.html", dict(assistant=assistant))


@login_required
@require_POST
def assistant_sync(request: HttpRequest, team_id: UUID, assistant_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.MEMBER)
    assistant = selectors.assistant_get(team=access.team, pk=assistant_id)
    if assistant.sync_in_progress:
        messages.info(
            request,
            _(
                "A sync with the provider is already in progress; reload the page in a moment "
                "to see how it went."
            ),
        )
        return redirect("assistants:detail", team_id=access.team.pk, assistant_id=assistant.pk)
    services.assistant_sync(assistant=assistant, user=request.user, push=False)
    synced = _("Assistant synced with the provider.")
    _push(request, assistant, ErrorOperation.ASSISTANT_SYNC, synced)
    if not Assistant.objects.filter(pk=assistant.pk).exists():
        messages.info(request, _("The assistant was deleted while it was being synced."))
        return redirect("assistants:list", team_id=access.team.pk)
    return redirect("assistants:detail", team_id=access.team.pk, assistant_id=assistant.pk)


@login_required
@require_POST
def assistant_import(request: HttpRequest, team_id: UUID, connection_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.MEMBER)
    connection = get_object_or_404(Connection, pk=connection_id, team=access.team)
    tasks.assistant_import_queue(connection=connection, user=request.user)
    if progress_active(tasks.import_key(connection.pk)):
        messages.info(
            request,
            _("Importing from “%(name)s”; the list below updates when it is done.")
            % {"name": connection.name},
        )
        return redirect("assistants:list", team_id=access.team.pk)
    result = tasks.import_result(connection.pk)  # it has run already (no queue between)
    if result is None:
        return redirect("assistants:list", team_id=access.team.pk)
    if "error" in result:
        return render(
            request,
            "assistants/list.html",
            _list_context(
                request, access, import_error=result["error"], import_connection=connection
            ),
        )
    if result["api"] == RESPONSES:
        messages.info(
            request,
            _(
                "“%(name)s” uses the Responses API, which keeps no assistants on the provider: "
                "there is nothing to import."
            )
            % {"name": connection.name},
        )
    else:
        messages.success(
            request,
            _(
                "Imported from “%(name)s”: %(added)s new, %(known)s already here, "
                "%(skipped)s skipped."
            )
            % {
                "name": connection.name,
                "added": result["added"],
                "known": result["known"],
                "skipped": result["skipped"],
            },
        )
    return redirect("assistants:list", team_id=access.team.pk)


# --- runs ------------------------------------------------------------------------------------


@login_required
@require_POST
def run_start(request: HttpRequest, team_id: UUID, assistant_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.MEMBER)
    assistant = selectors.assistant_get(team=access.team, pk=assistant_id)
    form = RunForm(request.POST)
    if form.is_valid():
        try:
            run, claim = services.run_create(
                assistant=assistant,
                user=request.user,
                message=form.cleaned_data["message"],
                submission_token=form.cleaned_data["submission_token"],
            )
        except services.AlreadySubmitted as submitted:
            messages.info(request, _("This was already submitted; here is the run it started."))
            return redirect(
                "assistants:run_detail", team_id=access.team.pk, run_id=submitted.target.pk
            )
        except services.SyncInProgress:
            form.add_error(
                None,
                _(
                    "This assistant is being synced with the provider right now; start the "
                    "run again in a moment."
                ),
            )
        else:
            tasks.run_begin_queue(run=run, user=request.user, claim=claim)
            return redirect("assistants:run_detail", team_id=access.team.pk, run_id=run.pk)
    return render(request, "assistants/detail.html", _detail_context(access, assistant, form))


@login_required
@require_safe
def run_list(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id)
    form = RunFilterForm(request.GET or None, team=access.team)
    assistant, status, query = None, "", ""
    if form.is_valid():
        assistant, status = form.cleaned_data["assistant"], form.cleaned_data["status"]
        query = form.cleaned_data["q"]
    runs = selectors.run_list(
        team=access.team,
        assistant_id=assistant.pk if assistant else None,
        status=status,
        query=query,
    )
    pages = paginate(request, runs)
    _link_runs(pages.page, access.team.pk, request)
    return render(
        request,
        "assistants/runs.html",
        dict(
            form=form,
            runs=pages.page,
            pages=pages,
            assistant=assistant,
            filtered=bool(assistant or status or query),
        ),
    )


def _follow_up_context(
    access: TeamAccess, run: Run, form: FollowUpForm | None = None
) -> dict[str, Any]:
    """What the end of a conversation's page offers: the follow-up form (and a retry of a
    failed turn) to members once the newest turn ended; otherwise why not."""
    assistant = run.assistant
    open_to_more = (
        run.is_latest and assistant is not None and assistant.connection_id == run.connection_id
    )
    can_continue = access.is_member and open_to_more and run.is_terminal
    return dict(
        follow_up_form=(form or FollowUpForm()) if can_continue else None,
        # Why a follow-up just sent was refused, when the form is not offered any more.
        follow_up_errors=form.non_field_errors() if form is not None and not can_continue else [],
        retry_form=RetryForm() if can_continue and run.is_retryable else None,
        follow_up_wait=access.is_member and open_to_more and not run.is_terminal,
        follow_up_viewer=not access.is_member and open_to_more,
        follow_up_closed=run.is_latest and not open_to_more,
        conversation_moved_on=not run.is_latest,
    )


def _status_context(
    access: TeamAccess, run: Run, form: FollowUpForm | None = None
) -> dict[str, Any]:
    # Polling stops when the run ended (`run_refresh` ends a run still going past its
    # deadline as expired), or when asking failed in a way that will not pass by itself (the
    # page then explains it and offers a "Check now" button).
    stuck = bool(run.last_error_kind) and ErrorKind(run.last_error_kind) not in TRANSIENT_KINDS
    cancelling = not run.is_terminal and progress_active(tasks.cancel_key(run.pk))
    return dict(
        **_follow_up_context(access, run, form),
        run=run,
        polling=not run.is_terminal and (not stuck or cancelling),
        cancelling=cancelling,
        cancel_failed=bool(run.last_error_kind)
        and not cancelling
        and progress_active(tasks.cancel_failed_key(run.pk)),
        can_cancel=access.is_member and run.is_cancellable and not cancelling,
    )


def _conversation_page(
    request: HttpRequest,
    access: TeamAccess,
    run: Run,
    form: FollowUpForm | None = None,
    status: int = 200,
) -> HttpResponse:
    """A run's page: its whole conversation, every turn in order, the newest one live."""
    turns = selectors.conversation_turns(run=run)
    latest = turns[-1]
    context = _status_context(access, latest, form)
    context.update(earlier_turns=turns[:-1], first=turns[0], shown=run)
    return render(request, "assistants/run_detail.html", context, status=status)


@login_required
@require_safe
def run_detail(request: HttpRequest, team_id: UUID, run_id: UUID) -> HttpResponse:
    """The run's conversation as Tablero last knew it; the newest turn's status asks for news
    by itself (POST)."""
    access = get_team_for_user(request, team_id)
    run = selectors.run_get(team=access.team, pk=run_id)
    return _conversation_page(request, access, run)


def _refusal(refused: services.FollowUpRefused) -> str:
    if refused.reason == services.FollowUpRefused.TURN_RUNNING:
        return _(
            "The previous turn has not ended yet: wait for its answer (or cancel it), then "
            "send your follow-up."
        )
    if refused.reason == services.FollowUpRefused.NOTHING_TO_RETRY:
        return _("The last turn did not fail: there is nothing to retry.")
    if refused.reason == services.FollowUpRefused.ASSISTANT_MOVED:
        return _(
            "The assistant now runs on another connection, so this conversation cannot go on "
            "here; start a new run from the assistant's page."
        )
    return _("The assistant was deleted, so this conversation cannot go on.")


@login_required
@require_POST
def run_follow_up(request: HttpRequest, team_id: UUID, run_id: UUID) -> HttpResponse:
    """Send the next message of the run's conversation (a new turn, started by a task)."""
    access = get_team_for_user(request, team_id, min_role=Role.MEMBER)
    run = selectors.run_get(team=access.team, pk=run_id)
    form = FollowUpForm(request.POST)
    if form.is_valid():
        try:
            turn, claim = services.run_follow_up(
                run=run,
                user=request.user,
                message=form.cleaned_data["message"],
                submission_token=form.cleaned_data["submission_token"],
            )
        except services.AlreadySubmitted as submitted:
            messages.info(request, _("This was already sent; here is the turn it started."))
            return redirect(
                "assistants:run_detail", team_id=access.team.pk, run_id=submitted.target.pk
            )
        except services.FollowUpRefused as refused:
            form.add_error(None, _refusal(refused))
        except services.SyncInProgress:
            form.add_error(
                None,
                _(
                    "This assistant is being synced with the provider right now; send your "
                    "follow-up again in a moment."
                ),
            )
        else:
            tasks.run_begin_queue(run=turn, user=request.user, claim=claim)
            return redirect("assistants:run_detail", team_id=access.team.pk, run_id=turn.pk)
    return _conversation_page(request, access, run, form)


@login_required
@require_POST
def run_retry(request: HttpRequest, team_id: UUID, run_id: UUID) -> HttpResponse:
    """Send the failed newest turn's message again, as the conversation's next turn."""
    access = get_team_for_user(request, team_id, min_role=Role.MEMBER)
    run = selectors.run_get(team=access.team, pk=run_id)
    form = RetryForm(request.POST)
    form.is_valid()  # only the one-time token, which is always there
    try:
        turn, claim = services.run_follow_up(
            run=run,
            user=request.user,
            retry=True,
            submission_token=form.cleaned_data.get("submission_token"),
        )
    except services.AlreadySubmitted as submitted:
        messages.info(request, _("This was already sent; here is the turn it started."))
        return redirect("assistants:run_detail", team_id=access.team.pk, run_id=submitted.target.pk)
    except services.FollowUpRefused as refused:
        messages.error(request, _refusal(refused))
    except services.SyncInProgress:
        messages.error(
            request,
            _("This assistant is being synced with the provider right now; retry in a moment."),
        )
    else:
        tasks.run_begin_queue(run=turn, user=request.user, claim=claim)
        return redirect("assistants:run_detail", team_id=access.team.pk, run_id=turn.pk)
    return redirect("assistants:run_detail", team_id=access.team.pk, run_id=run.pk)


@login_required
@require_safe
def run_status(request: HttpRequest, team_id: UUID, run_id: UUID) -> HttpResponse:
    """The live part of a run's page, as Tablero last knew it (reads only)."""
    access = get_team_for_user(request, team_id)
    run = selectors.run_get(team=access.team, pk=run_id)
    return render(request, "assistants/partials/run_status.html", _status_context(access, run))


@login_required
@require_POST
def run_refresh(request: HttpRequest, team_id: UUID, run_id: UUID) -> HttpResponse:
    """Make sure a background task follows the run (it asks the provider, often at first),
    and answer at once with the status as Tablero knows it. htmx polls this every two seconds
    and swaps in the returned status part; the "Check now" button, without JavaScript, comes
    back to the run's page."""
    access = get_team_for_user(request, team_id)
    run = selectors.run_get(team=access.team, pk=run_id)
    tasks.run_follow(run)
    run.refresh_from_db()  # a task run at once (immediate mode) may have moved it on
    if request.headers.get("HX-Request") == "true":
        return render(request, "assistants/partials/run_status.html", _status_context(access, run))
    return redirect("assistants:run_detail", team_id=access.team.pk, run_id=run.pk)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def run_cancel(request: HttpRequest, team_id: UUID, run_id: UUID) -> HttpResponse:
    """GET asks first (a page, so it works without JavaScript); POST asks the provider."""
    access = get_team_for_user(request, team_id, min_role=Role.MEMBER)
    run = selectors.run_get(team=access.team, pk=run_id)
    if request.method != "POST":
        return render(request, "assistants/run_cancel.html", {"team": access.team, "run": run})
    if not run.is_cancellable:
        messages.info(request, _("This run is no longer queued or running; nothing to cancel."))
    else:
        tasks.run_cancel_queue(run=run, user=request.user)
        messages.success(request, _("Cancellation requested."))
    return redirect("assistants:run_detail", team_id=access.team.pk, run_id=run.pk)


@login_required
@require_safe
def run_lookup(request: HttpRequest, team_id: UUID) -> HttpResponse:
    """Look up any run on one of the team's connections by its ids (nothing is stored)."""
    access = get_team_for_user(request, team_id)
    connections = list(selectors.team_connections(team=access.team))
    default = selectors.connection_default(connections=connections, user=request.user)
    form = RunLookupForm(
        request.GET or None,
        team=access.team,
        initial={"connection": default.pk} if default else None,
    )
    found = error = local_run = None
    if form.is_valid():
        data = form.cleaned_data
        try:
            snapshot = selectors.run_lookup(
                connection=data["connection"],
                thread_id=data["thread_id"],
                run_id=data["run_id"],
                response_id=data["response_id"],
            )
        except ProviderError as failure:
            error = failure
        else:
            found = selectors.snapshot_as_run(snapshot, connection=data["connection"])
        local_run = selectors.run_find(
            team=access.team,
            connection=data["connection"],
            thread_id=data["thread_id"],
            run_id=data["run_id"],
            response_id=data["response_id"],
        )
    return render(
        request,
        "assistants/run_lookup.html",
        dict(
            form=form,
            found=found,
            error=error,
            local_run=local_run,
            has_connections=bool(connections),
        ),
    )
