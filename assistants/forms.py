"""Forms for assistants and runs. Choice fields only offer the team's own objects."""

import json
import math
import re
import uuid
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput, JSONString
from django.utils.translation import gettext_lazy as _

from accounts.forms import TeamChoiceField, TeamScopedForm, of_team
from assistants.backends import is_remote_id
from assistants.models import METADATA_MAX_PAIRS, PROVIDER_ID_MAX_LENGTH, Assistant, RunStatus
from connections.models import Connection
from lib.severity import Severity

FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
MAX_TOOLS = 128
METADATA_KEY_MAX = 64
METADATA_VALUE_MAX = 512
MESSAGE_MAX = 32000
# Function schemas nest a few levels; deeper JSON is refused before it can reach the database.
JSON_MAX_DEPTH = 32

TOOLS_HELP = _(
    "Optional. A JSON list of functions the assistant may call, each "
    '{"name": "get_weather", "description": "…", "parameters": {"type": "object", …}}. '
    'Tools in the API\'s own shape are accepted too: {"type": "function", "function": {…}}, '
    '{"type": "code_interpreter"}, {"type": "file_search"} and the older '
    '{"type": "retrieval"}, which becomes file search.'
)


def _too_deep(field: str) -> ValidationError:
    return ValidationError(
        _("This JSON is nested more than %(max)s levels deep."),
        params={"max": JSON_MAX_DEPTH},
        code=f"{field}_depth",
    )


def load_json(value: str, *, field: str) -> Any:
    """`value` parsed as JSON and checked by `check_json`; ValidationError when it is not
    valid JSON or not fit to store."""
    try:
        data = json.loads(value)
    except json.JSONDecodeError as error:
        raise ValidationError(
            _("This is not valid JSON (line %(line)s, column %(column)s): %(problem)s."),
            params={"line": error.lineno, "column": error.colno, "problem": error.msg},
            code=f"{field}_json",
        ) from None
    except RecursionError:
        raise _too_deep(field) from None
    check_json(data, field=field)
    return data


def _check_text(value: str, *, field: str) -> None:
    if "\x00" in value:
        raise ValidationError(
            _("Text in this JSON cannot contain NUL characters."), code=f"{field}_nul"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            _(
                "Text in this JSON cannot contain a lone surrogate such as \\ud800 (half "
                "of a character's escape pair)."
            ),
            code=f"{field}_surrogate",
        ) from None


def check_json(value: Any, *, field: str) -> None:
    """Refuse JSON the database cannot store or a page cannot show: nested more than
    `JSON_MAX_DEPTH` levels, NaN or Infinity, or text (keys too) with NUL characters or lone
    surrogates. The one check for every form that takes JSON (the app's and the admin's);
    walks with a stack, so no depth can overflow it."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if depth > JSON_MAX_DEPTH:
            raise _too_deep(field)
        if isinstance(item, float) and not math.isfinite(item):
            raise ValidationError(
                _("Numbers in this JSON must be finite (not NaN or Infinity)."),
                code=f"{field}_number",
            )
        if isinstance(item, str):
            _check_text(item, field=field)
        elif isinstance(item, dict):
            for key, child in item.items():
                _check_text(key, field=field)
                pending.append((child, depth + 1))
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)


class CheckedJSONField(forms.JSONField):
    """Django's JSON form field with `load_json`'s checks: what would crash the database, the
    page or the recursion limit is a form error instead (used by the admin)."""

    def __init__(self, *args: Any, field: str = "json", **kwargs: Any) -> None:
        self.field_name = field
        super().__init__(*args, **kwargs)

    def to_python(self, value: Any) -> Any:
        if self.disabled:
            return value
        if value in self.empty_values:
            return None
        if isinstance(value, (list, dict, int, float)):
            check_json(value, field=self.field_name)
            return value
        data = load_json(value, field=self.field_name)
        return JSONString(data) if isinstance(data, str) else data

    def bound_data(self, data: Any, initial: Any) -> Any:
        if self.disabled:
            return initial
        if data is None:
            return None
        try:
            return load_json(data, field=self.field_name)
        except ValidationError:
            # Shown back as typed (an escape stays an escape) with the field's error.
            return InvalidJSONInput(data)


def _function(entry: dict[str, Any], position: int) -> dict[str, Any]:
    name = entry.get("name")
    if not isinstance(name, str) or not FUNCTION_NAME.fullmatch(name):
        raise ValidationError(
            _(
                "Function %(position)s: the name must be 1 to 64 letters, digits, "
                "underscores or dashes."
            ),
            params={"position": position},
        )
    function: dict[str, Any] = {"name": name}
    description = entry.get("description")
    if description not in (None, ""):
        if not isinstance(description, str):
            raise ValidationError(
                _("Function “%(name)s”: the description must be text."), params={"name": name}
            )
        function["description"] = description
    parameters = entry.get("parameters")
    if parameters is not None:
        if not isinstance(parameters, dict) or parameters.get("type", "object") != "object":
            raise ValidationError(
                _(
                    "Function “%(name)s”: the parameters must be a JSON Schema object, "
                    'e.g. {"type": "object", "properties": {…}}.'
                ),
                params={"name": name},
            )
        function["parameters"] = parameters
    unknown = set(entry) - {"name", "description", "parameters", "strict"}
    if unknown:
        raise ValidationError(
            _("Function “%(name)s”: unknown field(s) %(fields)s."),
            params={"name": name, "fields": ", ".join(sorted(unknown))},
        )
    return function


def parse_tools_json(value: str) -> tuple[list[dict[str, Any]], set[str]]:
    """The functions typed in the tools box, and the other tool types named there."""
    value = value.strip()
    if not value:
        return [], set()
    data = load_json(value, field="tools")
    if not isinstance(data, list):
        raise ValidationError(_("Give a JSON list, e.g. [{“name”: “get_weather”, …}]."))
    if len(data) > MAX_TOOLS:
        raise ValidationError(_("At most %(max)s tools are allowed."), params={"max": MAX_TOOLS})
    functions: list[dict[str, Any]] = []
    types: set[str] = set()
    for position, entry in enumerate(data, start=1):
        if not isinstance(entry, dict):
            raise ValidationError(
                _("Item %(position)s is not a JSON object."), params={"position": position}
            )
        kind = entry.get("type")
        if kind in ("code_interpreter", "file_search", "retrieval"):
            types.add("file_search" if kind == "retrieval" else kind)
            continue
        if kind == "function":
            if not isinstance(entry.get("function"), dict):
                raise ValidationError(
                    _("Item %(position)s: a function tool needs a “function” object."),
                    params={"position": position},
                )
            entry = entry["function"]
        elif kind is not None:
            raise ValidationError(
                _("Item %(position)s: unknown tool type “%(type)s”."),
                params={"position": position, "type": kind},
            )
        functions.append(_function(entry, position))
    names = [function["name"] for function in functions]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValidationError(
            _("Each function needs its own name; repeated: %(names)s."),
            params={"names": ", ".join(duplicates)},
        )
    return functions, types


def functions_json(tools: list[dict[str, Any]]) -> str:
    functions = [
        tool["function"]
        for tool in tools
        if isinstance(tool, dict)
        and tool.get("type") == "function"
        and isinstance(tool.get("function"), dict)
    ]
    return json.dumps(functions, indent=2, ensure_ascii=False) if functions else ""


def parse_metadata(value: str) -> dict[str, str]:
    value = value.strip()
    if not value:
        return {}
    data = load_json(value, field="metadata")
    if not isinstance(data, dict):
        raise ValidationError(_('Give a JSON object, e.g. {"team": "support"}.'))
    if len(data) > METADATA_MAX_PAIRS:
        raise ValidationError(
            _("At most %(max)s key-value pairs are allowed."), params={"max": METADATA_MAX_PAIRS}
        )
    for key, item in data.items():
        if len(key) > METADATA_KEY_MAX:
            raise ValidationError(
                _("The key “%(key)s” is longer than %(max)s characters."),
                params={"key": key[:80], "max": METADATA_KEY_MAX},
            )
        if not isinstance(item, str):
            raise ValidationError(
                _("The value of “%(key)s” must be text (put it in quotes)."), params={"key": key}
            )
        if len(item) > METADATA_VALUE_MAX:
            raise ValidationError(
                _("The value of “%(key)s” is longer than %(max)s characters."),
                params={"key": key, "max": METADATA_VALUE_MAX},
            )
    return data


SUBMISSION_TOKEN = "submission_token"


class SubmissionTokenMixin(forms.Form):
    """A one-time token in a hidden field, new on every render of the form, so that the same
    form sent twice (a double click, back and resubmit) is recognised by the service, which
    keeps the token on what the first one made.

    A post without a token, or with one that is not a UUID (an old page, an API client), gets
    a fresh one here: it then works as before, each post making something new. The token is
    not a secret and needs no signature: it only ever finds what the same team already made."""

    submission_token = forms.UUIDField(required=False, widget=forms.HiddenInput, initial=uuid.uuid4)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.is_bound:
            name = self.add_prefix(SUBMISSION_TOKEN)
            try:
                uuid.UUID(str(self.data.get(name) or ""))
            except ValueError:
                self.data = self.data.copy()
                self.data[name] = str(uuid.uuid4())


class AssistantForm(forms.Form):
    """The assistant's settings. `models` is the connection's model list, or None when it
    could not be fetched (then the model is typed in)."""

    name = forms.CharField(label=_("Name"), max_length=256)
    description = forms.CharField(label=_("Description"), max_length=512, required=False)
    instructions = forms.CharField(
        label=_("Instructions"),
        max_length=256000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_("What the assistant should do and how it should answer."),
    )
    model = forms.CharField(label=_("Model"), max_length=PROVIDER_ID_MAX_LENGTH)
    code_interpreter = forms.BooleanField(
        label=_("Code interpreter"),
        required=False,
        help_text=_("Lets the assistant write and run Python code."),
    )
    file_search = forms.BooleanField(
        label=_("File search"),
        required=False,
        help_text=_(
            "Lets the assistant search files in a vector store (called “retrieval” before "
            "Assistants API v2). On the Responses API it needs a vector store and is left out."
        ),
    )
    functions = forms.CharField(
        label=_("Function tools (JSON)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "class": "mono", "spellcheck": "false"}),
        help_text=TOOLS_HELP,
    )
    temperature = forms.FloatField(
        label=_("Temperature"),
        required=False,
        min_value=0,
        max_value=2,
        widget=forms.NumberInput(attrs={"step": "0.1"}),
        help_text=_("Optional, 0 to 2. Higher is more varied; empty uses the model's default."),
    )
    top_p = forms.FloatField(
        label=_("Top p"),
        required=False,
        min_value=0,
        max_value=1,
        widget=forms.NumberInput(attrs={"step": "0.05"}),
        help_text=_("Optional, 0 to 1. Change this or temperature, not both."),
    )
    metadata = forms.CharField(
        label=_("Metadata (JSON)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono", "spellcheck": "false"}),
        help_text=_(
            'Optional. Up to 16 text pairs, e.g. {"team": "support"}. Keys up to 64 '
            "characters, values up to 512."
        ),
    )

    def __init__(
        self,
        *args: Any,
        models: list[str] | None = None,
        never_fetched: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.models = models
        if models is not None:
            current = self.initial.get("model")
            ids = list(models)
            if current and current not in ids:
                ids.insert(0, current)
            self.fields["model"] = forms.ChoiceField(
                label=_("Model"),
                choices=[("", _("Choose a model…")), *((model, model) for model in ids)],
                help_text=_("From this connection's model list."),
            )
        elif never_fetched:
            self.fields["model"].help_text = _(
                "Models not yet fetched; type the model's ID, e.g. gpt-4o."
            )
        else:
            self.fields["model"].help_text = _(
                "The model list could not be fetched; type the model's ID, e.g. gpt-4o."
            )
        self._tool_types: set[str] = set()

    @classmethod
    def initial_for(cls, assistant: Assistant) -> dict[str, Any]:
        types = set(assistant.tool_types)
        return {
            "name": assistant.name,
            "description": assistant.description,
            "instructions": assistant.instructions,
            "model": assistant.model,
            "code_interpreter": "code_interpreter" in types,
            "file_search": bool(types & {"file_search", "retrieval"}),
            "functions": functions_json(assistant.tools),
            "temperature": assistant.temperature,
            "top_p": assistant.top_p,
            "metadata": json.dumps(assistant.metadata, ensure_ascii=False)
            if assistant.metadata
            else "",
        }

    def clean_model(self) -> str:
        return self.cleaned_data["model"].strip()

    def clean_functions(self) -> list[dict[str, Any]]:
        functions, self._tool_types = parse_tools_json(self.cleaned_data["functions"])
        return functions

    def clean_metadata(self) -> dict[str, str]:
        return parse_metadata(self.cleaned_data["metadata"])

    def assistant_data(self) -> dict[str, Any]:
        """The cleaned data in the shape `assistant_create` / `assistant_update` take."""
        data = self.cleaned_data
        tools: list[dict[str, Any]] = []
        if data["code_interpreter"] or "code_interpreter" in self._tool_types:
            tools.append({"type": "code_interpreter"})
        if data["file_search"] or "file_search" in self._tool_types:
            tools.append({"type": "file_search"})
        tools += [{"type": "function", "function": function} for function in data["functions"]]
        return {
            "name": data["name"],
            "description": data["description"],
            "instructions": data["instructions"],
            "model": data["model"],
            "tools": tools,
            "temperature": data["temperature"],
            "top_p": data["top_p"],
            "metadata": data["metadata"],
        }


# The team's connections and assistants, by name, for the choice fields below (a choice
# shows a name, and a connection's health where it does not work: the rest of the row, the
# connection's cached model list above all, stays out).
def team_connections(team):
    return of_team(Connection, "name")(team).only("id", "team_id", "name", "health")


def team_assistants(team):
    return of_team(Assistant, "name")(team).only("id", "team_id", "name")


class ConnectionChoiceField(TeamChoiceField):
    """A connection picker: one that does not work now says so beside its name."""

    def label_from_instance(self, obj: Connection) -> str:
        if obj.health_severity in (Severity.WARN, Severity.DANGER):
            return f"{obj.name} ({obj.get_health_display()})"
        return obj.name


class AssistantCreateForm(SubmissionTokenMixin, AssistantForm, TeamScopedForm):
    connection = TeamChoiceField(team_connections, label=_("Connection"), widget=forms.HiddenInput)


class ConnectionPickForm(TeamScopedForm):
    connection = ConnectionChoiceField(
        team_connections,
        label=_("Connection"),
        empty_label=None,
        widget=forms.Select(attrs={"data-autosubmit": ""}),
    )


class RunForm(SubmissionTokenMixin, forms.Form):
    message = forms.CharField(
        label=_("Message"),
        max_length=MESSAGE_MAX,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("What you ask the assistant. The answer appears on the run's page."),
    )

    def clean_message(self) -> str:
        message = self.cleaned_data["message"].strip()
        if not message:
            raise ValidationError(_("Write a message for the assistant."))
        return message


class FollowUpForm(RunForm):
    """The next message of a run's conversation."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["message"].label = _("Follow-up message")
        self.fields["message"].help_text = _(
            "The assistant answers with the whole conversation above in mind."
        )


class RetryForm(SubmissionTokenMixin, forms.Form):
    """Send the newest turn's message again (it failed): only the one-time token."""


class AssistantFilterForm(TeamScopedForm):
    # Set by the connection links of the list's rows (?connection=<id>): a team may have
    # thousands of connections, too many for a select.
    connection = TeamChoiceField(team_connections, required=False, widget=forms.HiddenInput)
    q = forms.CharField(label=_("Search"), required=False, max_length=200)


class RunFilterForm(TeamScopedForm):
    # Set by the assistant links of the list's rows (?assistant=<id>), or found by name with
    # `q`: a select of every assistant would not stay small.
    assistant = TeamChoiceField(team_assistants, required=False, widget=forms.HiddenInput)
    q = forms.CharField(label=_("Assistant name"), required=False, max_length=200)
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("Any status")), *RunStatus.choices],
    )


def _remote_id(value: str) -> str:
    value = value.strip()
    if value and not is_remote_id(value):
        raise ValidationError(
            _(
                "An ID is up to %(limit)s letters, digits and the signs _ . : + / = -, "
                "e.g. run_abc123."
            )
            % {"limit": PROVIDER_ID_MAX_LENGTH}
        )
    return value


class RunLookupForm(TeamScopedForm):
    connection = ConnectionChoiceField(team_connections, label=_("Connection"), empty_label=None)
    thread_id = forms.CharField(
        label=_("Thread ID"),
        required=False,
        max_length=PROVIDER_ID_MAX_LENGTH,
        help_text=_("Assistants API, e.g. thread_abc123."),
    )
    run_id = forms.CharField(
        label=_("Run ID"),
        required=False,
        max_length=PROVIDER_ID_MAX_LENGTH,
        help_text=_("Assistants API, e.g. run_abc123."),
    )
    response_id = forms.CharField(
        label=_("Response ID"),
        required=False,
        max_length=PROVIDER_ID_MAX_LENGTH,
        help_text=_("Responses API, e.g. resp_abc123. Give this, or a thread and run ID."),
    )

    def clean_thread_id(self) -> str:
        return _remote_id(self.cleaned_data["thread_id"])

    def clean_run_id(self) -> str:
        return _remote_id(self.cleaned_data["run_id"])

    def clean_response_id(self) -> str:
        return _remote_id(self.cleaned_data["response_id"])

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        thread_id, run_id = data.get("thread_id"), data.get("run_id")
        response_id = data.get("response_id")
        if self.errors:
            return data
        if response_id and (thread_id or run_id):
            raise ValidationError(
                _("Give either a response ID, or a thread ID and a run ID, not both.")
            )
        if not response_id and not (thread_id and run_id):
            raise ValidationError(
                _("Give a thread ID and a run ID (Assistants API), or a response ID.")
            )
        return data
