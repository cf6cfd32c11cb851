from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from accounts import views
from accounts.forms import EmailAuthenticationForm, PasswordChangeForm, SetPasswordForm

app_name = "accounts"

urlpatterns = [
    path(
        "login/",
        views.LoginView.as_view(
            template_name="accounts/login.html",
            authentication_form=EmailAuthenticationForm,
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password/change/",
        auth_views.PasswordChangeView.as_view(
            template_name="accounts/password_change.html",
            form_class=PasswordChangeForm,
            success_url=reverse_lazy("accounts:password_change_done"),
        ),
        name="password_change",
    ),
    path(
        "password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(
            template_name="accounts/password_change_done.html"
        ),
        name="password_change_done",
    ),
    path(
        "password/reset/",
        views.PasswordResetView.as_view(
            template_name="accounts/password_reset.html",
            email_template_name="accounts/email/password_reset.txt",
            subject_template_name="accounts/email/password_reset_subject.txt",
            success_url=reverse_lazy("accounts:password_reset_done"),
        ),
        name="password_reset",
    ),
    path(
        "password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(
            template_name="accounts/password_reset_confirm.html",
            form_class=SetPasswordForm,
            success_url=reverse_lazy("accounts:password_reset_complete"),
        ),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="accounts/password_reset_complete.html"
        ),
        name="password_reset_complete",
    ),
    path("setup/", views.setup, name="setup"),
    path("teams/new/", views.team_create, name="team_create"),
    path("teams/<uuid:team_id>/settings/", views.team_settings, name="team_settings"),
    path("teams/<uuid:team_id>/delete/", views.team_delete, name="team_delete"),
    path("teams/<uuid:team_id>/members/", views.members, name="members"),
    path("teams/<uuid:team_id>/members/invite/", views.member_invite, name="member_invite"),
    path(
        "teams/<uuid:team_id>/members/<uuid:membership_id>/role/",
        views.member_role,
        name="member_role",
    ),
    path(
        "teams/<uuid:team_id>/members/<uuid:membership_id>/remove/",
        views.member_remove,
        name="member_remove",
    ),
    path(
        "teams/<uuid:team_id>/invitations/<uuid:invitation_id>/revoke/",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
    path("teams/<uuid:team_id>/audit/", views.audit, name="audit"),
    path("teams/<uuid:team_id>/audit.csv", views.audit_export, name="audit_export"),
]
