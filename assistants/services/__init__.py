"""Writes for assistants and runs (HackSoft style: keyword-only, typed).

Callers import `assistants.services` and use the names below; the modules are its seams:
`run_api` (which run API a server offers), `sync` (the push protocol), `assistant` (create,
change, sync, delete), `importing`, `runs`, and `shared` (form tokens, the error history).

Local record first, provider second, and never a transaction open across a provider call:
each service saves what it knows in a short transaction, talks to the provider, then records
the outcome in another short transaction.

Outcomes. Every service here that calls the provider returns an `Outcome`
(connections/outcome.py): `value` is the record (an assistant, a run, an import's counts;
None when the record is gone, or once a delete has removed it) and `error` the provider's
failure, already stored on the record (`last_error_kind`, explained on its page through the
error catalogue) and in the connection's error history. Provider failures never raise out of
these services; `AlreadySubmitted` and `SyncInProgress` do, because the caller must answer
them in its own way.

Claims and compare-and-swap. Provider calls are slow and no transaction is held across them,
so two requests (a double click, two tabs, later a worker) may act on one record at once. The
rules, which each function below only names:

- The sync claim. Before an assistant is pushed (created, modified, created again) a request
  claims it with one conditional UPDATE of `sync_claimed_at` (free, or older than
  SYNC_CLAIM_TTL): exactly one request wins (`sync.claim`). The loser sends nothing and says
  the sync is in progress. The claim is held across the provider call and released with the
  outcome, by a compare-and-swap on the claim's own timestamp (`sync.mark`, `sync.release`),
  so a claim taken over after the TTL is never released by its old holder. A delete takes the
  claim over unconditionally: it may always proceed.
- Outcomes are written by compare-and-swap, never by saving a record read before the call:
  an UPDATE filtered on what the call was made for (the same key and base URL for a
  connection's probe or run-API note, the same `remote_id` for a delete, the claim for a
  push, "not ended yet" for a run given up, "the newest turn, ended" for the turn a follow-up
  takes over from). When the filter matches nothing, the world
  changed meanwhile: the outcome is dropped (or a copy made for a record deleted meanwhile is
  deleted again, `sync.discard_remote`), never written over the newer state.
- A push that ends well while someone saved new settings after its claim leaves the record
  `pending` (what the provider has is not what is here).
- Uncertain creates. A create that failed in a way that may have made the remote copy
  (`sync.UNCERTAIN_CREATE_KINDS`) is followed, before any new create, by a look for the copy by
  the record's tag, which is adopted (`sync.adopt`); an import attaches such a copy to its
  record instead of adding a second one.
- Polls. A run is asked about at most once per POLL_INTERVAL however many watch: a cache lock
  in the process and a conditional UPDATE of `last_polled_at` across processes.
"""

from assistants.services.assistant import (
    ASSISTANT_FIELDS,
    DELETE_ATTEMPTS,
    assistant_create,
    assistant_delete,
    assistant_sync,
    assistant_update,
)
from assistants.services.importing import ImportResult, assistant_import
from assistants.services.runs import (
    POLL_INTERVAL,
    START_LOST_CODE,
    THREAD_BUSY_CODE,
    FollowUpRefused,
    assistant_needs_push,
    conversation_latest,
    poll_lock_key,
    run_begin,
    run_cancel,
    run_create,
    run_follow_up,
    run_refresh,
    run_start,
    run_start_lost,
)
from assistants.services.shared import AlreadySubmitted, SyncInProgress
from assistants.services.sync import UNCERTAIN_CREATE_KINDS

__all__ = [
    "ASSISTANT_FIELDS",
    "DELETE_ATTEMPTS",
    "POLL_INTERVAL",
    "START_LOST_CODE",
    "THREAD_BUSY_CODE",
    "UNCERTAIN_CREATE_KINDS",
    "AlreadySubmitted",
    "FollowUpRefused",
    "ImportResult",
    "SyncInProgress",
    "assistant_create",
    "assistant_delete",
    "assistant_import",
    "assistant_needs_push",
    "assistant_sync",
    "assistant_update",
    "conversation_latest",
    "poll_lock_key",
    "run_begin",
    "run_cancel",
    "run_create",
    "run_follow_up",
    "run_refresh",
    "run_start",
    "run_start_lost",
]
