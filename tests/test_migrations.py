"""The models and their migrations agree: a change of choices (an enum gaining a member, a label
reworded) comes with its migration, and the stored values of an enum never change silently."""

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_no_model_change_lacks_a_migration(capsys):
    try:
        call_command("makemigrations", "--check", "--dry-run", verbosity=1)
    except SystemExit:
        pytest.fail(f"makemigrations would write a migration:\n{capsys.readouterr().out}")
